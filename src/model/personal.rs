//! The client procedures of PersA-FL (Toghani et al. 2022): first-order MAML and the
//! Moreau envelope.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Tensor, TensorData};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::train::{LocalData, batch_tensors};
use super::{TrainConfig, Trainable, Vit};

/// How a client turns the model it received into its update (and its personal model).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum PersonalStep {
    /// First-order MAML (Per-FedAvg FO): for each pair of batches `D, D'`, adapt
    /// `θ' = θ - inner_lr ∇L_D(θ)`, then step `θ` with the gradient of `L_D'` taken at
    /// `θ'` (the Hessian term of full MAML is dropped). The update trains the global
    /// model to personalize well in one step; the personal model is that step, taken at
    /// evaluation (`eval.personalize: FineTune(steps: 1)`).
    Maml { inner_lr: f64 },
    /// Moreau envelope (pFedMe): the personal model `θ ≈ argmin L(θ) + λ/2 ||θ - w||²`,
    /// `inner_steps` gradient steps per batch from its previous value, then
    /// `w ← w - lr λ (w - θ)`. `θ` persists across the client's participations; `w` is
    /// the update.
    Moreau { lambda: f64, inner_steps: usize },
}

/// Batches of `indices` for `steps` steps, reshuffled with `rng` at every pass.
fn batches(indices: &[u32], batch: usize, steps: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<u32>> {
    let mut order = indices.to_vec();
    let mut out = Vec::with_capacity(steps);
    while out.len() < steps && !order.is_empty() {
        order.shuffle(rng);
        out.extend(
            order
                .chunks(batch.max(1))
                .map(<[u32]>::to_vec)
                .take(steps - out.len()),
        );
    }
    out
}

fn steps_per_job(config: &TrainConfig, samples: usize) -> usize {
    config.epochs as usize * samples.div_ceil(config.batch_size.max(1))
}

/// First-order MAML over the job's epochs (each outer step consumes two batches).
pub fn train_maml(
    mut model: Vit,
    local: &LocalData<'_>,
    config: &TrainConfig,
    inner_lr: f64,
) -> (Vit, f64) {
    let LocalData {
        data,
        indices,
        patch,
        seed,
        device,
    } = *local;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let mut outer = config.optimizer.init();
    let all = batches(
        indices,
        config.batch_size,
        steps_per_job(config, indices.len()),
        &mut rng,
    );
    let (mut loss_sum, mut n) = (0.0, 0usize);
    for pair in all.chunks(2) {
        let (d, d2) = (&pair[0], pair.get(1).unwrap_or(&pair[0]));
        let (x, y) = batch_tensors(data, d, patch, device);
        let loss = loss_fn.forward(model.forward(x), y);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let adapted = SgdConfig::new().init().step(inner_lr, model.clone(), grads);
        let (x2, y2) = batch_tensors(data, d2, patch, device);
        let loss2 = loss_fn.forward(adapted.forward(x2), y2);
        loss_sum += loss2.clone().into_scalar::<f32>() as f64;
        n += 1;
        // First order: the gradient at the adapted point, applied to the model itself.
        let grads2 = GradientsParams::from_grads(loss2.backward(), &adapted);
        model = outer.step(config.optimizer.lr(), model, grads2);
    }
    (model, if n == 0 { 0.0 } else { loss_sum / n as f64 })
}

/// The Moreau-envelope procedure from the received global parameters and the client's
/// personal model: returns the update `w`, the new personal model and the mean task loss.
pub fn train_moreau(
    global: &[f32],
    mut personal: Vit,
    trainable: &Trainable,
    local: &LocalData<'_>,
    config: &TrainConfig,
    lambda: f64,
    inner_steps: usize,
) -> (Vec<f32>, Vit, f64) {
    let LocalData {
        data,
        indices,
        patch,
        seed,
        device,
    } = *local;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let mut inner = config.optimizer.init();
    let lr = config.optimizer.lr();
    let mut w = global.to_vec();
    let (mut loss_sum, mut n) = (0.0, 0usize);
    for batch in batches(
        indices,
        config.batch_size,
        steps_per_job(config, indices.len()),
        &mut rng,
    ) {
        let (x, y) = batch_tensors(data, &batch, patch, device);
        let anchor: Tensor<1> = Tensor::from_data(TensorData::new(w.clone(), [w.len()]), device);
        for _ in 0..inner_steps {
            let task = loss_fn.forward(personal.forward(x.clone()), y.clone());
            loss_sum += task.clone().into_scalar::<f32>() as f64;
            n += 1;
            let drift = trainable.flat_tensor(&personal) - anchor.clone();
            let loss = task + drift.powi_scalar(2).sum().mul_scalar(lambda / 2.0);
            let grads = GradientsParams::from_grads(loss.backward(), &personal);
            personal = inner.step(lr, personal, grads);
        }
        let theta = trainable.extract(&personal);
        for (wi, ti) in w.iter_mut().zip(&theta) {
            *wi -= (lr * lambda) as f32 * (*wi - ti);
        }
    }
    (w, personal, if n == 0 { 0.0 } else { loss_sum / n as f64 })
}

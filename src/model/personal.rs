//! The client procedures of PersA-FL (Toghani et al. 2022): first-order MAML and the
//! Moreau envelope.

use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::train::{LocalData, mean};
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

/// First-order MAML over the job's epochs (each outer step consumes two batches).
pub fn train_maml(
    mut model: Vit,
    local: &LocalData<'_>,
    config: &TrainConfig,
    inner_lr: f64,
) -> (Vit, f64) {
    let mut outer = config.optimizer.init();
    let batches = local.batches(config.batch_size, local.steps(config));
    let (mut loss_sum, mut n) = (0.0, 0usize);
    for pair in batches.chunks(2) {
        let (d, d2) = (&pair[0], pair.get(1).unwrap_or(&pair[0]));
        let Some(loss) = local.objective.loss(&model, local, d) else {
            continue;
        };
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let adapted = SgdConfig::new().init().step(inner_lr, model.clone(), grads);
        let Some(loss2) = local.objective.loss(&adapted, local, d2) else {
            continue;
        };
        loss_sum += loss2.clone().into_scalar::<f32>() as f64;
        n += 1;
        // First order: the gradient at the adapted point, applied to the model itself.
        let grads2 = GradientsParams::from_grads(loss2.backward(), &adapted);
        model = outer.step(config.optimizer.lr(), model, grads2);
    }
    (model, mean(loss_sum, n))
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
    let mut inner = config.optimizer.init();
    let lr = config.optimizer.lr();
    let mut w = global.to_vec();
    let (mut loss_sum, mut n) = (0.0, 0usize);
    for batch in local.batches(config.batch_size, local.steps(config)) {
        let anchor: Tensor<1> =
            Tensor::from_data(TensorData::new(w.clone(), [w.len()]), local.device);
        for _ in 0..inner_steps {
            let Some(task) = local.objective.loss(&personal, local, &batch) else {
                continue;
            };
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
    (w, personal, mean(loss_sum, n))
}

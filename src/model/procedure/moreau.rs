//! The Moreau-envelope procedure (pFedMe, T. Dinh et al. 2020), as PersA-FL's clients
//! run it.

use burn::tensor::{Tensor, TensorData};

use super::super::train::{Descent, LocalData};
use crate::model::{TrainConfig, Trainable, Vit};

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
    let mut inner = Descent::new(&config.optimizer);
    let lr = config.optimizer.lr();
    let mut w = global.to_vec();
    for batch in local.batches(config.batch_size, local.steps(config)) {
        let anchor: Tensor<1> =
            Tensor::from_data(TensorData::new(w.clone(), [w.len()]), local.device);
        for _ in 0..inner_steps {
            let Some(task) = local.objective.loss(&personal, local, &batch) else {
                continue;
            };
            inner.count(&task);
            let drift = trainable.flat_tensor(&personal) - anchor.clone();
            let loss = task + drift.powi_scalar(2).sum().mul_scalar(lambda / 2.0);
            personal = inner.step(personal, loss);
        }
        let theta = trainable.extract(&personal);
        for (wi, ti) in w.iter_mut().zip(&theta) {
            *wi -= (lr * lambda) as f32 * (*wi - ti);
        }
    }
    (w, personal, inner.mean_loss())
}

//! One client's local training: the configured epochs, or a number of steps.

use super::{Descent, LocalData, TrainConfig};
use crate::model::Vit;

/// Trains the model's trainable parameters on `local` for the configured epochs.
/// Returns the trained model and the mean batch loss.
pub fn train_local(model: Vit, local: &LocalData<'_>, config: &TrainConfig) -> (Vit, f64) {
    fine_tune(model, local, local.steps(config), config)
}

/// Takes `steps` optimiser steps on batches of `local`. Returns the model and the mean loss.
pub(crate) fn fine_tune(
    mut model: Vit,
    local: &LocalData<'_>,
    steps: usize,
    config: &TrainConfig,
) -> (Vit, f64) {
    let mut descent = Descent::new(&config.optimizer);
    for batch in local.batches(config.batch_size, steps) {
        let Some(loss) = local.objective.loss(&model, local, &batch) else {
            continue;
        };
        descent.count(&loss);
        model = descent.step(model, loss);
    }
    (model, descent.mean_loss())
}

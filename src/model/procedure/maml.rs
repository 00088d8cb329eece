//! First-order MAML (Per-FedAvg FO, Fallah et al. 2020), as PersA-FL's clients run it.

use super::super::train::{Descent, LocalData};
use crate::model::{TrainConfig, Vit};

/// First-order MAML over the job's epochs (each outer step consumes two batches).
pub fn train_maml(
    mut model: Vit,
    local: &LocalData<'_>,
    config: &TrainConfig,
    inner_lr: f64,
) -> (Vit, f64) {
    let mut outer = Descent::new(&config.optimizer);
    let mut batches = local.batches(config.batch_size, local.steps(config));
    while let Some(d) = batches.next() {
        let second = batches.next();
        let (d, d2) = (&d, second.as_ref().unwrap_or(&d));
        let Some(loss) = local.objective.loss(&model, local, d) else {
            continue;
        };
        // A fresh inner step each time, as SGD keeps no state.
        let adapted = Descent::sgd(inner_lr).step(model.clone(), loss);
        let Some(loss2) = local.objective.loss(&adapted, local, d2) else {
            continue;
        };
        outer.count(&loss2);
        // First order: the gradient at the adapted point, applied to the model itself.
        model = outer.step_at(model, loss2, &adapted);
    }
    (model, outer.mean_loss())
}

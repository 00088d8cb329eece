//! Client procedures: how a client turns the model it received into its update, and how
//! it personalizes a model before its test. These, not the server strategies, are what
//! PersA-FL (MAML, Moreau envelope) and FedBABU (head fine-tuning) add to FedAvg,
//! FedAsync and FedBuff.

mod maml;
mod moreau;
mod personalize;

pub use maml::train_maml;
pub use moreau::train_moreau;
pub use personalize::Personalization;
pub(crate) use personalize::personalize;

use serde::{Deserialize, Serialize};

use super::train::{LocalData, train_local};
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
    Maml {
        /// The rate of the adaptation step.
        inner_lr: f64,
    },
    /// Moreau envelope (pFedMe): the personal model `θ ≈ argmin L(θ) + λ/2 ||θ - w||²`,
    /// `inner_steps` gradient steps per batch from its previous value, then
    /// `w ← w - lr λ (w - θ)`. `θ` persists across the client's participations; `w` is
    /// the update.
    Moreau {
        /// Strength of the pull between the personal and the global model.
        lambda: f64,
        /// Steps on the personal model per batch.
        inner_steps: usize,
    },
}

/// What a client's procedure made of one slot.
pub(crate) struct Trained {
    /// The update: the trainable values the client sends.
    pub params: Vec<f32>,
    /// The mean training loss.
    pub loss: f64,
    /// The client's new personal model, for procedures that keep one (Moreau).
    pub personal: Option<Vec<f32>>,
}

/// Runs a client's procedure on one slot: plain local training, or PersA-FL's `step`.
/// `backbone` is the frozen model the job runs on, `start` the values the client
/// received and `personal` its personal model from its last job (Moreau starts there).
pub(crate) fn train_slot(
    step: Option<&PersonalStep>,
    backbone: &Vit,
    trainable: &Trainable,
    start: &[f32],
    personal: Option<&[f32]>,
    local: &LocalData<'_>,
    config: &TrainConfig,
) -> Trained {
    let model = trainable.load(backbone.clone(), start);
    let (model, loss) = match step {
        None => train_local(model, local, config),
        Some(PersonalStep::Maml { inner_lr }) => train_maml(model, local, config, *inner_lr),
        Some(&PersonalStep::Moreau {
            lambda,
            inner_steps,
        }) => {
            // The personal model starts from the last one, or from the global.
            let own = trainable.load(backbone.clone(), personal.unwrap_or(start));
            let (params, own, loss) =
                train_moreau(start, own, trainable, local, config, lambda, inner_steps);
            return Trained {
                params,
                loss,
                personal: Some(trainable.extract(&own)),
            };
        }
    };
    Trained {
        params: trainable.extract(&model),
        loss,
        personal: None,
    }
}

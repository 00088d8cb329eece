//! Personalization at evaluation time: the served model fine-tuned on a client's own
//! training split before its test (FedBABU fine-tunes the head alone).

use burn::tensor::Device;

use super::super::train::{LocalData, Objective, Samples, fine_tune};
use super::super::{Adaptation, Depth, Prefix, TrainConfig, Vit};

/// Local fine-tuning that personalizes the served model before each client's evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct Personalization {
    /// Optimiser steps.
    pub steps: usize,
    /// Plain SGD at this rate, else the training optimizer.
    pub lr: Option<f64>,
    /// Fine-tune the head alone (FedBABU) rather than the trainable parameters.
    pub head_only: bool,
}

/// `model` fine-tuned on `indices` of `samples` as `p` says, with `config`'s batch size
/// and optimiser (plain SGD when `p` gives a rate). Fine-tuning the head alone computes
/// the served body's features of the samples once for all steps.
pub(crate) fn personalize(
    model: Vit,
    p: &Personalization,
    config: &TrainConfig,
    samples: Samples<'_>,
    indices: &[u32],
    seed: u64,
    device: &Device,
) -> Vit {
    let features = p.head_only.then(|| {
        Prefix::of(
            &model,
            Depth::Features,
            samples.data,
            indices,
            samples.patch,
        )
    });
    let samples = match &features {
        Some(prefix) => Samples {
            prefix: Some(prefix),
            ..samples
        },
        None => samples,
    };
    let objective = Objective::default();
    let local = LocalData {
        samples,
        indices,
        seed,
        device,
        objective: &objective,
    };
    let model = if p.head_only {
        Adaptation::head().apply(model)
    } else {
        model
    };
    let mut config = config.clone();
    if let Some(lr) = p.lr {
        config.optimizer = super::super::Optimizer::Sgd { lr };
    }
    fine_tune(model, &local, p.steps, &config).0
}

//! `flotilla pretrain`: trains the backbone centrally and writes a checkpoint.
//!
//! To keep transfer honest, pretraining sees only some classes (for example digits 0-4):
//! clients then learn every class with a fresh head, on top of features that never saw
//! the others.

use std::path::Path;

use burn::module::Module;
use burn::tensor::Device;

use crate::data::{DataError, load_idx_dir};
use crate::model::{
    Optimizer, TrainConfig, Trainable, VitConfig, evaluate, init_params, train_local,
};

/// Pretraining settings.
pub struct PretrainOptions {
    pub vit: VitConfig,
    pub classes: Vec<u8>,
    pub epochs: u32,
    pub batch_size: usize,
    pub lr: f64,
    pub seed: u64,
}

/// Why pretraining failed.
#[derive(Debug, thiserror::Error)]
pub enum PretrainError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("cannot write the checkpoint: {0}")]
    Save(String),
    #[error("{0}")]
    Invalid(String),
}

/// Trains on the training images of `classes` and saves the model to `out`.
/// Returns the test accuracy on those classes after each epoch.
pub fn pretrain(
    data_dir: &Path,
    out: &Path,
    opts: &PretrainOptions,
) -> Result<Vec<f64>, PretrainError> {
    let data = load_idx_dir(data_dir)?;
    if data.train.side != opts.vit.image {
        return Err(PretrainError::Invalid(format!(
            "images are {0}x{0}, the backbone expects {1}x{1}",
            data.train.side, opts.vit.image
        )));
    }
    let pick = |labels: &[u8]| -> Vec<u32> {
        (0..labels.len() as u32)
            .filter(|&i| opts.classes.contains(&labels[i as usize]))
            .collect()
    };
    let train_idx = pick(&data.train.labels);
    let test_idx = pick(&data.test.labels);
    if train_idx.is_empty() {
        return Err(PretrainError::Invalid(
            "no training image has one of the chosen classes".into(),
        ));
    }
    let device = Device::flex().autodiff();
    let all = Trainable::new(".*");
    let mut model = all.apply(init_params(opts.vit.init(&device), &all, opts.seed));
    let config = TrainConfig {
        epochs: 1,
        batch_size: opts.batch_size,
        optimizer: Optimizer::Adam { lr: opts.lr },
    };
    let mut accuracies = Vec::new();
    for epoch in 0..opts.epochs {
        let (m, loss) = train_local(
            model,
            &data.train,
            &train_idx,
            &config,
            opts.vit.patch,
            opts.seed + epoch as u64,
            &device,
        );
        model = m;
        let acc = evaluate(&model, &data.test, &test_idx, opts.vit.patch, 250).accuracy();
        eprintln!(
            "epoch {}: loss {loss:.4}, test accuracy on the chosen classes {:.2}%",
            epoch + 1,
            acc * 100.0
        );
        accuracies.push(acc);
    }
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).map_err(|e| PretrainError::Save(e.to_string()))?;
    }
    model
        .save_file(out)
        .map_err(|e| PretrainError::Save(e.to_string()))?;
    Ok(accuracies)
}

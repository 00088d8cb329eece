//! `flotilla pretrain`: trains the backbone centrally and writes a checkpoint.
//!
//! To keep transfer honest, pretraining sees only some classes (for example digits 0-4):
//! clients then learn every class with a fresh head, on top of features that never saw
//! the others.

use std::path::Path;

use burn::module::Module;
use burn::tensor::Device;

use crate::data::{DataError, Dataset, Pixels, load_idx_dir};
use crate::model::{
    LocalData, Objective, Optimizer, Samples, ShapeError, TrainConfig, Trainable, VitConfig,
    evaluate, init_params, train_local,
};
use crate::notice::Notice;

/// Pretraining settings.
pub struct PretrainOptions {
    /// The backbone's shape; its image side, channels and classes are the data's.
    pub vit: VitConfig,
    /// The classes to train on.
    pub classes: Vec<u8>,
    /// Passes over the data.
    pub epochs: u32,
    /// Images per step.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Seeds the initialisation and the batch order.
    pub seed: u64,
    /// Also train on copies shifted by up to this many pixels along each axis (0: none).
    pub max_shift: usize,
}

/// Why pretraining failed.
#[derive(Debug, thiserror::Error)]
pub enum PretrainError {
    /// The data cannot be loaded.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The backbone cannot be built on the data's images.
    #[error(transparent)]
    Shape(#[from] ShapeError),
    /// A setting is out of range.
    #[error("{0}")]
    Setting(String),
    /// No training image has one of the chosen classes.
    #[error("no training image has one of the chosen classes")]
    NoImages,
    /// The checkpoint's directory cannot be made.
    #[error("cannot make the checkpoint's directory")]
    Directory(#[from] std::io::Error),
    /// The checkpoint cannot be written.
    #[error("cannot write the checkpoint")]
    Save(#[from] burn::store::RecordError),
}

/// Trains on the training images of `classes` and saves the model to `out`, telling
/// `notice` each epoch's loss and accuracy. Returns the test accuracy on those classes
/// after each epoch.
pub fn pretrain(
    data_dir: &Path,
    out: &Path,
    opts: &PretrainOptions,
    notice: Notice,
) -> Result<Vec<f64>, PretrainError> {
    let data = load_idx_dir(data_dir)?;
    let vit = VitConfig {
        image: data.train.side,
        channels: data.train.channels,
        classes: data.train.classes,
        ..opts.vit.clone()
    };
    vit.check()?;
    if opts.epochs == 0 || opts.batch_size == 0 {
        return Err(PretrainError::Setting(
            "epochs and batch size must be at least 1".into(),
        ));
    }
    if !(opts.lr.is_finite() && opts.lr > 0.0) {
        return Err(PretrainError::Setting(format!(
            "lr must be > 0, got {}",
            opts.lr
        )));
    }
    if opts.max_shift >= vit.image {
        return Err(PretrainError::Setting(format!(
            "max shift must be below the image side ({}), got {}",
            vit.image, opts.max_shift
        )));
    }
    if let Some(&c) = opts.classes.iter().find(|&&c| c as usize >= vit.classes) {
        return Err(PretrainError::Setting(format!(
            "class {c} is not in the data (classes 0..{})",
            vit.classes
        )));
    }
    let pick = |labels: &[u8]| -> Vec<u32> {
        (0..labels.len() as u32)
            .filter(|&i| opts.classes.contains(&labels[i as usize]))
            .collect()
    };
    let test_idx = pick(&data.test.labels);
    let train = shifted_copies(&data.train, &pick(&data.train.labels), opts.max_shift);
    let train_idx: Vec<u32> = (0..train.len() as u32).collect();
    if train_idx.is_empty() {
        return Err(PretrainError::NoImages);
    }
    let device = Device::flex().autodiff();
    let all = Trainable::new(".*");
    let mut model = all.apply(init_params(vit.init(&device), &all, opts.seed));
    let config = TrainConfig {
        epochs: 1,
        batch_size: opts.batch_size,
        optimizer: Optimizer::Adam { lr: opts.lr },
    };
    let mut accuracies = Vec::new();
    for epoch in 0..opts.epochs {
        let local = LocalData {
            samples: Samples::new(&train, vit.patch),
            indices: &train_idx,
            seed: opts.seed + epoch as u64,
            device: &device,
            objective: &Objective::default(),
        };
        let (m, loss) = train_local(model, &local, &config);
        model = m;
        let acc = evaluate(
            &model,
            None,
            Samples::new(&data.test, vit.patch),
            &test_idx,
            250,
        )
        .accuracy();
        notice(&format!(
            "epoch {}: loss {loss:.4}, test accuracy on the chosen classes {:.2}%",
            epoch + 1,
            acc * 100.0
        ));
        accuracies.push(acc);
    }
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    model.save_file(out)?;
    Ok(accuracies)
}

/// The images `indices`, each also shifted by `±1..=max_shift` pixels along x and along y
/// (the uncovered border takes the darkest pixel value): the usual augmentation that keeps
/// a small data set from teaching position instead of shape.
fn shifted_copies(data: &Dataset, indices: &[u32], max_shift: usize) -> Dataset {
    let side = data.side as i64;
    let len = data.side * data.side * data.channels;
    let background = data.pixels.values().fold(f32::INFINITY, f32::min);
    let mut shifts = vec![(0i64, 0i64)];
    for s in 1..=max_shift as i64 {
        shifts.extend([(s, 0), (-s, 0), (0, s), (0, -s)]);
    }
    let mut pixels = Vec::with_capacity(indices.len() * shifts.len() * len);
    let mut labels = Vec::with_capacity(indices.len() * shifts.len());
    for &i in indices {
        let img = data.pixels.slice(i as usize * len..(i as usize + 1) * len);
        for &(dx, dy) in &shifts {
            for y in 0..side {
                for x in 0..side {
                    let (sx, sy) = (x - dx, y - dy);
                    let inside = (0..side).contains(&sx) && (0..side).contains(&sy);
                    for c in 0..data.channels {
                        pixels.push(if inside {
                            img[((sy * side + sx) as usize) * data.channels + c]
                        } else {
                            background
                        });
                    }
                }
            }
            labels.push(data.labels[i as usize]);
        }
    }
    Dataset {
        groups: vec![0; labels.len()],
        pixels: Pixels::Floats(pixels),
        labels,
        side: data.side,
        channels: data.channels,
        classes: data.classes,
    }
}

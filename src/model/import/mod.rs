//! Pretrained ViTs from safetensors files: timm's ViTs and open_clip's (or OpenAI CLIP's)
//! vision tower, read into flotilla's [`Vit`].
//!
//! - `layout`: each family's tensor names and shapes, and the architecture they give away;
//! - `file`: the file's header, and its tensors as `f32`;
//! - `resample`: position embeddings on another patch grid, as timm resamples them;
//! - `write`: a checked checkpoint's tensors written into a model;
//! - `error`: what can be wrong with a checkpoint;
//! - here: the scenario's side of a checkpoint, and checking every tensor against the
//!   architecture its shapes give.
//!
//! Three things change on the way in, none of them the function the model computes:
//! - the checkpoint's input normalisation is folded into the patch embedding, so the data
//!   stays normalised one way for every model;
//! - a grey data set on a colour checkpoint feeds its one channel to every input channel
//!   (the same folding: the channels' weights, each scaled by its normalisation, summed);
//! - timm's fused `qkv` and open_clip's `in_proj_weight` are split into q, k and v, and
//!   every linear weight is transposed into Burn's `[in, out]`.

mod error;
mod file;
mod layout;
mod resample;
mod write;

pub use error::{ImportError, Problem, TensorProblem};
pub use layout::{Architecture, CheckpointLayout};
pub(super) use resample::resample_grid;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::vit::{Activation, Vit, VitConfig, VitStyle};
use write::Writer;

/// The per-channel mean and standard deviation a checkpoint's inputs were normalised with
/// (pixels in `[0, 1]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Normalization {
    /// One mean per channel.
    pub mean: Vec<f64>,
    /// One standard deviation per channel.
    pub std: Vec<f64>,
}

impl Normalization {
    /// ImageNet's, which most of timm's checkpoints use.
    pub(crate) fn imagenet() -> Self {
        Self {
            mean: vec![0.485, 0.456, 0.406],
            std: vec![0.229, 0.224, 0.225],
        }
    }

    /// OpenAI CLIP's, which open_clip's checkpoints keep.
    pub fn clip() -> Self {
        Self {
            mean: vec![0.481_454_66, 0.457_827_5, 0.408_210_73],
            std: vec![0.268_629_54, 0.261_302_58, 0.275_777_11],
        }
    }

    /// The layout's usual one.
    pub fn of(layout: CheckpointLayout) -> Self {
        match layout {
            CheckpointLayout::Timm => Self::imagenet(),
            CheckpointLayout::OpenClip => Self::clip(),
        }
    }
}

/// A pretrained backbone as a scenario names it: the file and what its shapes cannot say.
#[derive(Clone, Debug, PartialEq)]
pub struct Pretrained {
    /// The safetensors file.
    pub file: PathBuf,
    /// Whose names it uses.
    pub layout: CheckpointLayout,
    /// Attention heads.
    pub heads: usize,
    /// The MLP's non-linearity.
    pub activation: Activation,
    /// The layer norms' variance floor.
    pub epsilon: f64,
    /// The normalisation the checkpoint was trained with.
    pub normalization: Normalization,
}

impl Pretrained {
    /// Reads the file's header: its architecture, once every tensor has been checked
    /// against it and the heads against its width.
    pub fn inspect(&self) -> Result<Architecture, ImportError> {
        let fail = |problem| ImportError {
            path: self.file.clone(),
            problem,
        };
        let shapes = file::shapes(&self.file).map_err(fail)?;
        let arch = Architecture::infer(self.layout, &shapes)
            .map_err(|m| fail(Problem::Unrecognized(m)))?;
        let mut problems = Vec::new();
        let expected = arch.expected();
        for (target, shape) in &expected {
            let name = arch.name(*target);
            match shapes.get(&name) {
                None => problems.push(TensorProblem::Missing {
                    name,
                    expected: shape.clone(),
                }),
                Some(found) if found != shape => problems.push(TensorProblem::Shape {
                    name,
                    expected: shape.clone(),
                    found: found.clone(),
                }),
                Some(_) => {}
            }
        }
        let known: std::collections::HashSet<String> =
            expected.iter().map(|(t, _)| arch.name(*t)).collect();
        let mut unexpected: Vec<(&String, &Vec<usize>)> = shapes
            .iter()
            .filter(|(name, _)| name.starts_with(&arch.prefix) && !known.contains(*name))
            .collect();
        unexpected.sort();
        problems.extend(
            unexpected
                .into_iter()
                .map(|(name, shape)| TensorProblem::Unexpected {
                    name: name.clone(),
                    shape: shape.clone(),
                }),
        );
        if !problems.is_empty() {
            return Err(fail(Problem::Tensors(problems)));
        }
        if self.heads == 0 || !arch.dim.is_multiple_of(self.heads) {
            return Err(fail(Problem::Mismatch(format!(
                "{} heads do not divide the checkpoint's width {}",
                self.heads, arch.dim
            ))));
        }
        if self.normalization.mean.len() != arch.channels
            || self.normalization.std.len() != arch.channels
        {
            return Err(fail(Problem::Mismatch(format!(
                "the normalisation has {} means and {} standard deviations for a checkpoint of \
                 {} channels",
                self.normalization.mean.len(),
                self.normalization.std.len(),
                arch.channels
            ))));
        }
        Ok(arch)
    }

    /// The model's configuration for images of `side` pixels with `channels` channels and
    /// `classes` classes.
    pub fn config(
        &self,
        arch: &Architecture,
        side: usize,
        channels: usize,
        classes: usize,
    ) -> VitConfig {
        VitConfig {
            image: side,
            channels,
            patch: arch.patch,
            dim: arch.dim,
            depth: arch.depth,
            heads: self.heads,
            mlp: arch.mlp,
            classes,
            style: VitStyle {
                qkv_bias: arch.qkv_bias,
                epsilon: self.epsilon,
                activation: self.activation,
                pre_norm: arch.pre_norm,
                projection: arch.projection,
                pool: arch.pool,
            },
        }
    }

    /// Writes the checkpoint into `vit`, a model of [`config`](Self::config) for this
    /// architecture whose inputs are normalised by `input` (`(mean, std)`, one pair for
    /// every channel); with `head`, the checkpoint's classifier too.
    pub fn load(
        &self,
        vit: Vit,
        arch: &Architecture,
        input: (f32, f32),
        head: bool,
    ) -> Result<Vit, ImportError> {
        Writer::open(self, arch)?.write(vit, input, head)
    }
}

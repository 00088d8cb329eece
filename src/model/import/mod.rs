//! Pretrained ViTs from safetensors files: timm's ViTs and open_clip's (or OpenAI CLIP's)
//! vision tower, read into flotilla's [`Vit`].
//!
//! - `layout`: each family's tensor names and shapes, and the architecture they give away;
//! - `file`: the file's header, and its tensors as `f32`;
//! - `resample`: position embeddings on another patch grid, as timm resamples them;
//! - here: checking every tensor against the architecture, and writing them into a model.
//!
//! Three things change on the way in, none of them the function the model computes:
//! - the checkpoint's input normalisation is folded into the patch embedding, so the data
//!   stays normalised one way for every model (see [`patch_embedding`]);
//! - a grey data set on a colour checkpoint feeds its one channel to every input channel
//!   (the same folding: the channels' weights, each scaled by its normalisation, summed);
//! - timm's fused `qkv` and open_clip's `in_proj_weight` are split into q, k and v, and
//!   every linear weight is transposed into Burn's `[in, out]`.

mod file;
mod layout;
mod resample;

pub use layout::{Architecture, Layout};
pub use resample::resample_grid;

use std::fmt;
use std::path::PathBuf;

use burn::module::Param;
use burn::nn::{LayerNorm, Linear};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::vit::{Activation, Vit, VitConfig, VitStyle};
use file::Tensors;
use layout::{Layer, Part, Target};

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
    pub fn imagenet() -> Self {
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
    pub fn of(layout: Layout) -> Self {
        match layout {
            Layout::Timm => Self::imagenet(),
            Layout::OpenClip => Self::clip(),
        }
    }
}

/// Why a checkpoint cannot be imported.
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct ImportError {
    /// The checkpoint.
    pub path: PathBuf,
    /// What is wrong with it.
    pub problem: Problem,
}

/// What is wrong with a checkpoint.
#[derive(Debug)]
pub enum Problem {
    /// It cannot be read, or is not a safetensors file of the layout.
    Unreadable(String),
    /// Tensors are missing, unexpected or mis-shaped: every one of them.
    Tensors(Vec<TensorProblem>),
    /// It does not fit the scenario (heads, channels, classes).
    Mismatch(String),
}

/// One tensor that does not fit the architecture.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorProblem {
    /// The architecture needs it and the file lacks it.
    Missing {
        /// The tensor's name.
        name: String,
        /// The shape the model needs.
        expected: Vec<usize>,
    },
    /// The file has it and no part of the model reads it.
    Unexpected {
        /// The tensor's name.
        name: String,
        /// Its shape in the file.
        shape: Vec<usize>,
    },
    /// The file's shape is not the one the model needs.
    Shape {
        /// The tensor's name.
        name: String,
        /// The shape the model needs.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Unreadable(m) | Problem::Mismatch(m) => f.write_str(m),
            Problem::Tensors(list) => {
                let lines: Vec<String> = list.iter().map(ToString::to_string).collect();
                write!(f, "{}", lines.join("; "))
            }
        }
    }
}

impl fmt::Display for TensorProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TensorProblem::Missing { name, expected } => {
                write!(f, "tensor `{name}` {expected:?} is missing")
            }
            TensorProblem::Unexpected { name, shape } => {
                write!(f, "tensor `{name}` {shape:?} is not part of the model")
            }
            TensorProblem::Shape {
                name,
                expected,
                found,
            } => write!(
                f,
                "tensor `{name}` has shape {found:?}, the model needs {expected:?}"
            ),
        }
    }
}

/// A pretrained backbone as a scenario names it: the file and what its shapes cannot say.
#[derive(Clone, Debug, PartialEq)]
pub struct Pretrained {
    /// The safetensors file.
    pub file: PathBuf,
    /// Whose names it uses.
    pub layout: Layout,
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
        let shapes = file::shapes(&self.file).map_err(|m| fail(Problem::Unreadable(m)))?;
        let arch =
            Architecture::infer(self.layout, &shapes).map_err(|m| fail(Problem::Unreadable(m)))?;
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
        let mut unexpected: Vec<TensorProblem> = shapes
            .iter()
            .filter(|(name, _)| name.starts_with(&arch.prefix) && !known.contains(*name))
            .map(|(name, shape)| TensorProblem::Unexpected {
                name: name.clone(),
                shape: shape.clone(),
            })
            .collect();
        unexpected.sort_by(|a, b| a.to_string().cmp(&b.to_string()));
        problems.extend(unexpected);
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
        mut vit: Vit,
        arch: &Architecture,
        input: (f32, f32),
        head: bool,
    ) -> Result<Vit, ImportError> {
        let fail = |problem| ImportError {
            path: self.file.clone(),
            problem,
        };
        let tensors = Tensors::read(&self.file).map_err(|m| fail(Problem::Unreadable(m)))?;
        let get = |t: Target| {
            tensors
                .get(&arch.name(t))
                .map_err(|m| fail(Problem::Unreadable(m)))
        };
        let device = vit.cls.val().device();
        let (d, data_channels) = (
            arch.dim,
            vit.patch_embed.weight.dims()[0] / arch.patch.pow(2),
        );
        if data_channels != arch.channels && data_channels != 1 {
            return Err(fail(Problem::Mismatch(format!(
                "the images have {data_channels} channels and the checkpoint {}: make them grey \
                 (`data.image: (side, 1)`) or of {0} channels",
                arch.channels
            ))));
        }
        vit.cls = param(get(Target::Cls)?, [1, 1, d], &device);
        let grid = (vit.pos.val().dims()[1] - 1).isqrt();
        vit.pos = param(
            positions(get(Target::Pos)?, arch.grid, grid, d),
            [1, grid * grid + 1, d],
            &device,
        );
        let bias = arch
            .patch_bias
            .then(|| get(Target::PatchBias))
            .transpose()?;
        let (weight, bias) = patch_embedding(
            &get(Target::PatchWeight)?,
            bias.as_deref(),
            arch,
            data_channels,
            &self.normalization,
            input,
        );
        vit.patch_embed.weight = param(weight, [arch.patch.pow(2) * data_channels, d], &device);
        vit.patch_embed.bias = Some(param(bias, [d], &device));
        if let Some(norm) = &mut vit.pre_norm {
            set_norm(
                norm,
                get(Target::PreNorm(Part::Weight))?,
                get(Target::PreNorm(Part::Bias))?,
                &device,
            );
        }
        for (i, block) in vit.blocks.iter_mut().enumerate() {
            let b = |layer, part| get(Target::Block(i, layer, part));
            set_norm(
                &mut block.ln1,
                b(Layer::Norm1, Part::Weight)?,
                b(Layer::Norm1, Part::Bias)?,
                &device,
            );
            set_norm(
                &mut block.ln2,
                b(Layer::Norm2, Part::Weight)?,
                b(Layer::Norm2, Part::Bias)?,
                &device,
            );
            let qkv = b(Layer::Qkv, Part::Weight)?;
            let qkv_bias = arch
                .qkv_bias
                .then(|| b(Layer::Qkv, Part::Bias))
                .transpose()?;
            let attn = &mut block.attn;
            for (k, layer) in [&mut attn.q, &mut attn.k, &mut attn.v]
                .into_iter()
                .enumerate()
            {
                let bias = qkv_bias.as_ref().map(|v| v[k * d..(k + 1) * d].to_vec());
                set_linear(
                    &mut layer.base,
                    &qkv[k * d * d..(k + 1) * d * d],
                    bias,
                    d,
                    &device,
                );
            }
            set_linear(
                &mut attn.o.base,
                &b(Layer::Out, Part::Weight)?,
                Some(b(Layer::Out, Part::Bias)?),
                d,
                &device,
            );
            set_linear(
                &mut block.fc1,
                &b(Layer::Fc1, Part::Weight)?,
                Some(b(Layer::Fc1, Part::Bias)?),
                arch.mlp,
                &device,
            );
            set_linear(
                &mut block.fc2,
                &b(Layer::Fc2, Part::Weight)?,
                Some(b(Layer::Fc2, Part::Bias)?),
                d,
                &device,
            );
        }
        set_norm(
            &mut vit.norm,
            get(Target::Norm(Part::Weight))?,
            get(Target::Norm(Part::Bias))?,
            &device,
        );
        if let Some(width) = arch.projection {
            vit.projection = Some(param(get(Target::Projection)?, [d, width], &device));
        }
        if head {
            let classes = vit.head.weight.dims()[1];
            match arch.head {
                Some(c) if c == classes => {}
                found => {
                    return Err(fail(Problem::Mismatch(format!(
                        "`head: Pretrained` needs the checkpoint's head for the data's {classes} \
                         classes; the checkpoint has {}",
                        found.map_or("no head".into(), |c| format!("one of {c} classes"))
                    ))));
                }
            }
            let bias = get(Target::Head(Part::Bias))?;
            set_linear(
                &mut vit.head,
                &get(Target::Head(Part::Weight))?,
                Some(bias),
                classes,
                &device,
            );
        }
        Ok(vit)
    }
}

/// A parameter of `shape` from `values`.
fn param<const D: usize>(values: Vec<f32>, shape: [usize; D], device: &Device) -> Param<Tensor<D>> {
    Param::from_tensor(Tensor::from_data(TensorData::new(values, shape), device))
}

fn set_norm(norm: &mut LayerNorm, gamma: Vec<f32>, beta: Vec<f32>, device: &Device) {
    let d = gamma.len();
    norm.gamma = param(gamma, [d], device);
    norm.beta = Some(param(beta, [d], device));
}

/// `layer` from PyTorch's `[out, in]` `weight` (`out` rows) and its bias.
fn set_linear(
    layer: &mut Linear,
    weight: &[f32],
    bias: Option<Vec<f32>>,
    out: usize,
    device: &Device,
) {
    let d_in = weight.len() / out;
    let mut transposed = vec![0.0; weight.len()];
    for o in 0..out {
        for i in 0..d_in {
            transposed[i * out + o] = weight[o * d_in + i];
        }
    }
    layer.weight = param(transposed, [d_in, out], device);
    layer.bias = bias.map(|b| param(b, [out], device));
}

/// The class token's position and the grid's, resampled from `old` x `old` to `new` x `new`.
fn positions(values: Vec<f32>, old: usize, new: usize, width: usize) -> Vec<f32> {
    if old == new {
        return values;
    }
    let mut out = values[..width].to_vec();
    out.extend(resample_grid(&values[width..], old, new, width));
    out
}

/// The patch embedding as a linear layer over flotilla's patches, from the checkpoint's
/// convolution `[dim, channels, patch, patch]` and bias.
///
/// flotilla's patches are `(row, column, channel)`-ordered values normalised as
/// `(v - input.0) / input.1`; the checkpoint expects `(v - mean_c) / std_c`, which is
/// `a_c x + b_c` of the value `x` it gets, with `a_c = input.1 / std_c` and
/// `b_c = (input.0 - mean_c) / std_c`. The convolution is linear, so scaling its weights
/// by `a_c` and adding its response to `b_c` to the bias computes exactly that. One data
/// channel on several checkpoint channels feeds all of them: their scaled weights sum.
fn patch_embedding(
    conv: &[f32],
    bias: Option<&[f32]>,
    arch: &Architecture,
    data_channels: usize,
    normalization: &Normalization,
    input: (f32, f32),
) -> (Vec<f32>, Vec<f32>) {
    let (d, c, p) = (arch.dim, arch.channels, arch.patch);
    let (m, s) = (f64::from(input.0), f64::from(input.1));
    let a: Vec<f64> = normalization.std.iter().map(|sc| s / sc).collect();
    let b: Vec<f64> = normalization
        .mean
        .iter()
        .zip(&normalization.std)
        .map(|(mc, sc)| (m - mc) / sc)
        .collect();
    let rows = p * p * data_channels;
    let mut weight = vec![0.0f64; rows * d];
    let mut shift: Vec<f64> = (0..d)
        .map(|o| bias.map_or(0.0, |b| f64::from(b[o])))
        .collect();
    for o in 0..d {
        for ch in 0..c {
            let target = if data_channels == 1 { 0 } else { ch };
            for dy in 0..p {
                for dx in 0..p {
                    let w = f64::from(conv[((o * c + ch) * p + dy) * p + dx]);
                    let row = (dy * p + dx) * data_channels + target;
                    weight[row * d + o] += w * a[ch];
                    shift[o] += w * b[ch];
                }
            }
        }
    }
    (
        weight.into_iter().map(|v| v as f32).collect(),
        shift.into_iter().map(|v| v as f32).collect(),
    )
}

//! A checked checkpoint's tensors written into a model, one part at a time.

use burn::module::Param;
use burn::nn::{LayerNorm, Linear};
use burn::tensor::{Device, Tensor, TensorData};

use super::file::Tensors;
use super::layout::{Layer, Part, Target};
use super::{Architecture, ImportError, Normalization, Pretrained, Problem, resample_grid};
use crate::model::vit::{Block, Vit};

/// The file's tensors, read by their role in an architecture.
pub(super) struct Writer<'a> {
    pretrained: &'a Pretrained,
    arch: &'a Architecture,
    tensors: Tensors,
}

impl<'a> Writer<'a> {
    /// Reads the whole file of `pretrained`, checked into `arch`.
    pub(super) fn open(
        pretrained: &'a Pretrained,
        arch: &'a Architecture,
    ) -> Result<Self, ImportError> {
        let tensors = Tensors::read(&pretrained.file).map_err(|p| fail(pretrained, p))?;
        Ok(Self {
            pretrained,
            arch,
            tensors,
        })
    }

    /// `vit` with every part the checkpoint has (the head too with `head`); its inputs
    /// are normalised by `input`.
    pub(super) fn write(
        &self,
        mut vit: Vit,
        input: (f32, f32),
        head: bool,
    ) -> Result<Vit, ImportError> {
        let device = vit.cls.val().device();
        self.embeddings(&mut vit, input, &device)?;
        if let Some(norm) = &mut vit.pre_norm {
            self.norm(norm, Target::PreNorm, &device)?;
        }
        for (i, block) in vit.blocks.iter_mut().enumerate() {
            self.block(i, block, &device)?;
        }
        self.norm(&mut vit.norm, Target::Norm, &device)?;
        if let Some(width) = self.arch.projection {
            let values = self.get(Target::Projection)?;
            vit.projection = Some(param(values, [self.arch.dim, width], &device));
        }
        if head {
            let classes = vit.head.weight.dims()[1];
            if self.arch.head != Some(classes) {
                return Err(self.mismatch(format!(
                    "`head: Pretrained` needs the checkpoint's head for the data's {classes} \
                     classes; the checkpoint has {}",
                    self.arch
                        .head
                        .map_or("no head".into(), |c| format!("one of {c} classes"))
                )));
            }
            let bias = self.get(Target::Head(Part::Bias))?;
            let weight = self.get(Target::Head(Part::Weight))?;
            set_linear(&mut vit.head, &weight, Some(bias), classes, &device);
        }
        Ok(vit)
    }

    /// The class token, the positions (resampled to the model's grid) and the patch
    /// embedding (with the normalisation folded in).
    fn embeddings(
        &self,
        vit: &mut Vit,
        input: (f32, f32),
        device: &Device,
    ) -> Result<(), ImportError> {
        let arch = self.arch;
        let d = arch.dim;
        let data_channels = vit.patch_embed.weight.dims()[0] / arch.patch.pow(2);
        if data_channels != arch.channels && data_channels != 1 {
            return Err(self.mismatch(format!(
                "the images have {data_channels} channels and the checkpoint {}: make them grey \
                 (`data.image: (side, 1)`) or of {0} channels",
                arch.channels
            )));
        }
        vit.cls = param(self.get(Target::Cls)?, [1, 1, d], device);
        let grid = (vit.pos.val().dims()[1] - 1).isqrt();
        let pos = positions(self.get(Target::Pos)?, arch.grid, grid, d);
        vit.pos = param(pos, [1, grid * grid + 1, d], device);
        let bias = match arch.patch_bias {
            true => Some(self.get(Target::PatchBias)?),
            false => None,
        };
        let (weight, bias) = patch_embedding(
            &self.get(Target::PatchWeight)?,
            bias.as_deref(),
            arch,
            data_channels,
            &self.pretrained.normalization,
            input,
        );
        vit.patch_embed.weight = param(weight, [arch.patch.pow(2) * data_channels, d], device);
        vit.patch_embed.bias = Some(param(bias, [d], device));
        Ok(())
    }

    /// Block `i`: its norms, q, k and v split from the fused projection, the output
    /// projection and the MLP.
    fn block(&self, i: usize, block: &mut Block, device: &Device) -> Result<(), ImportError> {
        let d = self.arch.dim;
        let get = |layer, part| self.get(Target::Block(i, layer, part));
        self.norm(
            &mut block.ln1,
            |p| Target::Block(i, Layer::Norm1, p),
            device,
        )?;
        self.norm(
            &mut block.ln2,
            |p| Target::Block(i, Layer::Norm2, p),
            device,
        )?;
        let qkv = get(Layer::Qkv, Part::Weight)?;
        let qkv_bias = match self.arch.qkv_bias {
            true => Some(get(Layer::Qkv, Part::Bias)?),
            false => None,
        };
        let attn = &mut block.attn;
        for (k, layer) in [&mut attn.q, &mut attn.k, &mut attn.v]
            .into_iter()
            .enumerate()
        {
            let bias = qkv_bias.as_ref().map(|v| v[k * d..(k + 1) * d].to_vec());
            let weight = &qkv[k * d * d..(k + 1) * d * d];
            set_linear(&mut layer.base, weight, bias, d, device);
        }
        for (layer, which, out) in [
            (&mut attn.o.base, Layer::Out, d),
            (&mut block.fc1, Layer::Fc1, self.arch.mlp),
            (&mut block.fc2, Layer::Fc2, d),
        ] {
            let bias = get(which, Part::Bias)?;
            set_linear(layer, &get(which, Part::Weight)?, Some(bias), out, device);
        }
        Ok(())
    }

    /// A layer norm's scale and shift, the tensors `target` names.
    fn norm(
        &self,
        norm: &mut LayerNorm,
        target: impl Fn(Part) -> Target,
        device: &Device,
    ) -> Result<(), ImportError> {
        let gamma = self.get(target(Part::Weight))?;
        let beta = self.get(target(Part::Bias))?;
        let d = gamma.len();
        norm.gamma = param(gamma, [d], device);
        norm.beta = Some(param(beta, [d], device));
        Ok(())
    }

    fn get(&self, target: Target) -> Result<Vec<f32>, ImportError> {
        self.tensors
            .get(&self.arch.name(target))
            .map_err(|p| fail(self.pretrained, p))
    }

    fn mismatch(&self, message: String) -> ImportError {
        fail(self.pretrained, Problem::Mismatch(message))
    }
}

fn fail(pretrained: &Pretrained, problem: Problem) -> ImportError {
    ImportError {
        path: pretrained.file.clone(),
        problem,
    }
}

/// A parameter of `shape` from `values`.
fn param<const D: usize>(values: Vec<f32>, shape: [usize; D], device: &Device) -> Param<Tensor<D>> {
    Param::from_tensor(Tensor::from_data(TensorData::new(values, shape), device))
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

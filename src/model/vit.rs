//! A small Vision Transformer (pre-norm blocks, class token, learned positions).
//!
//! One file on purpose: the configuration, its shape checks and the blocks that read it
//! change together; the fused kernels, adapters and heads live in their own modules.

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Device, Distribution, Tensor};
use serde::{Deserialize, Serialize};

use super::adapter::{Film, LoraLinear, PromptNet};
use super::fused::{LAYER_NORM_EPSILON, gelu, layer_norm, softmax_last};
use super::group::Owners;

/// The ViT's shape. Images are square with `channels` planes of `image` x `image` pixels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VitConfig {
    /// The images' side in pixels.
    pub image: usize,
    /// Colour planes.
    pub channels: usize,
    /// The patches' side in pixels.
    pub patch: usize,
    /// The token width.
    pub dim: usize,
    /// Transformer blocks.
    pub depth: usize,
    /// Attention heads.
    pub heads: usize,
    /// The MLP's hidden width.
    pub mlp: usize,
    /// The head's outputs.
    pub classes: usize,
}

/// A backbone shape that cannot be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ShapeError {
    /// The patch side does not divide the image side.
    #[error("patch: must divide the image side ({image}), got {patch}")]
    Patch {
        /// The images' side.
        image: usize,
        /// The patch side.
        patch: usize,
    },
    /// The head count does not divide the token width.
    #[error("heads: must divide dim ({dim}), got {heads}")]
    Heads {
        /// The token width.
        dim: usize,
        /// The head count.
        heads: usize,
    },
    /// A size that must be at least one is zero.
    #[error("{0}: must be at least 1")]
    Zero(&'static str),
}

impl VitConfig {
    /// Checks that the shape can be built: every size positive, patches tiling the image,
    /// heads splitting the width evenly.
    pub fn check(&self) -> Result<(), ShapeError> {
        for (name, value) in [
            ("image", self.image),
            ("channels", self.channels),
            ("dim", self.dim),
            ("depth", self.depth),
            ("mlp", self.mlp),
            ("classes", self.classes),
        ] {
            if value == 0 {
                return Err(ShapeError::Zero(name));
            }
        }
        if self.patch == 0 || !self.image.is_multiple_of(self.patch) {
            return Err(ShapeError::Patch {
                image: self.image,
                patch: self.patch,
            });
        }
        if self.heads == 0 || !self.dim.is_multiple_of(self.heads) {
            return Err(ShapeError::Heads {
                dim: self.dim,
                heads: self.heads,
            });
        }
        Ok(())
    }

    /// Patches per image.
    pub fn tokens(&self) -> usize {
        (self.image / self.patch).pow(2)
    }

    /// Values per patch.
    pub fn patch_dim(&self) -> usize {
        self.patch * self.patch * self.channels
    }

    /// Builds a randomly initialised model (Burn's process-wide generator: seed it first).
    pub fn init(&self, device: &Device) -> Vit {
        let dim = self.dim;
        Vit {
            patch_embed: LinearConfig::new(self.patch_dim(), dim).init(device),
            cls: Param::from_tensor(Tensor::random(
                [1, 1, dim],
                Distribution::Normal(0.0, 0.02),
                device,
            )),
            pos: Param::from_tensor(Tensor::random(
                [1, self.tokens() + 1, dim],
                Distribution::Normal(0.0, 0.02),
                device,
            )),
            prompt: None,
            prompt_net: None,
            blocks: (0..self.depth)
                .map(|_| Block {
                    ln1: LayerNormConfig::new(dim)
                        .with_epsilon(LAYER_NORM_EPSILON)
                        .init(device),
                    film1: None,
                    memory: None,
                    attn: Attention {
                        q: LoraLinear::new(LinearConfig::new(dim, dim).init(device)),
                        k: LoraLinear::new(LinearConfig::new(dim, dim).init(device)),
                        v: LoraLinear::new(LinearConfig::new(dim, dim).init(device)),
                        o: LoraLinear::new(LinearConfig::new(dim, dim).init(device)),
                        heads: self.heads,
                    },
                    ln2: LayerNormConfig::new(dim)
                        .with_epsilon(LAYER_NORM_EPSILON)
                        .init(device),
                    film2: None,
                    fc1: LinearConfig::new(dim, self.mlp).init(device),
                    fc2: LinearConfig::new(self.mlp, dim).init(device),
                })
                .collect(),
            norm: LayerNormConfig::new(dim)
                .with_epsilon(LAYER_NORM_EPSILON)
                .init(device),
            head: LinearConfig::new(dim, self.classes).init(device),
        }
    }
}

/// The Vision Transformer: patch embedding, `depth` blocks, a linear head on the class token.
///
/// The optional parts are adapters that [`AdapterSpec::attach`](super::AdapterSpec::attach)
/// adds; absent, the model is the plain backbone.
#[derive(Module, Debug)]
pub struct Vit {
    /// Patches to tokens.
    pub patch_embed: Linear,
    /// The class token `[1, 1, dim]`.
    pub cls: Param<Tensor<3>>,
    /// Position embeddings `[1, tokens + 1, dim]`.
    pub pos: Param<Tensor<3>>,
    /// Prompt tokens `[1, p, dim]` inserted after the class token (no position embedding).
    pub prompt: Option<Param<Tensor<3>>>,
    /// FedAPT: makes each sample's prompt offset from its frozen features and the keys.
    pub prompt_net: Option<PromptNet>,
    /// The transformer blocks.
    pub blocks: Vec<Block>,
    /// The final norm, on the class token.
    pub norm: LayerNorm,
    /// The classifier.
    pub head: Linear,
}

/// One pre-norm transformer block.
#[derive(Module, Debug)]
pub struct Block {
    pub ln1: LayerNorm,
    /// FiLM of the attention branch's normalised input.
    pub film1: Option<Film>,
    /// Memory tokens `[1, m, dim]` (Sandler et al. 2022): keys and values for the
    /// attention, never queries, so they produce no outputs.
    pub memory: Option<Param<Tensor<3>>>,
    pub attn: Attention,
    pub ln2: LayerNorm,
    /// FiLM of the MLP branch's normalised input.
    pub film2: Option<Film>,
    pub fc1: Linear,
    pub fc2: Linear,
}

/// Multi-head self-attention with separately adaptable q, k, v and output projections.
#[derive(Module, Debug)]
pub struct Attention {
    pub q: LoraLinear,
    pub k: LoraLinear,
    pub v: LoraLinear,
    pub o: LoraLinear,
    #[module(skip)]
    pub heads: usize,
}

/// A batch as the encoder takes it.
pub enum Input {
    /// Image patches `[batch, tokens, patch_dim]`.
    Patches(Tensor<3>),
    /// The frozen prefix's output for the patches: [`Vit::embed`] `[batch, tokens, dim]`.
    Embedded(Tensor<3>),
    /// The whole frozen backbone's output, the class token's features `[batch, dim]`
    /// (only when nothing but the head trains).
    Features(Tensor<2>),
}

/// What the encoder makes of a batch.
pub struct Encoded {
    /// The normalised class token `[batch, dim]`, the head's input.
    pub features: Tensor<2>,
    /// FedAPT's key-matching logits `[batch, clients]`, when the model has a prompt network.
    pub key_logits: Option<Tensor<2>>,
}

impl Vit {
    /// Logits `[batch, classes]` from patches `[batch, tokens, patch_dim]`.
    pub fn forward(&self, patches: Tensor<3>) -> Tensor<2> {
        self.head.forward(self.encode(patches).features)
    }

    /// The model with every LoRA update folded into its base weight: the same outputs up
    /// to float rounding, at the cost of the plain backbone. For inference only.
    pub fn merged(mut self) -> Self {
        for block in &mut self.blocks {
            let attn = &mut block.attn;
            for layer in [&mut attn.q, &mut attn.k, &mut attn.v, &mut attn.o] {
                *layer = layer.merged();
            }
        }
        self
    }

    /// The class token's features (and FedAPT's key logits) for patches
    /// `[batch, tokens, patch_dim]`.
    pub fn encode(&self, patches: Tensor<3>) -> Encoded {
        self.encode_input(Input::Patches(patches), None)
    }

    /// The patch tokens with their positions, before the class token joins them: the
    /// frozen prefix of every adapter but full fine-tuning, `[batch, tokens, dim]`.
    pub fn embed(&self, patches: Tensor<3>) -> Tensor<3> {
        let t = patches.dims()[1];
        rowwise(&self.patch_embed, patches) + self.pos.val().narrow(1, 1, t)
    }

    /// [`encode`](Self::encode) from patches or their cached embedding; with `owners`, the
    /// adapters are a group's, stacked (see [`group`](super::group)), and every sample
    /// goes through its own client's.
    pub fn encode_input(&self, input: Input, owners: Option<&Owners>) -> Encoded {
        let x = match input {
            Input::Patches(p) => self.embed(p),
            Input::Embedded(e) => e,
            Input::Features(features) => {
                return Encoded {
                    features,
                    key_logits: None,
                };
            }
        };
        let [b, _, dim] = x.dims();
        let cls = (self.cls.val() + self.pos.val().narrow(1, 0, 1)).repeat_dim(0, b);
        let x = Tensor::cat(vec![cls, x], 1);
        let tokens = |meta: Tensor<3>| Owners::tokens_per_sample(owners, meta, b);
        let (prompt, key_logits) = match (&self.prompt, &self.prompt_net) {
            (Some(meta), Some(net)) => {
                // The frozen model's view of the sample picks its key.
                let frozen = self.run_blocks(x.clone(), None, None).detach();
                let logits = net.key_logits(frozen);
                let prompt = tokens(meta.val()) + net.offsets(logits.clone());
                (Some(prompt), Some(logits))
            }
            (Some(meta), None) => (Some(tokens(meta.val())), None),
            _ => (None, None),
        };
        let features = self.run_blocks(x, prompt, owners);
        debug_assert_eq!(features.dims(), [b, dim]);
        Encoded {
            features,
            key_logits,
        }
    }

    /// The blocks and final norm over embedded tokens `[batch, 1 + tokens, dim]`, with
    /// prompt tokens inserted after the class token; returns the class token.
    fn run_blocks(
        &self,
        x: Tensor<3>,
        prompt: Option<Tensor<3>>,
        owners: Option<&Owners>,
    ) -> Tensor<2> {
        let [b, t, dim] = x.dims();
        let mut x = match prompt {
            Some(p) => Tensor::cat(vec![x.clone().narrow(1, 0, 1), p, x.narrow(1, 1, t - 1)], 1),
            None => x,
        };
        let last = self.blocks.len().saturating_sub(1);
        for (i, block) in self.blocks.iter().enumerate() {
            // Only the class token leaves the last block: its other rows are never read.
            let rows = if i == last { Rows::Class } else { Rows::All };
            x = block.forward(x, owners, rows);
        }
        // The norm is per token: only the class token's is needed.
        layer_norm(&self.norm, x.narrow(1, 0, 1)).reshape([b, dim])
    }
}

/// Which tokens' outputs a block computes.
#[derive(Copy, Clone)]
enum Rows {
    /// Every token's.
    All,
    /// The class token's alone, `[batch, 1, dim]`. Every token still serves as a key and a
    /// value, but the per-token rest (queries, output projection, MLP) runs on one row:
    /// the last block needs no more, and costs about a quarter of a full one.
    Class,
}

/// `layer` applied to every row of `x` `[batch, tokens, d_in]` as one `[batch · tokens,
/// d_in]` matrix product. Burn's `Linear` on a rank-3 input broadcasts the weight into a
/// batched product of `batch` small ones, several times slower on CPU for these shapes.
pub(crate) fn rowwise(layer: &Linear, x: Tensor<3>) -> Tensor<3> {
    let [b, t, d_in] = x.dims();
    let y = layer.forward(x.reshape([b * t, d_in]));
    let d_out = y.dims()[1];
    y.reshape([b, t, d_out])
}

impl Block {
    /// The block over tokens `x` `[batch, t, dim]`: the outputs of the tokens in `rows`.
    fn forward(&self, x: Tensor<3>, owners: Option<&Owners>, rows: Rows) -> Tensor<3> {
        let [b, _, _] = x.dims();
        let film = |f: &Option<Film>, y: Tensor<3>| match f {
            Some(f) => f.forward(y, owners),
            None => y,
        };
        let h = film(&self.film1, layer_norm(&self.ln1, x.clone()));
        let context = match &self.memory {
            Some(m) => {
                let m = Owners::tokens_per_sample(owners, m.val(), b);
                let m = film(&self.film1, layer_norm(&self.ln1, m));
                Tensor::cat(vec![h.clone(), m], 1)
            }
            None => h.clone(),
        };
        let (x, h) = match rows {
            Rows::All => (x, h),
            Rows::Class => (x.narrow(1, 0, 1), h.narrow(1, 0, 1)),
        };
        let x = x + self.attn.forward(h, context, owners);
        let h = film(&self.film2, layer_norm(&self.ln2, x.clone()));
        let h = rowwise(&self.fc2, gelu(rowwise(&self.fc1, h)));
        x + h
    }
}

impl Attention {
    /// Attention of `queries` `[batch, t_q, dim]` over `context` `[batch, t_k, dim]`: the
    /// normalised tokens, with any memory tokens after them as extra keys and values.
    pub fn forward(
        &self,
        queries: Tensor<3>,
        context: Tensor<3>,
        owners: Option<&Owners>,
    ) -> Tensor<3> {
        let [b, t, d] = queries.dims();
        let h = self.heads;
        let hd = d / h;
        let split = |y: Tensor<3>| {
            let n = y.dims()[1];
            y.reshape([b, n, h, hd]).swap_dims(1, 2)
        };
        let q = split(self.q.forward(queries, owners));
        let k = split(self.k.forward(context.clone(), owners));
        let v = split(self.v.forward(context, owners));
        // Without autodiff (evaluation), the backend's fused attention kernel. With it,
        // Burn's attention falls back to element-wise primitives: the products with one
        // fused softmax are faster.
        let out = if q.is_autodiff() {
            let scores = q
                .matmul(k.swap_dims(2, 3))
                .mul_scalar(1.0 / (hd as f64).sqrt());
            softmax_last(scores).matmul(v)
        } else {
            attention(q, k, v, None, None, AttentionModuleOptions::default())
        };
        let out = out.swap_dims(1, 2).reshape([b, t, d]);
        self.o.forward(out, owners)
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution, Tensor};

    use super::*;
    use crate::model::AdapterSpec;

    /// The last block's class-token shortcut gives what the full block gives for the
    /// class token, in value and in gradient, through three blocks: memory tokens make the
    /// keys and values outnumber the queries of every block.
    #[test]
    fn the_last_block_computes_the_class_token_as_the_full_block_does() {
        let device = Device::flex().autodiff();
        let config = VitConfig {
            image: 6,
            channels: 1,
            patch: 2,
            dim: 12,
            depth: 3,
            heads: 3,
            mlp: 24,
            classes: 2,
        };
        let vit = AdapterSpec::Memory { tokens: 2 }.attach(config.init(&device), 1, &device);
        let x = Tensor::<3>::random([3, 1 + config.tokens(), 12], Distribution::Default, &device)
            .require_grad();
        let shortcut = vit.run_blocks(x.clone(), None, None);
        let mut full = x.clone();
        for block in &vit.blocks {
            full = block.forward(full, None, Rows::All);
        }
        let full = layer_norm(&vit.norm, full.narrow(1, 0, 1)).reshape([3, 12]);
        let weights = Tensor::<2>::random([3, 12], Distribution::Default, &device);
        let values = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().unwrap();
        let gradient = |y: Tensor<2>| {
            let grads = (y * weights.clone()).sum().backward();
            x.grad(&grads)
                .unwrap()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        for (want, got) in [
            (values(full.clone()), values(shortcut.clone())),
            (gradient(full), gradient(shortcut)),
        ] {
            for (a, b) in want.iter().zip(&got) {
                assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "{a} vs {b}");
            }
        }
    }
}

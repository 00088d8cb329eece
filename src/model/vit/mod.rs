//! The Vision Transformer (pre-norm blocks, class token, learned positions) in the
//! styles of flotilla's own small model, timm's ViTs and CLIP's vision tower.
//!
//! - `config`: the shape and style, and their checks;
//! - `init`: a randomly initialised model;
//! - `attach`: adapters attached to it;
//! - `block`: a transformer block and its attention;
//! - here: the model and its encoder, from patches to features.

mod attach;
mod block;
mod config;
mod init;
#[cfg(test)]
mod tests;

pub(crate) use block::{Attention, Block};
pub use config::{Activation, Pooling, ShapeError, VitConfig, VitStyle};

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, Linear};
use burn::tensor::Tensor;

use super::adapter::PromptNet;
use super::fused::layer_norm;
use super::group::Owners;
use super::rowwise::rowwise;
use block::Rows;

/// The Vision Transformer: patch embedding, `depth` blocks, pooled features, a linear head.
///
/// The optional parts are adapters that [`Vit::attach`] adds; absent, the model is the plain backbone.
#[derive(Module, Debug)]
pub struct Vit {
    /// Patches to tokens.
    pub patch_embed: Linear,
    /// The class token `[1, 1, dim]`.
    pub cls: Param<Tensor<3>>,
    /// Position embeddings `[1, tokens + 1, dim]`.
    pub pos: Param<Tensor<3>>,
    /// CLIP's `ln_pre`: a norm over every token before the first block.
    pub pre_norm: Option<LayerNorm>,
    /// Prompt tokens `[1, p, dim]` inserted after the class token (no position embedding).
    pub prompt: Option<Param<Tensor<3>>>,
    /// FedAPT: makes each sample's prompt offset from its frozen features and the keys.
    pub prompt_net: Option<PromptNet>,
    /// The transformer blocks.
    pub blocks: Vec<Block>,
    /// The final norm, on the pooled token.
    pub norm: LayerNorm,
    /// CLIP's `proj` `[dim, features]`: the normalised pooled token to the features.
    pub projection: Option<Param<Tensor<2>>>,
    /// The classifier.
    pub head: Linear,
    /// What the features are pooled from.
    #[module(skip)]
    pub pool: Pooling,
    /// The variance floor of `pre_norm` and `norm`.
    #[module(skip)]
    pub epsilon: f64,
}

/// A batch as the encoder takes it.
pub enum Input {
    /// Image patches `[batch, tokens, patch_dim]`.
    Patches(Tensor<3>),
    /// The frozen prefix's output for the patches: [`Vit::embed`] `[batch, tokens, dim]`.
    Embedded(Tensor<3>),
    /// The whole frozen backbone's output, the features `[batch, features]` (only when
    /// nothing but the head trains).
    Features(Tensor<2>),
}

/// What the encoder makes of a batch.
pub struct EncoderOutput {
    /// The pooled, normalised (and projected) token `[batch, features]`, the head's input.
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

    /// The features (and FedAPT's key logits) for patches
    /// `[batch, tokens, patch_dim]`.
    pub fn encode(&self, patches: Tensor<3>) -> EncoderOutput {
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
    pub(crate) fn encode_input(&self, input: Input, owners: Option<&Owners>) -> EncoderOutput {
        let x = match input {
            Input::Patches(p) => self.embed(p),
            Input::Embedded(e) => e,
            Input::Features(features) => {
                return EncoderOutput {
                    features,
                    key_logits: None,
                };
            }
        };
        let b = x.dims()[0];
        let cls = (self.cls.val() + self.pos.val().narrow(1, 0, 1)).repeat_dim(0, b);
        let x = Tensor::cat(vec![cls, x], 1);
        let x = match &self.pre_norm {
            Some(norm) => layer_norm(norm, x, self.epsilon),
            None => x,
        };
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
        debug_assert_eq!(features.dims(), [b, self.feature_width()]);
        EncoderOutput {
            features,
            key_logits,
        }
    }

    /// The tokens' width.
    pub fn dim(&self) -> usize {
        self.cls.val().dims()[2]
    }

    /// The width of the features the head reads.
    pub(crate) fn feature_width(&self) -> usize {
        self.head.weight.dims()[0]
    }

    /// The blocks, pooling, final norm and projection over embedded tokens
    /// `[batch, 1 + tokens, dim]`, with prompt tokens inserted after the class token;
    /// returns the features `[batch, features]`.
    fn run_blocks(
        &self,
        x: Tensor<3>,
        prompt: Option<Tensor<3>>,
        owners: Option<&Owners>,
    ) -> Tensor<2> {
        let [b, t, dim] = x.dims();
        let prompts = prompt.as_ref().map_or(0, |p| p.dims()[1]);
        let mut x = match prompt {
            Some(p) => Tensor::cat(vec![x.clone().narrow(1, 0, 1), p, x.narrow(1, 1, t - 1)], 1),
            None => x,
        };
        let last = self.blocks.len().saturating_sub(1);
        for (i, block) in self.blocks.iter().enumerate() {
            // With the class token pooled, only it leaves the last block: its other rows
            // are never read.
            let rows = match self.pool {
                Pooling::Class if i == last => Rows::Class,
                _ => Rows::All,
            };
            x = block.forward(x, owners, rows);
        }
        // The norm is per token: only the pooled token's is needed.
        let pooled = match self.pool {
            Pooling::Class => x.narrow(1, 0, 1),
            Pooling::Mean => x.narrow(1, 1 + prompts, t - 1).mean_dim(1),
        };
        let features = layer_norm(&self.norm, pooled, self.epsilon).reshape([b, dim]);
        match &self.projection {
            Some(p) => features.matmul(p.val()),
            None => features,
        }
    }
}

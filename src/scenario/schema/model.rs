//! The backbone, its pretrained weights, the adapter and the head.

use serde::{Deserialize, Serialize};

use crate::model::{Activation, AdapterSpec, CheckpointLayout, HeadSpec, Normalization};

/// The backbone, its pretrained weights and the adapter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// The backbone's architecture.
    pub backbone: Backbone,
    /// A checkpoint written by `flotilla pretrain` for a `Vit` backbone; without one (and
    /// without a `Pretrained` backbone) the backbone is random.
    #[serde(default)]
    pub weights: Option<String>,
    /// What trains on the frozen backbone.
    pub adapter: AdapterSpec,
    /// The classifier on the class token; a trained linear layer unless said otherwise.
    #[serde(default)]
    pub head: HeadSpec,
}

/// Backbone architectures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Backbone {
    /// A vision transformer (pre-norm, class token).
    Vit {
        /// Patch side in pixels.
        patch: usize,
        /// Token width.
        dim: usize,
        /// Transformer blocks.
        depth: usize,
        /// Attention heads.
        heads: usize,
        /// The MLP's hidden width.
        mlp: usize,
    },
    /// A pretrained ViT from a safetensors file with timm's or open_clip's tensor names.
    /// Its patch, width, depth, MLP width, channels, biases, pre-norm, projection and
    /// pooling are read from the tensors' shapes; the rest is given here.
    Pretrained {
        /// The safetensors file, relative to the scenario.
        file: String,
        /// Whose tensor names it uses.
        layout: CheckpointLayout,
        /// Attention heads (the shapes do not tell).
        heads: usize,
        /// The MLP's non-linearity: `Gelu` for timm's ViTs and open_clip's own weights,
        /// `QuickGelu` for OpenAI's CLIP. Required for `OpenClip`.
        #[serde(default)]
        activation: Option<Activation>,
        /// The layer norms' variance floor: timm's ViTs use 1e-6 (the default for `Timm`),
        /// CLIP 1e-5 (the default for `OpenClip`).
        #[serde(default)]
        epsilon: Option<f64>,
        /// The per-channel mean and standard deviation the checkpoint was trained with;
        /// by default ImageNet's for `Timm` and CLIP's for `OpenClip`.
        #[serde(default)]
        normalize: Option<Normalization>,
    },
}

//! The backbone, its pretrained weights, the adapter and the head.

use serde::{Deserialize, Serialize};

use crate::model::{AdapterSpec, HeadSpec};

/// The backbone, its pretrained weights and the adapter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// The backbone's architecture.
    pub backbone: Backbone,
    /// A checkpoint written by `flotilla pretrain`; without one the backbone is random.
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
}

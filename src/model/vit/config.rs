//! The ViT's shape and style, their checks, and a randomly initialised model of them.

use serde::{Deserialize, Serialize};

use crate::model::fused::LAYER_NORM_EPSILON;

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
    /// How the parts are made: flotilla's own ViT by default, timm's or CLIP's when
    /// imported.
    pub style: VitStyle,
}

/// The choices in which ViT families differ at one shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VitStyle {
    /// Whether the query, key and value projections have biases.
    pub qkv_bias: bool,
    /// Every layer norm's variance floor (timm's ViTs: 1e-6; CLIP and flotilla: 1e-5).
    pub epsilon: f64,
    /// The MLP's non-linearity.
    pub activation: Activation,
    /// A layer norm over the tokens before the first block (CLIP's `ln_pre`).
    pub pre_norm: bool,
    /// A linear map without bias of the pooled features to this width (CLIP's `proj`).
    pub projection: Option<usize>,
    /// What the features are made from.
    pub pool: Pooling,
}

impl Default for VitStyle {
    /// flotilla's own ViT: biases everywhere, exact GELU, class token, no pre-norm.
    fn default() -> Self {
        Self {
            qkv_bias: true,
            epsilon: LAYER_NORM_EPSILON,
            activation: Activation::Gelu,
            pre_norm: false,
            projection: None,
            pool: Pooling::Class,
        }
    }
}

/// The MLP's non-linearity.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    /// `x Φ(x)`, with the normal distribution's exact CDF.
    #[default]
    Gelu,
    /// `x σ(1.702 x)`, the approximation OpenAI's CLIP weights were trained with.
    QuickGelu,
}

/// How the tokens become one feature vector.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Pooling {
    /// The class token, after the final norm.
    #[default]
    Class,
    /// The mean of the patch tokens (not the class or prompt tokens), then the final norm
    /// (timm's `global_pool='avg'` with `fc_norm`).
    Mean,
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
        if self.style.projection == Some(0) {
            return Err(ShapeError::Zero("projection"));
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

    /// The width of the features the head reads: the projection's, or the tokens'.
    pub fn features(&self) -> usize {
        self.style.projection.unwrap_or(self.dim)
    }
}

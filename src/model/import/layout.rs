//! The tensor names and shapes of timm's and open_clip's ViTs, and the architecture their
//! shapes give away.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::model::Pooling;

/// Whose tensor names a checkpoint uses.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckpointLayout {
    /// timm's `VisionTransformer` (`cls_token`, `blocks.N.attn.qkv`, ...), as
    /// `model.safetensors` on the Hugging Face hub or `save_file(model.state_dict())`.
    Timm,
    /// open_clip's (and OpenAI CLIP's) vision tower (`conv1`, `transformer.resblocks.N`,
    /// `ln_post`, `proj`), alone or under `visual.` in a whole CLIP checkpoint.
    OpenClip,
}

/// A tensor's role in the model.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum Target {
    /// The class token.
    Cls,
    /// The position embeddings, class token's first.
    Pos,
    /// The patch embedding's convolution `[dim, channels, patch, patch]`.
    PatchWeight,
    /// Its bias.
    PatchBias,
    /// The norm before the first block.
    PreNorm(Part),
    /// A block's layer.
    Block(usize, Layer, Part),
    /// The final norm.
    Norm(Part),
    /// CLIP's projection `[dim, features]`.
    Projection,
    /// The checkpoint's classifier.
    Head(Part),
}

/// A layer of a block.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum Layer {
    Norm1,
    /// Query, key and value, stacked `[3 dim, dim]`.
    Qkv,
    Out,
    Norm2,
    Fc1,
    Fc2,
}

/// A layer's weight or bias.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum Part {
    Weight,
    Bias,
}

/// A ViT as a checkpoint's shapes describe it.
#[derive(Clone, Debug, PartialEq)]
pub struct Architecture {
    /// Whose names the file uses.
    pub layout: CheckpointLayout,
    /// What every name starts with (`visual.` in a whole CLIP checkpoint).
    pub prefix: String,
    /// Input channels of the patch embedding.
    pub channels: usize,
    /// The patch side.
    pub patch: usize,
    /// The patch grid's side the position embeddings were trained at.
    pub grid: usize,
    /// The token width.
    pub dim: usize,
    /// Transformer blocks.
    pub depth: usize,
    /// The MLP's hidden width.
    pub mlp: usize,
    /// Whether q, k and v have biases.
    pub qkv_bias: bool,
    /// Whether the patch embedding has a bias.
    pub patch_bias: bool,
    /// Whether a norm precedes the first block.
    pub pre_norm: bool,
    /// CLIP's projection width.
    pub projection: Option<usize>,
    /// How the features are pooled (timm's `fc_norm` means the mean of the patch tokens).
    pub pool: Pooling,
    /// The classes of the checkpoint's own head, if it has one.
    pub head: Option<usize>,
}

/// Shapes by tensor name, as the file's header lists them.
pub(super) type Shapes = HashMap<String, Vec<usize>>;

impl CheckpointLayout {
    /// The name of `target`'s tensor (without the prefix).
    pub(super) fn name(self, target: Target, pool: Pooling) -> String {
        let part = |p: Part| match p {
            Part::Weight => "weight",
            Part::Bias => "bias",
        };
        match (self, target) {
            (CheckpointLayout::Timm, Target::Cls) => "cls_token".into(),
            (CheckpointLayout::Timm, Target::Pos) => "pos_embed".into(),
            (CheckpointLayout::Timm, Target::PatchWeight) => "patch_embed.proj.weight".into(),
            (CheckpointLayout::Timm, Target::PatchBias) => "patch_embed.proj.bias".into(),
            (CheckpointLayout::Timm, Target::PreNorm(p)) => format!("norm_pre.{}", part(p)),
            (CheckpointLayout::Timm, Target::Norm(p)) => match pool {
                Pooling::Class => format!("norm.{}", part(p)),
                Pooling::Mean => format!("fc_norm.{}", part(p)),
            },
            // timm's ViTs have no projection (its CLIP ports fold it into the head).
            (CheckpointLayout::Timm, Target::Projection) => "proj".into(),
            (CheckpointLayout::Timm, Target::Head(p)) => format!("head.{}", part(p)),
            (CheckpointLayout::Timm, Target::Block(i, layer, p)) => {
                let layer = match layer {
                    Layer::Norm1 => "norm1",
                    Layer::Qkv => "attn.qkv",
                    Layer::Out => "attn.proj",
                    Layer::Norm2 => "norm2",
                    Layer::Fc1 => "mlp.fc1",
                    Layer::Fc2 => "mlp.fc2",
                };
                format!("blocks.{i}.{layer}.{}", part(p))
            }
            (CheckpointLayout::OpenClip, Target::Cls) => "class_embedding".into(),
            (CheckpointLayout::OpenClip, Target::Pos) => "positional_embedding".into(),
            (CheckpointLayout::OpenClip, Target::PatchWeight) => "conv1.weight".into(),
            (CheckpointLayout::OpenClip, Target::PatchBias) => "conv1.bias".into(),
            (CheckpointLayout::OpenClip, Target::PreNorm(p)) => format!("ln_pre.{}", part(p)),
            (CheckpointLayout::OpenClip, Target::Norm(p)) => format!("ln_post.{}", part(p)),
            (CheckpointLayout::OpenClip, Target::Projection) => "proj".into(),
            (CheckpointLayout::OpenClip, Target::Head(p)) => format!("head.{}", part(p)),
            (CheckpointLayout::OpenClip, Target::Block(i, layer, p)) => {
                let layer = match (layer, p) {
                    (Layer::Qkv, Part::Weight) => "attn.in_proj_weight".to_string(),
                    (Layer::Qkv, Part::Bias) => "attn.in_proj_bias".to_string(),
                    (layer, p) => {
                        let layer = match layer {
                            Layer::Norm1 => "ln_1",
                            Layer::Out => "attn.out_proj",
                            Layer::Norm2 => "ln_2",
                            Layer::Fc1 => "mlp.c_fc",
                            _ => "mlp.c_proj",
                        };
                        format!("{layer}.{}", part(p))
                    }
                };
                format!("transformer.resblocks.{i}.{layer}")
            }
        }
    }

    /// The prefix of the vision tower's names in `shapes`.
    fn prefix(self, shapes: &Shapes) -> &'static str {
        match self {
            CheckpointLayout::OpenClip if shapes.contains_key("visual.class_embedding") => {
                "visual."
            }
            _ => "",
        }
    }
}

impl Architecture {
    /// Reads the architecture from the checkpoint's shapes: every size from the tensors
    /// that carry it, the optional parts from their presence. What does not match the
    /// rest is left for [`expected`](Self::expected) to report.
    pub(super) fn infer(layout: CheckpointLayout, shapes: &Shapes) -> Result<Self, String> {
        let prefix = layout.prefix(shapes);
        let get = |target: Target| {
            let name = format!("{prefix}{}", layout.name(target, Pooling::Class));
            shapes.get(&name).map(|s| (name, s.clone()))
        };
        let has = |target: Target| get(target).is_some();
        let (name, conv) = get(Target::PatchWeight).ok_or_else(|| {
            format!(
                "no tensor `{prefix}{}`: is this a {layout:?} checkpoint?",
                layout.name(Target::PatchWeight, Pooling::Class)
            )
        })?;
        let [dim, channels, patch, side] = conv[..] else {
            return Err(format!(
                "`{name}` has shape {conv:?}, expected [dim, channels, patch, patch]"
            ));
        };
        if patch != side {
            return Err(format!(
                "`{name}` has shape {conv:?}: patches must be square"
            ));
        }
        let (name, pos) = get(Target::Pos).ok_or_else(|| {
            format!(
                "no tensor `{prefix}{}`",
                layout.name(Target::Pos, Pooling::Class)
            )
        })?;
        let positions = pos.iter().rev().nth(1).copied().unwrap_or(0);
        let grid = (positions.saturating_sub(1) as f64).sqrt().round() as usize;
        if grid == 0 || grid * grid + 1 != positions {
            return Err(format!(
                "`{name}` has shape {pos:?}: {positions} positions are not a class token and a \
                 square grid of patches"
            ));
        }
        let depth = (0..)
            .take_while(|&i| has(Target::Block(i, Layer::Norm1, Part::Weight)))
            .count();
        let mlp = get(Target::Block(0, Layer::Fc1, Part::Weight))
            .and_then(|(_, s)| s.first().copied())
            .unwrap_or(4 * dim);
        let mean_pool = layout == CheckpointLayout::Timm
            && shapes.contains_key("fc_norm.weight")
            && !shapes.contains_key("norm.weight");
        let head = match layout {
            CheckpointLayout::Timm => {
                get(Target::Head(Part::Weight)).and_then(|(_, s)| s.first().copied())
            }
            CheckpointLayout::OpenClip => None,
        };
        Ok(Self {
            layout,
            prefix: prefix.into(),
            channels,
            patch,
            grid,
            dim,
            depth,
            mlp,
            qkv_bias: has(Target::Block(0, Layer::Qkv, Part::Bias)),
            patch_bias: has(Target::PatchBias),
            pre_norm: has(Target::PreNorm(Part::Weight)),
            projection: match layout {
                CheckpointLayout::OpenClip => {
                    get(Target::Projection).and_then(|(_, s)| s.get(1).copied())
                }
                CheckpointLayout::Timm => None,
            },
            pool: if mean_pool {
                Pooling::Mean
            } else {
                Pooling::Class
            },
            head,
        })
    }

    /// The checkpoint's image side.
    pub fn image(&self) -> usize {
        self.grid * self.patch
    }

    /// Every tensor this architecture has, with its shape, in model order.
    pub(super) fn expected(&self) -> Vec<(Target, Vec<usize>)> {
        let (d, m) = (self.dim, self.mlp);
        let positions = self.grid * self.grid + 1;
        let mut out = match self.layout {
            CheckpointLayout::Timm => vec![
                (Target::Cls, vec![1, 1, d]),
                (Target::Pos, vec![1, positions, d]),
            ],
            CheckpointLayout::OpenClip => {
                vec![(Target::Cls, vec![d]), (Target::Pos, vec![positions, d])]
            }
        };
        out.push((
            Target::PatchWeight,
            vec![d, self.channels, self.patch, self.patch],
        ));
        if self.patch_bias {
            out.push((Target::PatchBias, vec![d]));
        }
        let norm = |out: &mut Vec<_>, make: fn(Part) -> Target| {
            out.push((make(Part::Weight), vec![d]));
            out.push((make(Part::Bias), vec![d]));
        };
        if self.pre_norm {
            norm(&mut out, Target::PreNorm);
        }
        for i in 0..self.depth {
            let b = |layer, part| Target::Block(i, layer, part);
            out.push((b(Layer::Norm1, Part::Weight), vec![d]));
            out.push((b(Layer::Norm1, Part::Bias), vec![d]));
            out.push((b(Layer::Qkv, Part::Weight), vec![3 * d, d]));
            if self.qkv_bias {
                out.push((b(Layer::Qkv, Part::Bias), vec![3 * d]));
            }
            out.push((b(Layer::Out, Part::Weight), vec![d, d]));
            out.push((b(Layer::Out, Part::Bias), vec![d]));
            out.push((b(Layer::Norm2, Part::Weight), vec![d]));
            out.push((b(Layer::Norm2, Part::Bias), vec![d]));
            out.push((b(Layer::Fc1, Part::Weight), vec![m, d]));
            out.push((b(Layer::Fc1, Part::Bias), vec![m]));
            out.push((b(Layer::Fc2, Part::Weight), vec![d, m]));
            out.push((b(Layer::Fc2, Part::Bias), vec![d]));
        }
        norm(&mut out, Target::Norm);
        if let Some(width) = self.projection {
            out.push((Target::Projection, vec![d, width]));
        }
        if let Some(classes) = self.head {
            out.push((Target::Head(Part::Weight), vec![classes, d]));
            out.push((Target::Head(Part::Bias), vec![classes]));
        }
        out
    }

    /// The full name of `target`'s tensor in the file.
    pub(super) fn name(&self, target: Target) -> String {
        format!("{}{}", self.prefix, self.layout.name(target, self.pool))
    }
}

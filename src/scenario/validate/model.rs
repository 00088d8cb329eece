//! The model section: the backbone's shape, its checkpoint, the adapter and the head.

use super::Rule;
use crate::model::{AdapterSpec, CheckpointLayout, HeadSpec};
use crate::scenario::{Backbone, Loaded, ScenarioError};

impl Loaded {
    pub(super) fn validate_model(&self) -> Result<(), ScenarioError> {
        let m = &self.scenario.model;
        match &m.backbone {
            &Backbone::Vit {
                patch,
                dim,
                depth,
                heads,
                mlp,
            } => {
                self.require("model.backbone.dim", dim, Rule::AtLeastOne)?;
                self.require("model.backbone.mlp", mlp, Rule::AtLeastOne)?;
                self.check_patch(patch)?;
                if heads == 0 || dim % heads != 0 {
                    return Err(self.invalid(
                        "model.backbone.heads",
                        format!("must divide dim ({dim}), got {heads}"),
                    ));
                }
                self.require("model.backbone.depth", depth, Rule::AtLeastOne)?;
                if let Some(w) = &m.weights
                    && !self.path(w).is_file()
                {
                    return Err(self.invalid(
                        "model.weights",
                        format!(
                            "file \"{w}\" not found (looked for {}); `flotilla pretrain` writes one",
                            self.path(w).display()
                        ),
                    ));
                }
                self.validate_adapter(dim, depth)?;
            }
            Backbone::Pretrained {
                layout,
                heads,
                activation,
                epsilon,
                normalize,
                ..
            } => {
                self.require("model.backbone.heads", *heads, Rule::AtLeastOne)?;
                if let Some(e) = epsilon {
                    self.require("model.backbone.epsilon", *e, Rule::Positive)?;
                }
                if *layout == CheckpointLayout::OpenClip && activation.is_none() {
                    return Err(self.invalid(
                        "model.backbone.activation",
                        "say QuickGelu for OpenAI's CLIP weights or Gelu for open_clip's own",
                    ));
                }
                if let Some(n) = normalize {
                    if n.mean.len() != n.std.len() || n.mean.is_empty() {
                        return Err(self.invalid(
                            "model.backbone.normalize",
                            "give one mean and one standard deviation per channel",
                        ));
                    }
                    for &s in &n.std {
                        self.require("model.backbone.normalize.std", s, Rule::Positive)?;
                    }
                }
                if m.weights.is_some() {
                    return Err(self.invalid(
                        "model.weights",
                        "a Pretrained backbone's weights are its file; remove model.weights",
                    ));
                }
            }
        }
        self.validate_head()
    }

    /// The image side, when it is known before loading (shaped data and header-read
    /// formats; the run checks the others once the images are in).
    fn known_side(&self) -> Option<usize> {
        self.scenario.data.image.map(|i| i.side).or_else(|| {
            let d = &self.scenario.data;
            d.source.extent(&self.base, d.image).map(|e| e.side)
        })
    }

    /// The patch side must divide the image side.
    fn check_patch(&self, patch: usize) -> Result<(), ScenarioError> {
        let side = self.known_side();
        if patch == 0 || side.is_some_and(|side| !side.is_multiple_of(patch)) {
            return Err(self.invalid(
                "model.backbone.patch",
                format!(
                    "must divide the image side ({}), got {patch}",
                    side.map_or("unknown".into(), |s| s.to_string())
                ),
            ));
        }
        Ok(())
    }

    /// A pretrained backbone's file, checked after everything else: the tensors against
    /// the architecture they give, the adapter against its width and depth, its patches
    /// against the images.
    pub(super) fn validate_backbone_file(&self) -> Result<(), ScenarioError> {
        let Some(pretrained) = self.pretrained() else {
            return Ok(());
        };
        let field = "model.backbone.file";
        if !pretrained.file.is_file() {
            return Err(self.invalid(
                field,
                format!(
                    "{} not found: put the checkpoint there (README, \"Pretrained backbones\", \
                     shows how to get one)",
                    pretrained.file.display()
                ),
            ));
        }
        let arch = pretrained.inspect().map_err(|e| self.refused(field, e))?;
        let side = self.known_side();
        if side.is_some_and(|side| !side.is_multiple_of(arch.patch)) {
            return Err(self.invalid(
                field,
                format!(
                    "the checkpoint's patches are {0}x{0}, which do not tile images of {1}x{1}: \
                     resize them with data.image",
                    arch.patch,
                    side.unwrap_or(0)
                ),
            ));
        }
        if self.scenario.model.head == HeadSpec::Pretrained && arch.head.is_none() {
            return Err(self.invalid(
                "model.head",
                "the checkpoint has no head of its own to keep",
            ));
        }
        self.validate_adapter(arch.dim, arch.depth)
    }

    /// The adapter, against the backbone's width `dim` and `depth`.
    fn validate_adapter(&self, dim: usize, depth: usize) -> Result<(), ScenarioError> {
        let adapter = &self.scenario.model.adapter;
        match adapter {
            AdapterSpec::Lora {
                rank,
                alpha,
                targets,
            } => {
                self.require("model.adapter.rank", *rank, Rule::UpTo(dim))?;
                self.require("model.adapter.alpha", *alpha, Rule::Positive)?;
                if targets.is_empty() {
                    return Err(
                        self.invalid("model.adapter.targets", "name at least one of Q, K, V, O")
                    );
                }
            }
            AdapterSpec::Prompt { tokens }
            | AdapterSpec::AdaptivePrompt { tokens, .. }
            | AdapterSpec::Memory { tokens } => {
                self.require("model.adapter.tokens", *tokens, Rule::AtLeastOne)?;
            }
            AdapterSpec::Blocks { blocks } => {
                if blocks.is_empty() {
                    return Err(self.invalid("model.adapter.blocks", "name at least one block"));
                }
                if let Some(b) = blocks.iter().find(|&&b| b >= depth) {
                    return Err(self.invalid(
                        "model.adapter.blocks",
                        format!("blocks are numbered 0..{depth}, got {b}"),
                    ));
                }
                if (1..blocks.len()).any(|i| blocks[..i].contains(&blocks[i])) {
                    return Err(self.invalid("model.adapter.blocks", "lists a block twice"));
                }
            }
            AdapterSpec::Film | AdapterSpec::HeadOnly | AdapterSpec::Full => {}
        }
        if let Some(w) = adapter.key_loss() {
            self.require("model.adapter.key_loss", w, Rule::NonNegative)?;
        }
        Ok(())
    }

    fn validate_head(&self) -> Result<(), ScenarioError> {
        let s = &self.scenario;
        match &s.model.head {
            HeadSpec::Linear => Ok(()),
            HeadSpec::Pretrained if !matches!(s.model.backbone, Backbone::Pretrained { .. }) => {
                Err(self.invalid(
                    "model.head",
                    "Pretrained keeps a pretrained backbone's own head; this backbone has none",
                ))
            }
            HeadSpec::Pretrained => Ok(()),
            HeadSpec::Frozen | HeadSpec::NaiveBayes { .. }
                if s.model.adapter == AdapterSpec::HeadOnly =>
            {
                Err(self.invalid(
                    "model.head",
                    "HeadOnly trains nothing but the head, which this head kind never trains",
                ))
            }
            HeadSpec::Frozen => Ok(()),
            HeadSpec::NaiveBayes { shrinkage, .. } => {
                self.require("model.head.shrinkage", *shrinkage, Rule::Share)?;
                if s.eval.personalize.is_some() {
                    return Err(self.invalid(
                        "eval.personalize",
                        "the naive Bayes head is always fitted on each client's own data; \
                         remove eval.personalize",
                    ));
                }
                Ok(())
            }
        }
    }
}

//! The model section: the backbone's shape, its checkpoint, the adapter and the head.

use super::Rule;
use crate::model::{AdapterSpec, HeadSpec};
use crate::scenario::{Backbone, Loaded, ScenarioError};

impl Loaded {
    pub(super) fn validate_model(&self) -> Result<(), ScenarioError> {
        let m = &self.scenario.model;
        let Backbone::Vit {
            patch,
            dim,
            depth,
            heads,
            mlp,
        } = m.backbone;
        self.require("model.backbone.dim", dim, Rule::AtLeastOne)?;
        self.require("model.backbone.mlp", mlp, Rule::AtLeastOne)?;
        // The side is known before loading for shaped data and header-read formats; the
        // run checks the others once the images are in.
        let side = self.scenario.data.image.map(|i| i.side).or_else(|| {
            let d = &self.scenario.data;
            d.source.extent(&self.base, d.image).map(|e| e.side)
        });
        if patch == 0 || side.is_some_and(|side| !side.is_multiple_of(patch)) {
            return Err(self.invalid(
                "model.backbone.patch",
                format!(
                    "must divide the image side ({}), got {patch}",
                    side.map_or("unknown".into(), |s| s.to_string())
                ),
            ));
        }
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
        self.validate_head()
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

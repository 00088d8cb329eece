//! The backbone a scenario names, resolved against the images: its configuration, and
//! where its pretrained values come from.

use std::path::PathBuf;

use super::{Backbone, Loaded, ScenarioError};
use crate::data::{MEAN, STD};
use crate::model::{
    Activation, Architecture, CheckpointLayout, Normalization, Pretrained, VitConfig, VitStyle,
    Weights,
};

/// What a run builds its backbone from.
pub(crate) struct BackbonePlan {
    /// The model's configuration for the images.
    pub config: VitConfig,
    /// A timm or open_clip checkpoint, checked into its architecture.
    pub pretrained: Option<(Pretrained, Architecture)>,
    /// The file of pretrained values, of either kind (for the job store's digest).
    pub file: Option<PathBuf>,
    /// The scenario field that names that file, for errors.
    pub field: &'static str,
}

impl BackbonePlan {
    /// The pretrained values, as [`build_model`](crate::model::build_model) takes them.
    pub(crate) fn weights(&self) -> Option<Weights<'_>> {
        match (&self.pretrained, &self.file) {
            (Some((p, arch)), _) => Some(Weights::Pretrained(p, arch, (MEAN, STD))),
            (None, Some(file)) => Some(Weights::Burn(file)),
            (None, None) => None,
        }
    }
}

impl Loaded {
    /// The backbone for images of `side` pixels and `channels` channels, and `classes`
    /// classes; a pretrained backbone's shape is read from its file (which must fit it).
    pub(crate) fn backbone(
        &self,
        side: usize,
        channels: usize,
        classes: usize,
    ) -> Result<BackbonePlan, ScenarioError> {
        let model = &self.scenario.model;
        let pretrained = match &model.backbone {
            &Backbone::Vit {
                patch,
                dim,
                depth,
                heads,
                mlp,
            } => {
                let config = VitConfig {
                    image: side,
                    channels,
                    patch,
                    dim,
                    depth,
                    heads,
                    mlp,
                    classes,
                    style: VitStyle::default(),
                };
                return Ok(BackbonePlan {
                    config,
                    pretrained: None,
                    file: model.weights.as_ref().map(|w| self.path(w)),
                    field: "model.weights",
                });
            }
            Backbone::Pretrained { .. } => self
                .pretrained()
                .expect("the backbone is a pretrained checkpoint"),
        };
        let field = "model.backbone.file";
        let arch = pretrained.inspect().map_err(|e| self.refused(field, e))?;
        Ok(BackbonePlan {
            config: pretrained.config(&arch, side, channels, classes),
            file: Some(pretrained.file.clone()),
            pretrained: Some((pretrained, arch)),
            field,
        })
    }

    /// The model before any image is loaded (for `flotilla adapters`): the images' shape
    /// from the data when it is known, else a pretrained checkpoint's own; ten classes.
    pub fn vit_before_loading(&self) -> Result<VitConfig, ScenarioError> {
        let data = &self.scenario.data;
        let shape = match (data.image, data.source.extent(&self.base, data.image)) {
            (Some(i), _) => Some((i.side, i.channels)),
            (None, Some(e)) => Some((e.side, e.channels)),
            (None, None) => None,
        };
        let shape = match (shape, self.pretrained()) {
            (Some(s), _) => s,
            (None, Some(p)) => {
                let arch = p
                    .inspect()
                    .map_err(|e| self.refused("model.backbone.file", e))?;
                (arch.image(), arch.channels)
            }
            (None, None) => {
                return Err(self.invalid(
                    "data.image",
                    "the images' size is known only once they are loaded: give it here",
                ));
            }
        };
        Ok(self.backbone(shape.0, shape.1, 10)?.config)
    }

    /// The pretrained backbone, with the layout's defaults for what the scenario leaves out.
    pub fn pretrained(&self) -> Option<Pretrained> {
        match &self.scenario.model.backbone {
            Backbone::Pretrained {
                file,
                layout,
                heads,
                activation,
                epsilon,
                normalize,
            } => Some(self.checkpoint(file, *layout, *heads, *activation, *epsilon, normalize)),
            Backbone::Vit { .. } => None,
        }
    }

    /// A `Pretrained` backbone's fields, with the layout's defaults.
    fn checkpoint(
        &self,
        file: &str,
        layout: CheckpointLayout,
        heads: usize,
        activation: Option<Activation>,
        epsilon: Option<f64>,
        normalize: &Option<Normalization>,
    ) -> Pretrained {
        Pretrained {
            file: self.path(file),
            layout,
            heads,
            activation: activation.unwrap_or(Activation::Gelu),
            epsilon: epsilon.unwrap_or(match layout {
                CheckpointLayout::Timm => 1e-6,
                CheckpointLayout::OpenClip => 1e-5,
            }),
            normalization: normalize
                .clone()
                .unwrap_or_else(|| Normalization::of(layout)),
        }
    }
}

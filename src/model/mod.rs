//! The backbone, its adapters, and local training and evaluation with Burn.

mod init;
mod lora;
mod params;
mod personal;
mod train;
mod vit;

pub use init::init_params;
pub use lora::LoraLinear;
pub use params::Trainable;
pub use personal::{PersonalStep, train_maml, train_moreau};
pub use train::{EvalCounts, LocalData, Optimizer, TrainConfig, evaluate, fine_tune, train_local};
pub use vit::{Vit, VitConfig};

use std::path::Path;

use burn::nn::LinearConfig;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

/// An attention projection that LoRA can adapt.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum LoraTarget {
    Q,
    K,
    V,
    O,
}

/// What trains on top of the frozen backbone (the head always does).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum AdapterSpec {
    /// Low-rank updates of the chosen attention projections in every block.
    Lora {
        rank: usize,
        alpha: f64,
        targets: Vec<LoraTarget>,
    },
}

impl AdapterSpec {
    /// The parameters that train (and travel): the adapter's and the head's.
    pub fn trainable(&self) -> Trainable {
        match self {
            AdapterSpec::Lora { targets, .. } => {
                let names: Vec<&str> = targets
                    .iter()
                    .map(|t| match t {
                        LoraTarget::Q => "q",
                        LoraTarget::K => "k",
                        LoraTarget::V => "v",
                        LoraTarget::O => "o",
                    })
                    .collect();
                Trainable::new(&format!(
                    r"blocks\.\d+\.attn\.({})\.lora_[ab]|head\.(weight|bias)",
                    names.join("|")
                ))
            }
        }
    }

    /// Attaches the adapter to `vit`.
    pub fn attach(&self, mut vit: Vit, device: &Device) -> Vit {
        match self {
            AdapterSpec::Lora {
                rank,
                alpha,
                targets,
            } => {
                for block in &mut vit.blocks {
                    let attn = &mut block.attn;
                    for target in targets {
                        let slot = match target {
                            LoraTarget::Q => &mut attn.q,
                            LoraTarget::K => &mut attn.k,
                            LoraTarget::V => &mut attn.v,
                            LoraTarget::O => &mut attn.o,
                        };
                        let plain = std::mem::replace(
                            slot,
                            LoraLinear::new(LinearConfig::new(1, 1).init(device)),
                        );
                        *slot = plain.with_adapter(*rank, *alpha, device);
                    }
                }
                vit
            }
        }
    }
}

/// Builds the model clients fine-tune: the backbone (pretrained weights when given), a
/// fresh head and the adapter, with everything but adapter and head frozen.
///
/// Every value is drawn from `seed` (see [`init_params`]), so the model is the same on
/// every thread and every run.
pub fn build_model(
    config: &VitConfig,
    weights: Option<&Path>,
    adapter: &AdapterSpec,
    seed: u64,
    device: &Device,
) -> Result<Vit, burn::store::RecordError> {
    let mut vit = init_params(config.init(device), &Trainable::new(".*"), seed);
    if let Some(path) = weights {
        use burn::module::Module;
        vit = vit.try_load_file(path)?;
    }
    let vit = adapter.attach(vit, device);
    let trainable = adapter.trainable();
    // A fresh head and fresh adapter factors, from a stream of their own.
    let vit = init_params(vit, &trainable, seed ^ 0x5eed_0ada_97e5);
    Ok(trainable.apply(vit))
}

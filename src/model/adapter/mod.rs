//! The adapters: what trains on top of the frozen backbone, and what travels.

use burn::module::Param;
use burn::nn::LinearConfig;
use burn::tensor::{Device, Distribution, Tensor};
use serde::{Deserialize, Serialize};

mod film;
mod inventory;
mod lora;
mod prompt;

pub use film::Film;
pub use inventory::{AdapterCost, catalog};
pub use lora::LoraLinear;
pub use prompt::PromptNet;

use super::vit::Vit;

/// An attention projection that LoRA can adapt.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum LoraTarget {
    /// The query projection.
    Q,
    /// The key projection.
    K,
    /// The value projection.
    V,
    /// The output projection.
    O,
}

impl LoraTarget {
    fn name(self) -> &'static str {
        match self {
            LoraTarget::Q => "q",
            LoraTarget::K => "k",
            LoraTarget::V => "v",
            LoraTarget::O => "o",
        }
    }
}

fn default_key_loss() -> f64 {
    1.0
}

/// What trains in the backbone (the head is configured apart, see
/// [`HeadSpec`](super::HeadSpec)).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum AdapterSpec {
    /// Low-rank updates of the chosen attention projections in every block.
    Lora {
        /// `r`, the factors' inner size.
        rank: usize,
        /// The update is scaled by `alpha / r`.
        alpha: f64,
        /// The projections adapted in every block.
        targets: Vec<LoraTarget>,
    },
    /// FiLM (as in FiT): a per-channel scale and shift after both layer norms of every
    /// block, starting at the identity.
    Film,
    /// Plain prompt tuning: `tokens` learnable tokens after the class token, shared by all.
    Prompt {
        /// Prompt tokens.
        tokens: usize,
    },
    /// FedAPT: a meta prompt plus an adaptive network that turns each sample's frozen
    /// features, matched against one frozen random key per client, into a personalized
    /// prompt. Clients also learn to match their own key (`key_loss` weighs that loss).
    AdaptivePrompt {
        /// Prompt tokens.
        tokens: usize,
        /// Weight of the key-matching loss.
        #[serde(default = "default_key_loss")]
        key_loss: f64,
    },
    /// `tokens` learnable memory tokens per block, attended to but producing no outputs.
    Memory {
        /// Memory tokens per block.
        tokens: usize,
    },
    /// Nothing in the backbone trains: only the head does.
    HeadOnly,
    /// Every backbone parameter trains (full fine-tuning; FedBABU's body).
    Full,
    /// Only the listed transformer blocks train (FedBABU with a partial body).
    Blocks {
        /// The blocks that train, numbered from 0.
        blocks: Vec<usize>,
    },
}

impl AdapterSpec {
    /// A short name for tables.
    pub fn name(&self) -> String {
        match self {
            AdapterSpec::Lora { rank, targets, .. } => {
                let t: Vec<&str> = targets.iter().map(|t| t.name()).collect();
                format!("LoRA r{rank} {}", t.join(","))
            }
            AdapterSpec::Film => "FiLM".into(),
            AdapterSpec::Prompt { tokens } => format!("prompt x{tokens}"),
            AdapterSpec::AdaptivePrompt { tokens, .. } => format!("adaptive prompt x{tokens}"),
            AdapterSpec::Memory { tokens } => format!("memory x{tokens}"),
            AdapterSpec::HeadOnly => "head only".into(),
            AdapterSpec::Full => "full backbone".into(),
            AdapterSpec::Blocks { blocks } => format!("blocks {blocks:?}"),
        }
    }

    /// Path patterns of the backbone parameters that train.
    pub(super) fn trained(&self) -> Vec<String> {
        match self {
            AdapterSpec::Lora { targets, .. } => {
                let names: Vec<&str> = targets.iter().map(|t| t.name()).collect();
                vec![format!(
                    r"blocks\.\d+\.attn\.({})\.lora_[ab]",
                    names.join("|")
                )]
            }
            AdapterSpec::Film => vec![r"blocks\.\d+\.film[12]\.(scale|shift)".into()],
            AdapterSpec::Prompt { .. } => vec!["prompt".into()],
            AdapterSpec::AdaptivePrompt { .. } => vec![
                "prompt".into(),
                r"prompt_net\.(query|generate)\.(weight|bias)".into(),
            ],
            AdapterSpec::Memory { .. } => vec![r"blocks\.\d+\.memory".into()],
            AdapterSpec::HeadOnly => vec![],
            AdapterSpec::Full => {
                vec![r"patch_embed\..*|cls|pos|pre_norm\..*|blocks\..*|norm\..*|projection".into()]
            }
            AdapterSpec::Blocks { blocks } => {
                let list: Vec<String> = blocks.iter().map(usize::to_string).collect();
                vec![format!(r"blocks\.({})\..*", list.join("|"))]
            }
        }
    }

    /// Path patterns of the parameters [`attach`](Self::attach) creates (to be initialised
    /// from the model's seed).
    pub(super) fn added(&self) -> Vec<String> {
        match self {
            AdapterSpec::AdaptivePrompt { .. } => vec![r"prompt|prompt_net\..*".into()],
            AdapterSpec::Lora { .. }
            | AdapterSpec::Film
            | AdapterSpec::Prompt { .. }
            | AdapterSpec::Memory { .. } => self.trained(),
            AdapterSpec::HeadOnly | AdapterSpec::Full | AdapterSpec::Blocks { .. } => vec![],
        }
    }

    /// Attaches the adapter to `vit`; `clients` is the number of FedAPT keys.
    pub fn attach(&self, mut vit: Vit, clients: usize, device: &Device) -> Vit {
        let dim = vit.patch_embed.weight.dims()[1];
        let tokens = |n: usize| {
            Param::from_tensor(Tensor::random(
                [1, n, dim],
                Distribution::Normal(0.0, 0.02),
                device,
            ))
        };
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
            }
            AdapterSpec::Film => {
                for block in &mut vit.blocks {
                    block.film1 = Some(Film::identity(dim, device));
                    block.film2 = Some(Film::identity(dim, device));
                }
            }
            AdapterSpec::Prompt { tokens: n } => vit.prompt = Some(tokens(*n)),
            AdapterSpec::AdaptivePrompt { tokens: n, .. } => {
                vit.prompt = Some(tokens(*n));
                vit.prompt_net = Some(PromptNet::new(
                    clients,
                    *n,
                    vit.feature_width(),
                    dim,
                    device,
                ));
            }
            AdapterSpec::Memory { tokens: n } => {
                for block in &mut vit.blocks {
                    block.memory = Some(tokens(*n));
                }
            }
            AdapterSpec::HeadOnly | AdapterSpec::Full | AdapterSpec::Blocks { .. } => {}
        }
        vit
    }

    /// The weight of FedAPT's key-matching loss, for the adaptive prompt.
    pub fn key_loss(&self) -> Option<f64> {
        match self {
            AdapterSpec::AdaptivePrompt { key_loss, .. } => Some(*key_loss),
            _ => None,
        }
    }
}

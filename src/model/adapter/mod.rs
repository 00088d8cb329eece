//! The adapters: what trains on top of the frozen backbone, and what travels.

use serde::{Deserialize, Serialize};

mod film;
mod lora;
mod prompt;

pub use film::Film;
pub use lora::LoraLinear;
pub use prompt::PromptNet;

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
    pub(super) fn name(self) -> &'static str {
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

    /// Path patterns of the parameters that attaching the adapter
    /// ([`Vit::attach`](super::Vit::attach)) creates, to be initialised from the model's seed.
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

    /// The weight of FedAPT's key-matching loss, for the adaptive prompt.
    pub fn key_loss(&self) -> Option<f64> {
        match self {
            AdapterSpec::AdaptivePrompt { key_loss, .. } => Some(*key_loss),
            _ => None,
        }
    }
}

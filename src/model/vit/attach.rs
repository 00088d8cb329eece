//! Attaching an adapter: the model's own parts that LoRA, FiLM, prompts and memory tokens
//! add to the plain backbone.

use burn::module::Param;
use burn::nn::LinearConfig;
use burn::tensor::{Device, Distribution, Tensor};

use super::Vit;
use crate::model::adapter::{AdapterSpec, Film, LoraLinear, LoraTarget, PromptNet};

impl Vit {
    /// The model with `adapter` attached; `clients` is the number of FedAPT keys.
    pub fn attach(mut self, adapter: &AdapterSpec, clients: usize, device: &Device) -> Self {
        let dim = self.patch_embed.weight.dims()[1];
        let tokens = |n: usize| {
            Param::from_tensor(Tensor::random(
                [1, n, dim],
                Distribution::Normal(0.0, 0.02),
                device,
            ))
        };
        match adapter {
            AdapterSpec::Lora {
                rank,
                alpha,
                targets,
            } => {
                for block in &mut self.blocks {
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
                for block in &mut self.blocks {
                    block.film1 = Some(Film::identity(dim, device));
                    block.film2 = Some(Film::identity(dim, device));
                }
            }
            AdapterSpec::Prompt { tokens: n } => self.prompt = Some(tokens(*n)),
            AdapterSpec::AdaptivePrompt { tokens: n, .. } => {
                self.prompt = Some(tokens(*n));
                self.prompt_net = Some(PromptNet::new(
                    clients,
                    *n,
                    self.feature_width(),
                    dim,
                    device,
                ));
            }
            AdapterSpec::Memory { tokens: n } => {
                for block in &mut self.blocks {
                    block.memory = Some(tokens(*n));
                }
            }
            AdapterSpec::HeadOnly | AdapterSpec::Full | AdapterSpec::Blocks { .. } => {}
        }
        self
    }
}

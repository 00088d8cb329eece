//! A randomly initialised model of a given shape and style.

use burn::module::Param;
use burn::nn::{LayerNormConfig, LinearConfig};
use burn::tensor::{Device, Distribution, Tensor};

use super::{Attention, Block, Vit, VitConfig};
use crate::model::adapter::LoraLinear;

impl VitConfig {
    /// Builds a randomly initialised model (Burn's process-wide generator: seed it first).
    pub fn init(&self, device: &Device) -> Vit {
        let (dim, style) = (self.dim, &self.style);
        let norm = || {
            LayerNormConfig::new(dim)
                .with_epsilon(style.epsilon)
                .init(device)
        };
        let qkv = || {
            LoraLinear::new(
                LinearConfig::new(dim, dim)
                    .with_bias(style.qkv_bias)
                    .init(device),
            )
        };
        let features = self.features();
        Vit {
            patch_embed: LinearConfig::new(self.patch_dim(), dim).init(device),
            cls: Param::from_tensor(Tensor::random(
                [1, 1, dim],
                Distribution::Normal(0.0, 0.02),
                device,
            )),
            pos: Param::from_tensor(Tensor::random(
                [1, self.tokens() + 1, dim],
                Distribution::Normal(0.0, 0.02),
                device,
            )),
            pre_norm: style.pre_norm.then(norm),
            prompt: None,
            prompt_net: None,
            blocks: (0..self.depth)
                .map(|_| Block {
                    ln1: norm(),
                    film1: None,
                    memory: None,
                    attn: Attention {
                        q: qkv(),
                        k: qkv(),
                        v: qkv(),
                        o: LoraLinear::new(LinearConfig::new(dim, dim).init(device)),
                        heads: self.heads,
                    },
                    ln2: norm(),
                    film2: None,
                    fc1: LinearConfig::new(dim, self.mlp).init(device),
                    fc2: LinearConfig::new(self.mlp, dim).init(device),
                    activation: style.activation,
                    epsilon: style.epsilon,
                })
                .collect(),
            norm: norm(),
            projection: style.projection.map(|width| {
                Param::from_tensor(Tensor::random(
                    [dim, width],
                    Distribution::Normal(0.0, (dim as f64).powf(-0.5)),
                    device,
                ))
            }),
            head: LinearConfig::new(features, self.classes).init(device),
            pool: style.pool,
            epsilon: style.epsilon,
        }
    }
}

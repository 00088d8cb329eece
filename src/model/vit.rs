//! A small Vision Transformer (pre-norm blocks, class token, learned positions).

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::{Device, Distribution, Tensor};
use serde::{Deserialize, Serialize};

use super::lora::LoraLinear;

/// The ViT's shape. Images are square with `channels` planes of `image` x `image` pixels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VitConfig {
    pub image: usize,
    pub channels: usize,
    pub patch: usize,
    pub dim: usize,
    pub depth: usize,
    pub heads: usize,
    pub mlp: usize,
    pub classes: usize,
}

impl VitConfig {
    /// Patches per image.
    pub fn tokens(&self) -> usize {
        (self.image / self.patch).pow(2)
    }

    /// Values per patch.
    pub fn patch_dim(&self) -> usize {
        self.patch * self.patch * self.channels
    }

    /// Builds a randomly initialised model (Burn's process-wide generator: seed it first).
    pub fn init(&self, device: &Device) -> Vit {
        let dim = self.dim;
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
            blocks: (0..self.depth)
                .map(|_| Block {
                    ln1: LayerNormConfig::new(dim).init(device),
                    attn: Attention {
                        q: LoraLinear::new(LinearConfig::new(dim, dim).init(device)),
                        k: LoraLinear::new(LinearConfig::new(dim, dim).init(device)),
                        v: LoraLinear::new(LinearConfig::new(dim, dim).init(device)),
                        o: LoraLinear::new(LinearConfig::new(dim, dim).init(device)),
                        heads: self.heads,
                    },
                    ln2: LayerNormConfig::new(dim).init(device),
                    fc1: LinearConfig::new(dim, self.mlp).init(device),
                    fc2: LinearConfig::new(self.mlp, dim).init(device),
                })
                .collect(),
            norm: LayerNormConfig::new(dim).init(device),
            head: LinearConfig::new(dim, self.classes).init(device),
        }
    }
}

/// The Vision Transformer: patch embedding, `depth` blocks, a linear head on the class token.
#[derive(Module, Debug)]
pub struct Vit {
    pub patch_embed: Linear,
    pub cls: Param<Tensor<3>>,
    pub pos: Param<Tensor<3>>,
    pub blocks: Vec<Block>,
    pub norm: LayerNorm,
    pub head: Linear,
}

/// One pre-norm transformer block.
#[derive(Module, Debug)]
pub struct Block {
    pub ln1: LayerNorm,
    pub attn: Attention,
    pub ln2: LayerNorm,
    pub fc1: Linear,
    pub fc2: Linear,
}

/// Multi-head self-attention with separately adaptable q, k, v and output projections.
#[derive(Module, Debug)]
pub struct Attention {
    pub q: LoraLinear,
    pub k: LoraLinear,
    pub v: LoraLinear,
    pub o: LoraLinear,
    #[module(skip)]
    pub heads: usize,
}

impl Vit {
    /// Logits `[batch, classes]` from patches `[batch, tokens, patch_dim]`.
    pub fn forward(&self, patches: Tensor<3>) -> Tensor<2> {
        let [b, _, _] = patches.dims();
        let x = self.patch_embed.forward(patches);
        let dim = x.dims()[2];
        let cls = self.cls.val().repeat_dim(0, b);
        let mut x = Tensor::cat(vec![cls, x], 1) + self.pos.val();
        for block in &self.blocks {
            x = block.forward(x);
        }
        let x = self.norm.forward(x);
        let cls_out = x.narrow(1, 0, 1).reshape([b, dim]);
        self.head.forward(cls_out)
    }
}

impl Block {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = x.clone() + self.attn.forward(self.ln1.forward(x));
        let h = self
            .fc2
            .forward(gelu(self.fc1.forward(self.ln2.forward(x.clone()))));
        x + h
    }
}

impl Attention {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, t, d] = x.dims();
        let h = self.heads;
        let hd = d / h;
        let split = |y: Tensor<3>| y.reshape([b, t, h, hd]).swap_dims(1, 2);
        let q = split(self.q.forward(x.clone()));
        let k = split(self.k.forward(x.clone()));
        let v = split(self.v.forward(x));
        let scores = q
            .matmul(k.swap_dims(2, 3))
            .mul_scalar(1.0 / (hd as f64).sqrt());
        let out = softmax(scores, 3)
            .matmul(v)
            .swap_dims(1, 2)
            .reshape([b, t, d]);
        self.o.forward(out)
    }
}

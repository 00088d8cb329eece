//! What one training sample costs a device: its floating-point work and the memory a
//! training job needs, counted from the model as it is built.
//!
//! The count follows the model's own forward pass (prompt and memory tokens, FedAPT's
//! extra frozen pass, the last block's class row alone) and the backward pass automatic
//! differentiation runs: an activation's gradient is computed only where a parameter
//! that trains lies before it, a weight's only where it trains. Matrix products are
//! counted, two FLOPs per multiply-add, with their bias additions (the convention of
//! fvcore and timm's profiles, which count products alone); element-wise work (norms,
//! activations, softmax, residual sums, FiLM's affine maps) is not.
//!
//! ```
//! use flotilla::model::{Adaptation, AdapterSpec, SampleCost, VitConfig, VitStyle};
//! let config = VitConfig {
//!     image: 8, channels: 1, patch: 4, dim: 8, depth: 1, heads: 2, mlp: 16, classes: 3,
//!     style: VitStyle::default(),
//! };
//! let head_only = SampleCost::count(&config, &Adaptation::linear(AdapterSpec::HeadOnly));
//! let full = SampleCost::count(&config, &Adaptation::linear(AdapterSpec::Full));
//! // The head alone trains: no activation gradient, the head's weight gradient.
//! assert_eq!(head_only.flops.input_grads, 0);
//! assert_eq!(head_only.flops.weight_grads, 2 * 8 * 3 + 3);
//! assert!(full.flops.total() > 2 * head_only.flops.total());
//! ```

use burn::module::Param;
use burn::nn::{LayerNorm, Linear};
use burn::tensor::Tensor;

use burn::tensor::Device;

mod inventory;

pub use inventory::{AdapterCost, catalog};

use super::adapter::LoraLinear;
use super::train::Optimizer;
use super::vit::Block;
use super::{Adaptation, Depth, Pooling, Trainable, Vit, VitConfig, build_model};

/// Floating-point operations of one training sample, by pass.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Flops {
    /// The forward pass, FedAPT's frozen pass included.
    pub forward: u64,
    /// Gradients with respect to activations, from the first trainable layer on.
    pub input_grads: u64,
    /// Gradients with respect to the parameters that train.
    pub weight_grads: u64,
}

impl Flops {
    /// Forward and backward together.
    pub fn total(&self) -> u64 {
        self.forward + self.input_grads + self.weight_grads
    }
}

/// What one training sample costs a device under one adaptation.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SampleCost {
    /// Forward and backward work of a sample computed from its pixels.
    pub flops: Flops,
    /// The forward work of the frozen prefix (the patch embedding, or the whole backbone
    /// when only the head trains): a device keeps those activations once computed, as the
    /// pool does, so only a client's first job pays it.
    pub prefix: u64,
    /// Values the backward pass keeps per sample (inputs of the products and element-wise
    /// maps that gradients flow through).
    pub saved: u64,
    /// Every value of the model, frozen or not.
    pub params: u64,
    /// The values that train.
    pub trainable: u64,
}

impl SampleCost {
    /// The cost of `adaptation` on a model of shape `config` (built with random weights:
    /// the count depends on shapes alone).
    pub fn count(config: &VitConfig, adaptation: &Adaptation) -> Self {
        let model = build_model(config, None, adaptation, 0, &Device::flex())
            .expect("no checkpoint is read");
        Self::of(&model, adaptation)
    }

    /// The cost of `adaptation` on `model`, which has its adapter attached.
    pub fn of(model: &Vit, adaptation: &Adaptation) -> Self {
        let mut t = Tracer {
            trainable: adaptation.trainable(),
            flops: Flops::default(),
            saved: 0,
        };
        let embedded = t.embed(model);
        let embedding = t.flops.forward;
        let features = t.encode(model, embedded);
        let backbone = t.flops.forward;
        t.head(model, adaptation, features);
        let (trainable, params) = adaptation.trainable().count(model);
        Self {
            flops: t.flops,
            prefix: match adaptation.frozen_prefix() {
                Some(Depth::Embedding) => embedding,
                Some(Depth::Features) => backbone,
                None => 0,
            },
            saved: t.saved,
            params: params as u64,
            trainable: trainable as u64,
        }
    }

    /// The work of one sample once the device keeps its frozen prefix.
    pub fn cached(&self) -> u64 {
        self.flops.total() - self.prefix
    }

    /// Bytes a training job needs at `batch` samples a step: every parameter, the
    /// gradients and the optimiser's state of those that train, the activations the
    /// backward pass keeps for the batch (all `f32`).
    pub fn training_memory(&self, batch: usize, optimizer: &Optimizer) -> u64 {
        let moments = match optimizer {
            Optimizer::Sgd { .. } => 0,
            Optimizer::Adam { .. } => 2,
        };
        4 * (self.params + self.trainable * (1 + moments) + self.saved * batch as u64)
    }
}

/// Walks the model's forward pass, counting as it goes. An activation is a `bool`: whether
/// a parameter that trains lies before it (so that its gradient is computed).
struct Tracer {
    trainable: Trainable,
    flops: Flops,
    saved: u64,
}

impl Tracer {
    fn trains(&self, path: &str) -> bool {
        self.trainable.matches(path)
    }

    /// `rows` rows of width `k` times a `[k, n]` parameter (plus `bias`), the parameter at
    /// `path` training or not.
    fn product(
        &mut self,
        x: bool,
        rows: u64,
        k: u64,
        n: u64,
        bias: Option<&str>,
        path: &str,
    ) -> bool {
        let work = 2 * rows * k * n;
        self.flops.forward += work;
        let weight = self.trains(path);
        let bias = bias.map(|b| (self.trains(b), rows * n));
        if let Some((_, add)) = bias {
            self.flops.forward += add;
        }
        if x {
            self.flops.input_grads += work;
        }
        if weight {
            self.flops.weight_grads += work;
            self.saved += rows * k;
        }
        let bias_trains = bias.is_some_and(|(trains, _)| trains);
        if let Some((true, add)) = bias {
            self.flops.weight_grads += add;
        }
        x || weight || bias_trains
    }

    /// A linear layer at `path` on `rows` rows.
    fn linear(&mut self, x: bool, rows: u64, layer: &Linear, path: &str) -> bool {
        let [k, n] = layer.weight.dims();
        let bias = layer.bias.is_some().then(|| format!("{path}.bias"));
        self.product(
            x,
            rows,
            k as u64,
            n as u64,
            bias.as_deref(),
            &format!("{path}.weight"),
        )
    }

    /// A product of two activations, `[rows, k]` by `[k, n]`.
    fn activations(&mut self, a: bool, b: bool, rows: u64, k: u64, n: u64) -> bool {
        let work = 2 * rows * k * n;
        self.flops.forward += work;
        if a {
            self.flops.input_grads += work;
            self.saved += k * n;
        }
        if b {
            self.flops.input_grads += work;
            self.saved += rows * k;
        }
        a || b
    }

    /// An element-wise map of `values` values with parameters at `paths`: free, but its
    /// input is kept when gradients flow through it.
    fn elementwise(&mut self, x: bool, values: u64, paths: &[String]) -> bool {
        let grad = x || paths.iter().any(|p| self.trains(p));
        if grad {
            self.saved += values;
        }
        grad
    }

    fn norm(&mut self, x: bool, rows: u64, norm: &LayerNorm, path: &str) -> bool {
        let dim = norm.gamma.dims()[0] as u64;
        let params = [format!("{path}.gamma"), format!("{path}.beta")];
        self.elementwise(x, rows * dim, &params)
    }

    fn param<const D: usize>(&self, p: &Param<Tensor<D>>, path: &str) -> (bool, Vec<usize>) {
        (self.trains(path), p.dims().to_vec())
    }

    /// The patch embedding and positions: `[tokens, dim]` from the pixels.
    fn embed(&mut self, model: &Vit) -> bool {
        let tokens = model.pos.dims()[1] as u64 - 1;
        let x = self.linear(false, tokens, &model.patch_embed, "patch_embed");
        let (pos, _) = self.param(&model.pos, "pos");
        x || pos
    }

    /// The class token, prompts and blocks: the features the head reads.
    fn encode(&mut self, model: &Vit, x: bool) -> bool {
        let dim = model.dim() as u64;
        let tokens = model.pos.dims()[1] as u64;
        let (cls, _) = self.param(&model.cls, "cls");
        let mut x = x || cls;
        if let Some(norm) = &model.pre_norm {
            x = self.norm(x, tokens, norm, "pre_norm");
        }
        let prompt = match (&model.prompt, &model.prompt_net) {
            (Some(meta), Some(net)) => {
                // The frozen pass that picks the key: forward only, detached.
                let before = self.flops;
                let saved = self.saved;
                self.features(model, false, tokens, 0);
                self.flops = Flops {
                    forward: self.flops.forward,
                    ..before
                };
                self.saved = saved;
                let clients = net.keys.dims()[0] as u64;
                let q = self.linear(false, 1, &net.query, "prompt_net.query");
                let (keys, _) = self.param(&net.keys, "prompt_net.keys");
                let logits = self.product(q, 1, dim, clients, None, "prompt_net.keys");
                let key = self.product(logits || keys, 1, clients, dim, None, "prompt_net.keys");
                let offsets = self.linear(key, 1, &net.generate, "prompt_net.generate");
                let (meta, dims) = self.param(meta, "prompt");
                Some((offsets || meta, dims[1] as u64))
            }
            (Some(meta), None) => {
                let (meta, dims) = self.param(meta, "prompt");
                Some((meta, dims[1] as u64))
            }
            _ => None,
        };
        let prompts = prompt.map_or(0, |(_, n)| n);
        let x = x || prompt.is_some_and(|(grad, _)| grad);
        self.features(model, x, tokens, prompts)
    }

    /// The blocks, then the pooled token's norm and projection.
    fn features(&mut self, model: &Vit, x: bool, tokens: u64, prompts: u64) -> bool {
        let x = self.blocks(model, x, tokens, prompts);
        let x = self.norm(x, 1, &model.norm, "norm");
        match &model.projection {
            Some(p) => {
                let [k, n] = p.dims();
                self.product(x, 1, k as u64, n as u64, None, "projection")
            }
            None => x,
        }
    }

    /// Every block over `tokens + prompts` tokens.
    fn blocks(&mut self, model: &Vit, mut x: bool, tokens: u64, prompts: u64) -> bool {
        let last = model.blocks.len().saturating_sub(1);
        for (i, block) in model.blocks.iter().enumerate() {
            let rows = match model.pool {
                Pooling::Class if i == last => 1,
                _ => tokens + prompts,
            };
            x = self.block(block, &format!("blocks.{i}"), x, tokens + prompts, rows);
        }
        x
    }

    /// One block over `t` tokens, computing the outputs of `rows` of them.
    fn block(&mut self, block: &Block, path: &str, x: bool, t: u64, rows: u64) -> bool {
        let dim = block.ln1.gamma.dims()[0] as u64;
        let film = |name: &str, present: bool| -> Vec<String> {
            if present {
                vec![
                    format!("{path}.{name}.scale"),
                    format!("{path}.{name}.shift"),
                ]
            } else {
                Vec::new()
            }
        };
        let h = self.norm(x, t, &block.ln1, &format!("{path}.ln1"));
        let h = self.elementwise(h, t * dim, &film("film1", block.film1.is_some()));
        let (context, memory) = match &block.memory {
            Some(m) => {
                let (trains, dims) = self.param(m, &format!("{path}.memory"));
                let m_rows = dims[1] as u64;
                let m = self.norm(trains, m_rows, &block.ln1, &format!("{path}.ln1"));
                let m = self.elementwise(m, m_rows * dim, &film("film1", block.film1.is_some()));
                (h || m, m_rows)
            }
            None => (h, 0),
        };
        let attn = &block.attn;
        let q = self.lora(h, rows, &attn.q, &format!("{path}.attn.q"));
        let k = self.lora(context, t + memory, &attn.k, &format!("{path}.attn.k"));
        let v = self.lora(context, t + memory, &attn.v, &format!("{path}.attn.v"));
        // Every head's scores and mixing: rows x (t + memory) per head over dim / heads.
        let scores = self.activations(q, k, rows, dim, t + memory);
        let heads = attn.heads as u64;
        let probs = self.elementwise(scores, heads * rows * (t + memory), &[]);
        let mixed = self.activations(probs, v, rows, t + memory, dim);
        let out = self.lora(mixed, rows, &attn.o, &format!("{path}.attn.o"));
        let x = x || out;
        let h = self.norm(x, rows, &block.ln2, &format!("{path}.ln2"));
        let h = self.elementwise(h, rows * dim, &film("film2", block.film2.is_some()));
        let h = self.linear(h, rows, &block.fc1, &format!("{path}.fc1"));
        let mlp = block.fc1.weight.dims()[1] as u64;
        let h = self.elementwise(h, rows * mlp, &[]);
        let h = self.linear(h, rows, &block.fc2, &format!("{path}.fc2"));
        x || h
    }

    /// A projection with its low-rank update, if it has one.
    fn lora(&mut self, x: bool, rows: u64, layer: &LoraLinear, path: &str) -> bool {
        let base = self.linear(x, rows, &layer.base, &format!("{path}.base"));
        match (&layer.lora_a, &layer.lora_b) {
            (Some(a), Some(b)) => {
                let [d_in, r] = a.dims();
                let d_out = b.dims()[1];
                let down = self.product(
                    x,
                    rows,
                    d_in as u64,
                    r as u64,
                    None,
                    &format!("{path}.lora_a"),
                );
                let up = self.product(
                    down,
                    rows,
                    r as u64,
                    d_out as u64,
                    None,
                    &format!("{path}.lora_b"),
                );
                base || up
            }
            _ => base,
        }
    }

    /// The classifier: the linear head (trained or frozen), or FiT's naive Bayes head.
    fn head(&mut self, model: &Vit, adaptation: &Adaptation, features: bool) {
        let f = model.feature_width() as u64;
        let classes = model.head.weight.dims()[1] as u64;
        if adaptation.head.naive_bayes().is_some() {
            // Half of each batch fits the head: its class means and centring (c x f each)
            // and covariance (f x f); the other half is scored against every class's
            // precision (c products of f x f). Per sample, the mean of the two halves.
            let fit = 2 * 2 * classes * f + 2 * f * f;
            let score = classes * 2 * f * f;
            let work = (fit + score) / 2;
            self.flops.forward += work;
            if features {
                self.flops.input_grads += work;
                self.saved += f + classes * f;
            }
            return;
        }
        let _ = self.linear(features, 1, &model.head, "head");
    }
}

#[cfg(test)]
mod tests;

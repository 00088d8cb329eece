//! One pre-norm transformer block and its multi-head attention.

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, Linear};
use burn::tensor::Tensor;
use burn::tensor::activation::sigmoid;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;

use super::Activation;
use crate::model::adapter::{Film, LoraLinear};
use crate::model::fused::{gelu, layer_norm, softmax_last};
use crate::model::group::Owners;
use crate::model::rowwise::rowwise;

/// One pre-norm transformer block.
#[derive(Module, Debug)]
pub struct Block {
    pub ln1: LayerNorm,
    /// FiLM of the attention branch's normalised input.
    pub film1: Option<Film>,
    /// Memory tokens `[1, m, dim]` (Sandler et al. 2022): keys and values for the
    /// attention, never queries, so they produce no outputs.
    pub memory: Option<Param<Tensor<3>>>,
    pub attn: Attention,
    pub ln2: LayerNorm,
    /// FiLM of the MLP branch's normalised input.
    pub film2: Option<Film>,
    pub fc1: Linear,
    pub fc2: Linear,
    /// The MLP's non-linearity.
    #[module(skip)]
    pub activation: Activation,
    /// The layer norms' variance floor.
    #[module(skip)]
    pub epsilon: f64,
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

/// Which tokens' outputs a block computes.
#[derive(Copy, Clone)]
pub(super) enum Rows {
    /// Every token's.
    All,
    /// The class token's alone, `[batch, 1, dim]`. Every token still serves as a key and a
    /// value, but the per-token rest (queries, output projection, MLP) runs on one row:
    /// the last block needs no more, and costs about a quarter of a full one.
    Class,
}

impl Block {
    /// The block over tokens `x` `[batch, t, dim]`: the outputs of the tokens in `rows`.
    pub(super) fn forward(&self, x: Tensor<3>, owners: Option<&Owners>, rows: Rows) -> Tensor<3> {
        let [b, _, _] = x.dims();
        let film = |f: &Option<Film>, y: Tensor<3>| match f {
            Some(f) => f.forward(y, owners),
            None => y,
        };
        let h = film(&self.film1, layer_norm(&self.ln1, x.clone(), self.epsilon));
        let context = match &self.memory {
            Some(m) => {
                let m = Owners::tokens_per_sample(owners, m.val(), b);
                let m = film(&self.film1, layer_norm(&self.ln1, m, self.epsilon));
                Tensor::cat(vec![h.clone(), m], 1)
            }
            None => h.clone(),
        };
        let (x, h) = match rows {
            Rows::All => (x, h),
            Rows::Class => (x.narrow(1, 0, 1), h.narrow(1, 0, 1)),
        };
        let x = x + self.attn.forward(h, context, owners);
        let h = film(&self.film2, layer_norm(&self.ln2, x.clone(), self.epsilon));
        let h = rowwise(&self.fc2, activate(self.activation, rowwise(&self.fc1, h)));
        x + h
    }
}

impl Attention {
    /// Attention of `queries` `[batch, t_q, dim]` over `context` `[batch, t_k, dim]`: the
    /// normalised tokens, with any memory tokens after them as extra keys and values.
    pub fn forward(
        &self,
        queries: Tensor<3>,
        context: Tensor<3>,
        owners: Option<&Owners>,
    ) -> Tensor<3> {
        let [b, t, d] = queries.dims();
        let h = self.heads;
        let hd = d / h;
        let split = |y: Tensor<3>| {
            let n = y.dims()[1];
            y.reshape([b, n, h, hd]).swap_dims(1, 2)
        };
        let q = split(self.q.forward(queries, owners));
        let k = split(self.k.forward(context.clone(), owners));
        let v = split(self.v.forward(context, owners));
        // Without autodiff (evaluation), the backend's fused attention kernel. With it,
        // Burn's attention falls back to element-wise primitives: the products with one
        // fused softmax are faster.
        let out = if q.is_autodiff() {
            let scores = q
                .matmul(k.swap_dims(2, 3))
                .mul_scalar(1.0 / (hd as f64).sqrt());
            softmax_last(scores).matmul(v)
        } else {
            attention(q, k, v, None, None, AttentionModuleOptions::default())
        };
        let out = out.swap_dims(1, 2).reshape([b, t, d]);
        self.o.forward(out, owners)
    }
}

/// `activation` of `x`.
fn activate(activation: Activation, x: Tensor<3>) -> Tensor<3> {
    match activation {
        Activation::Gelu => gelu(x),
        Activation::QuickGelu => x.clone() * sigmoid(x.mul_scalar(1.702)),
    }
}

//! LoRA (Hu et al. 2021): a frozen linear layer plus a trainable low-rank update.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{Device, Distribution, Tensor};

use crate::model::Owners;
use crate::model::rowwise::rowwise;

/// `y = x W + b + (alpha / r) · x A B`, with `A: [d_in, r]` and `B: [r, d_out]`.
///
/// `B` starts at zero, so attaching an adapter leaves the model's outputs unchanged. The
/// factors are explicit parameters (rather than a reparameterisation of `W`) so that
/// different samples of one batch can later use different clients' factors.
#[derive(Module, Debug)]
pub struct LoraLinear {
    /// The frozen projection `W`, `b`.
    pub base: Linear,
    /// `A: [d_in, r]`, once attached.
    pub lora_a: Option<Param<Tensor<2>>>,
    /// `B: [r, d_out]`, once attached.
    pub lora_b: Option<Param<Tensor<2>>>,
    /// `alpha / r`.
    #[module(skip)]
    pub scale: f64,
}

impl LoraLinear {
    /// A plain linear layer with no adapter yet.
    pub fn new(base: Linear) -> Self {
        Self {
            base,
            lora_a: None,
            lora_b: None,
            scale: 0.0,
        }
    }

    /// Attaches a rank-`rank` adapter: `A ~ N(0, 1/rank)`, `B = 0`.
    pub(crate) fn with_adapter(mut self, rank: usize, alpha: f64, device: &Device) -> Self {
        let [d_in, d_out] = self.base.weight.val().dims();
        let std = 1.0 / rank as f64;
        self.lora_a = Some(Param::from_tensor(Tensor::random(
            [d_in, rank],
            Distribution::Normal(0.0, std),
            device,
        )));
        self.lora_b = Some(Param::from_tensor(Tensor::zeros([rank, d_out], device)));
        self.scale = alpha / rank as f64;
        self
    }

    /// The same map with the update folded into the base weight, `W + (alpha / r) · A B`:
    /// one product instead of three, for inference (as PEFT's `merge_and_unload`).
    pub fn merged(&self) -> Self {
        let (Some(a), Some(b)) = (&self.lora_a, &self.lora_b) else {
            return self.clone();
        };
        let delta = a.val().matmul(b.val()).mul_scalar(self.scale);
        Self::new(Linear {
            weight: self.base.weight.clone().map(|w| w + delta),
            bias: self.base.bias.clone(),
        })
    }

    /// The projection of `x` `[batch, tokens, d_in]`; with `owners`, each sample through
    /// its own client's factors.
    pub fn forward(&self, x: Tensor<3>, owners: Option<&Owners>) -> Tensor<3> {
        let y = rowwise(&self.base, x.clone());
        match (&self.lora_a, &self.lora_b) {
            (Some(a), Some(b)) => {
                let [n, t, d_in] = x.dims();
                let rows = x.reshape([n * t, d_in]);
                let down = rows.matmul(a.val());
                // A group's factors side by side: every sample keeps its own client's
                // `r` columns of the down-projection, so the up-projection sums only those.
                let down = match owners {
                    Some(o) => {
                        let r = a.dims()[1];
                        let mask = o.spread(r / o.clients()).reshape([n, 1, r]);
                        (down.reshape([n, t, r]) * mask).reshape([n * t, r])
                    }
                    None => down,
                };
                let delta = down.matmul(b.val().mul_scalar(self.scale));
                let d_out = delta.dims()[1];
                y + delta.reshape([n, t, d_out])
            }
            _ => y,
        }
    }
}

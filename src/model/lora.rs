//! LoRA (Hu et al. 2021): a frozen linear layer plus a trainable low-rank update.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{Device, Distribution, Tensor};

use super::group::Owners;
use super::vit::rowwise;

/// `y = x W + b + (alpha / r) · x A B`, with `A: [d_in, r]` and `B: [r, d_out]`.
///
/// `B` starts at zero, so attaching an adapter leaves the model's outputs unchanged. The
/// factors are explicit parameters (rather than a reparameterisation of `W`) so that
/// different samples of one batch can later use different clients' factors.
#[derive(Module, Debug)]
pub struct LoraLinear {
    pub base: Linear,
    pub lora_a: Option<Param<Tensor<2>>>,
    pub lora_b: Option<Param<Tensor<2>>>,
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
    pub fn with_adapter(mut self, rank: usize, alpha: f64, device: &Device) -> Self {
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

    pub fn forward(&self, x: Tensor<3>, owners: Option<&Owners>) -> Tensor<3> {
        let y = rowwise(&self.base, x.clone());
        match (&self.lora_a, &self.lora_b) {
            (Some(a), Some(b)) => {
                let [n, t, d_in] = x.dims();
                let low_rank = |x: Tensor<3>, a: Tensor<2>, b: Tensor<2>| {
                    let rows = x.dims()[0] * t;
                    x.reshape([rows, d_in]).matmul(a).matmul(b)
                };
                let delta = match owners {
                    // A group's factors side by side: each client's rows take its own.
                    Some(o) => {
                        let r = a.dims()[1] / o.clients();
                        o.per_client(x, |k, rows| {
                            low_rank(
                                rows,
                                a.val().narrow(1, k * r, r),
                                b.val().narrow(0, k * r, r),
                            )
                        })
                    }
                    None => low_rank(x, a.val(), b.val()),
                }
                .mul_scalar(self.scale);
                let d_out = delta.dims()[1];
                y + delta.reshape([n, t, d_out])
            }
            _ => y,
        }
    }
}

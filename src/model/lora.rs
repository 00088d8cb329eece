//! LoRA (Hu et al. 2021): a frozen linear layer plus a trainable low-rank update.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{Device, Distribution, Tensor};

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

    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let y = self.base.forward(x.clone());
        match (&self.lora_a, &self.lora_b) {
            (Some(a), Some(b)) => {
                let [n, t, d_in] = x.dims();
                let delta = x
                    .reshape([n * t, d_in])
                    .matmul(a.val())
                    .matmul(b.val())
                    .mul_scalar(self.scale);
                let d_out = delta.dims()[1];
                y + delta.reshape([n, t, d_out])
            }
            _ => y,
        }
    }
}

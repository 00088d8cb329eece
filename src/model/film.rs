//! FiLM (Perez et al. 2018), as FiT uses it: a per-channel scale and shift of a frozen
//! layer's output.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

/// `y = x ⊙ scale + shift` over the last (channel) dimension; starts as the identity.
#[derive(Module, Debug)]
pub struct Film {
    pub scale: Param<Tensor<1>>,
    pub shift: Param<Tensor<1>>,
}

impl Film {
    /// The identity modulation of `dim` channels.
    pub fn identity(dim: usize, device: &Device) -> Self {
        Self {
            scale: Param::from_tensor(Tensor::ones([dim], device)),
            shift: Param::from_tensor(Tensor::zeros([dim], device)),
        }
    }

    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let dim = self.scale.dims()[0];
        x * self.scale.val().reshape([1, 1, dim]) + self.shift.val().reshape([1, 1, dim])
    }
}

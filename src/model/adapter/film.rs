//! FiLM (Perez et al. 2018), as FiT uses it: a per-channel scale and shift of a frozen
//! layer's output.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use crate::model::Owners;

/// `y = x ⊙ scale + shift` over the last (channel) dimension; starts as the identity.
#[derive(Module, Debug)]
pub struct Film {
    /// Per-channel scale, 1 at first.
    pub scale: Param<Tensor<1>>,
    /// Per-channel shift, 0 at first.
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

    /// `x` `[batch, tokens, dim]` modulated; with `owners`, each sample by its own
    /// client's vectors.
    pub fn forward(&self, x: Tensor<3>, owners: Option<&Owners>) -> Tensor<3> {
        let dim = x.dims()[2];
        match owners {
            // A group's vectors side by side: each sample takes its own client's.
            Some(o) => {
                let b = x.dims()[0];
                let per_sample =
                    |v: Tensor<1>| o.pick(v.reshape([o.clients(), dim])).reshape([b, 1, dim]);
                x * per_sample(self.scale.val()) + per_sample(self.shift.val())
            }
            None => {
                x * self.scale.val().reshape([1, 1, dim]) + self.shift.val().reshape([1, 1, dim])
            }
        }
    }
}

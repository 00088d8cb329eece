//! Client batching: several clients' adapters side by side in one model, so that one
//! forward/backward pass over the shared frozen backbone trains them all.
//!
//! Each trainable tensor holds the group's `K` adapters concatenated along its *client
//! axis* (see [`client_axis`]); every sample carries the index of the client it belongs to
//! ([`Owners`]) and goes through that client's slice alone. The loss is the sum of the
//! clients' mean losses, so each slice's gradient is exactly its client's gradient, and
//! any element-wise optimiser (SGD, Adam) steps every client as if it trained alone.

use burn::tensor::{Device, Tensor, TensorData};

/// The axis along which a trainable tensor stacks the group's adapters: the output axis of
/// the linear maps (LoRA's down-projection `lora_a` `[in, r]`, the head's weight
/// `[dim, classes]`), the first axis of everything else (LoRA's `lora_b` `[r, out]`,
/// FiLM's vectors, prompt and memory tokens `[1, n, dim]`, biases).
pub(super) fn client_axis(path: &str) -> usize {
    if path.ends_with("lora_a") || path.ends_with("head.weight") {
        1
    } else {
        0
    }
}

/// Which client of the group each sample of a batch belongs to: the batch holds each
/// client's samples in one run, clients in order.
#[derive(Clone, Debug)]
pub struct Owners {
    /// `[batch, clients]`, one 1 per row in the owner's column.
    onehot: Tensor<2>,
    clients: usize,
}

impl Owners {
    /// A batch of `sizes[k]` samples of client `k`, for each `k` in order.
    pub fn new(sizes: &[usize], device: &Device) -> Self {
        let clients = sizes.len();
        let rows: usize = sizes.iter().sum();
        let mut onehot = vec![0.0f32; rows * clients];
        let mut start = 0;
        for (k, &n) in sizes.iter().enumerate() {
            for i in start..start + n {
                onehot[i * clients + k] = 1.0;
            }
            start += n;
        }
        Self {
            onehot: Tensor::from_data(TensorData::new(onehot, [rows, clients]), device),
            clients,
        }
    }

    /// Clients in the group.
    pub fn clients(&self) -> usize {
        self.clients
    }

    /// Each sample's row of `per_client` `[clients, n]`: `[batch, n]`.
    pub fn pick(&self, per_client: Tensor<2>) -> Tensor<2> {
        self.onehot.clone().matmul(per_client)
    }

    /// Each sample's tokens `[batch, n, dim]`: its own client's slice of a group's
    /// `stacked` `[clients, n, dim]` with `owners`, else the one client's `[1, n, dim]`
    /// repeated.
    pub(crate) fn tokens_per_sample(
        owners: Option<&Self>,
        stacked: Tensor<3>,
        batch: usize,
    ) -> Tensor<3> {
        let [k, n, dim] = stacked.dims();
        match owners {
            Some(o) => o
                .pick(stacked.reshape([k, n * dim]))
                .reshape([batch, n, dim]),
            None => stacked.repeat_dim(0, batch),
        }
    }

    /// Each sample's own `width` columns of a group's `[.., clients · width]` output
    /// (clients side by side), as a 0/1 mask `[batch, clients · width]`.
    pub fn spread(&self, width: usize) -> Tensor<2> {
        let [b, k] = self.onehot.dims();
        self.onehot
            .clone()
            .reshape([b, k, 1])
            .repeat_dim(2, width)
            .reshape([b, k * width])
    }

    /// Each sample's own `[width]` block of `stacked` `[batch, clients · width]`:
    /// `[batch, width]`.
    pub(crate) fn own_block(&self, stacked: Tensor<2>) -> Tensor<2> {
        let [b, k] = self.onehot.dims();
        let width = stacked.dims()[1] / k;
        (stacked.reshape([b, k, width]) * self.onehot.clone().reshape([b, k, 1]))
            .sum_dim(1)
            .reshape([b, width])
    }
}

//! Images as the model reads them: cut into patches, as tensors, with their labels.

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::data::Dataset;

/// Samples `idx` of `data` cut into `patch`-sized tokens `[samples, tokens, patch_dim]`,
/// and their labels.
pub(crate) fn batch_tensors(
    data: &Dataset,
    idx: &[u32],
    patch: usize,
    device: &Device,
) -> (Tensor<3>, Tensor<1, Int>) {
    let (pixels, labels) = data.patches(idx, patch);
    let tokens = (data.side / patch).pow(2);
    let patch_dim = patch * patch * data.channels;
    let x = Tensor::from_data(
        TensorData::new(pixels, [idx.len(), tokens, patch_dim]),
        device,
    );
    let y = Tensor::from_data(TensorData::new(labels, [idx.len()]), device);
    (x, y)
}

/// The labels of samples `idx` of `data`.
pub(crate) fn labels(data: &Dataset, idx: &[u32], device: &Device) -> Tensor<1, Int> {
    let labels: Vec<i64> = idx
        .iter()
        .map(|&i| data.labels[i as usize] as i64)
        .collect();
    Tensor::from_data(TensorData::new(labels, [idx.len()]), device)
}

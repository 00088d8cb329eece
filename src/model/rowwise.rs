//! A linear layer over every token of a batch as one matrix product.

use burn::nn::Linear;
use burn::tensor::Tensor;

/// `layer` applied to every row of `x` `[batch, tokens, d_in]` as one `[batch · tokens,
/// d_in]` matrix product. Burn's `Linear` on a rank-3 input broadcasts the weight into a
/// batched product of `batch` small ones, several times slower on CPU for these shapes.
pub(crate) fn rowwise(layer: &Linear, x: Tensor<3>) -> Tensor<3> {
    let [b, t, d_in] = x.dims();
    let y = layer.forward(x.reshape([b * t, d_in]));
    let d_out = y.dims()[1];
    y.reshape([b, t, d_out])
}

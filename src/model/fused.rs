//! Softmax, layer norm and GELU as single differentiable operations.
//!
//! Burn's autodiff backend builds the first two from element-wise primitives (max,
//! subtract, exp, sum, divide; mean, subtract, square, mean, root, divide, scale, shift),
//! each one a pass over the activations forward and more backward. Here each is one fused
//! backend kernel forward (LibTorch's and flex's own) and a closed-form gradient backward.
//!
//! GELU is one operation in Burn already, but flex computes it, and its gradient, with a
//! scalar `erf` call per value, a sixth of W1's time there; flex's GELU here is a
//! branch-free rational approximation the compiler vectorises.

// burn-tch, the LibTorch backend of the `tch` feature, is deprecated upstream; the code the
// extension macro generates for it names it outside any item an attribute could cover.
#![cfg_attr(feature = "tch", allow(deprecated))]

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::ActivationOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::nn::LayerNorm;
use burn::tensor::{Shape, Tensor, TensorData};

/// Layer norms' variance floor, as Burn's `LayerNormConfig` sets it by default.
pub(super) const LAYER_NORM_EPSILON: f64 = 1e-5;

/// Fused softmax and layer norm, on every backend flotilla runs.
#[backend_extension(Flex, LibTorch: cfg(feature = "tch"), Autodiff)]
pub(super) trait FusedOps: Backend {
    /// Softmax over the last axis.
    fn softmax_last(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let last = x.shape().num_dims() - 1;
        Self::softmax(x, last)
    }

    /// Layer norm over the last axis with variance floor `epsilon`, then `· gamma + beta`.
    fn layer_norm_affine(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        Self::layer_norm(x, gamma, Some(beta), epsilon)
    }

    /// GELU, `x Φ(x)` with the normal distribution's exact CDF `Φ`.
    fn gelu_exact(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::gelu(x)
    }

    /// The gradient of [`gelu_exact`](FusedOps::gelu_exact) at `x`, times `grad`.
    fn gelu_exact_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::gelu_backward(x, grad)
    }
}

impl FusedOps for Flex {
    fn gelu_exact(x: FlexTensor) -> FlexTensor {
        if let Some(values) = x.as_slice::<f32>() {
            let y: Vec<f32> = values.iter().map(|&v| v * normal_cdf(v)).collect();
            return FlexTensor::from_data(TensorData::new(y, x.shape()));
        }
        Self::gelu(x)
    }

    fn gelu_exact_backward(x: FlexTensor, grad: FlexTensor) -> FlexTensor {
        if let (Some(values), Some(g)) = (x.as_slice::<f32>(), grad.as_slice::<f32>())
            && values.len() == g.len()
        {
            let dx: Vec<f32> = values
                .iter()
                .zip(g)
                .map(|(&v, &g)| g * (normal_cdf(v) + v * normal_pdf(v)))
                .collect();
            return FlexTensor::from_data(TensorData::new(dx, x.shape()));
        }
        Self::gelu_backward(x, grad)
    }
}

/// The standard normal CDF `Φ(x) = (1 + erf(x / √2)) / 2`.
#[inline]
fn normal_cdf(x: f32) -> f32 {
    0.5 * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// The standard normal density.
#[inline]
fn normal_pdf(x: f32) -> f32 {
    // 1 / √(2π)
    const SCALE: f32 = 0.398_942_3;
    SCALE * (-0.5 * x * x).exp()
}

/// `erf(x)` within 5e-7 of the exact value: an odd rational function of degree 13 over
/// 8 on `[-4, 4]`, where `erf` reaches ±1 in single precision, with the coefficients of
/// Eigen's (and XLA's) single-precision `erf`. No branch or call, so a loop over a slice
/// vectorises.
#[inline]
fn erf(x: f32) -> f32 {
    const NUMERATOR: [f32; 7] = [
        -2.726_142_3e-10,
        2.770_681_4e-8,
        -2.101_024e-6,
        -5.692_506_4e-5,
        -7.349_906e-4,
        -2.9546e-3,
        -1.609_603_3e-2,
    ];
    const DENOMINATOR: [f32; 5] = [
        -1.456_607_2e-5,
        -2.133_740_6e-4,
        -1.682_827e-3,
        -7.373_329e-3,
        -1.426_474e-2,
    ];
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let p = NUMERATOR.iter().fold(0.0, |acc, &c| acc * x2 + c);
    let q = DENOMINATOR.iter().fold(0.0, |acc, &c| acc * x2 + c);
    x * p / q
}

#[cfg(feature = "tch")]
impl FusedOps for burn::backend::LibTorch {}

/// The backward step of a one-input operation: its input's gradient from the state the
/// forward pass kept (the input or the output) and the output's gradient.
#[derive(Debug)]
struct Unary<B: Backend>(fn(FloatTensor<B>, FloatTensor<B>) -> FloatTensor<B>);

impl<B: Backend> Backward<B, 1> for Unary<B> {
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [parent] = ops.parents;
        let g = grads.consume::<B>(&ops.node);
        if let Some(parent) = parent {
            grads.register::<B>(parent.id, (self.0)(ops.state, g));
        }
    }
}

impl<B: Backend + FusedOps, C: CheckpointStrategy> FusedOps for Autodiff<B, C> {
    fn softmax_last(x: FloatTensor<Self>) -> FloatTensor<Self> {
        // dx = s ⊙ (g − Σ g ⊙ s) from the output s, the sum along the softmax's axis.
        fn gradient<B: Backend>(s: FloatTensor<B>, g: FloatTensor<B>) -> FloatTensor<B> {
            let last = s.shape().num_dims() - 1;
            let gs = B::float_mul(g, s.clone());
            let dot = B::float_sum_dim(gs.clone(), last);
            B::float_sub(gs, B::float_mul(s, dot))
        }

        match Unary::<B>(gradient::<B>)
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let s = B::softmax_last(x.into_primitive());
                prep.finish(s.clone(), s)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::softmax_last(x.into_primitive())),
        }
    }

    fn layer_norm_affine(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        /// The variance floor.
        #[derive(Debug)]
        struct Norm(f64);

        impl<B: Backend> Backward<B, 3> for Norm {
            /// The input and `gamma`.
            type State = (FloatTensor<B>, FloatTensor<B>);

            fn backward(
                self,
                ops: Ops<Self::State, 3>,
                grads: &mut Gradients,
                _: &mut Checkpointer,
            ) {
                let [x_node, gamma_node, beta_node] = ops.parents;
                let g = grads.consume::<B>(&ops.node);
                let (x, gamma) = ops.state;
                let shape = x.shape();
                let last = shape.num_dims() - 1;
                let width = shape[last];
                // The normalised input x̂ = (x − μ) r, with r = 1 / √(σ² + ε) per row.
                let centered = B::float_sub(x.clone(), B::float_mean_dim(x, last));
                let var = B::float_mean_dim(B::float_mul(centered.clone(), centered.clone()), last);
                let r = B::float_recip(B::float_sqrt(B::float_add_scalar(var, self.0.into())));
                let normed = B::float_mul(centered, r.clone());
                // Sums over every axis but the last, as `[width]`.
                let rows = shape.num_elements() / width;
                let column_sum = |t: FloatTensor<B>| {
                    let t = B::float_reshape(t, Shape::new([rows, width]));
                    B::float_reshape(B::float_sum_dim(t, 0), Shape::new([width]))
                };
                if let Some(node) = beta_node {
                    grads.register::<B>(node.id, column_sum(g.clone()));
                }
                if let Some(node) = gamma_node {
                    let g_normed = B::float_mul(g.clone(), normed.clone());
                    grads.register::<B>(node.id, column_sum(g_normed));
                }
                if let Some(node) = x_node {
                    // dx = r (ĝ − mean ĝ − x̂ mean(ĝ ⊙ x̂)), with ĝ = g ⊙ gamma.
                    let mut dims = vec![1; last + 1];
                    dims[last] = width;
                    let gamma = B::float_reshape(gamma, Shape::from(dims));
                    let gh = B::float_mul(g, gamma);
                    let mean_gh = B::float_mean_dim(gh.clone(), last);
                    let mean_ghx =
                        B::float_mean_dim(B::float_mul(gh.clone(), normed.clone()), last);
                    let inner =
                        B::float_sub(B::float_sub(gh, mean_gh), B::float_mul(normed, mean_ghx));
                    grads.register::<B>(node.id, B::float_mul(inner, r));
                }
            }
        }

        match Norm(epsilon)
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (x, gamma) = (x.into_primitive(), gamma.into_primitive());
                let y =
                    B::layer_norm_affine(x.clone(), gamma.clone(), beta.into_primitive(), epsilon);
                prep.finish((x, gamma), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::layer_norm_affine(
                x.into_primitive(),
                gamma.into_primitive(),
                beta.into_primitive(),
                epsilon,
            )),
        }
    }

    fn gelu_exact(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match Unary::<B>(B::gelu_exact_backward)
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let x = x.into_primitive();
                prep.finish(x.clone(), B::gelu_exact(x))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::gelu_exact(x.into_primitive())),
        }
    }
}

/// Softmax over the last axis of `x`.
pub(super) fn softmax_last<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedOps>::softmax_last(x.into_dispatch()))
}

/// GELU of `x` (the exact, `erf` form, as Burn's `gelu`).
pub(super) fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedOps>::gelu_exact(x.into_dispatch()))
}

/// `norm` applied to `x` with variance floor `epsilon` (Burn keeps a norm's own private).
pub(super) fn layer_norm<const D: usize>(
    norm: &LayerNorm,
    x: Tensor<D>,
    epsilon: f64,
) -> Tensor<D> {
    let gamma = norm.gamma.val();
    let beta = norm
        .beta
        .as_ref()
        .map_or_else(|| gamma.zeros_like(), |b| b.val());
    Tensor::from_dispatch(<Dispatch as FusedOps>::layer_norm_affine(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        epsilon,
    ))
}

#[cfg(test)]
mod tests {
    use burn::module::Param;
    use burn::nn::LayerNormConfig;
    use burn::tensor::activation::{gelu as burn_gelu, softmax};
    use burn::tensor::{Device, TensorData};

    use super::*;

    fn input(device: &Device) -> Tensor<3> {
        let values: Vec<f32> = (0..2 * 3 * 8)
            .map(|i| ((i * 29 % 31) as f32 - 15.0) / 7.0)
            .collect();
        Tensor::from_data(TensorData::new(values, [2, 3, 8]), device).require_grad()
    }

    fn close<const D: usize>(a: Tensor<D>, b: Tensor<D>) {
        let (a, b) = (a.into_data(), b.into_data());
        let (a, b) = (
            a.try_to_vec::<f32>().unwrap(),
            b.try_to_vec::<f32>().unwrap(),
        );
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= 1e-5 * x.abs().max(1.0), "{x} vs {y}");
        }
    }

    /// A loss that weighs every output differently, so that every gradient term counts.
    fn weights(device: &Device) -> Tensor<3> {
        let values: Vec<f32> = (0..2 * 3 * 8).map(|i| (i % 5) as f32 - 2.0).collect();
        Tensor::from_data(TensorData::new(values, [2, 3, 8]), device)
    }

    /// `fused` gives what `reference` gives, in value and in the input's gradient.
    fn same_values_and_gradient(
        fused: impl Fn(Tensor<3>) -> Tensor<3>,
        reference: impl Fn(Tensor<3>) -> Tensor<3>,
    ) {
        let device = Device::flex().autodiff();
        let (x, w) = (input(&device), weights(&device));
        let (fused, reference) = (fused(x.clone()), reference(x.clone()));
        close(fused.clone(), reference.clone());
        let g_fused = x.grad(&(fused * w.clone()).sum().backward()).unwrap();
        let g_reference = x.grad(&(reference * w).sum().backward()).unwrap();
        close(g_fused, g_reference);
    }

    #[test]
    fn fused_softmax_matches_burns_values_and_gradient() {
        same_values_and_gradient(softmax_last, |x| softmax(x, 2));
    }

    #[test]
    fn fused_layer_norm_matches_burns_values_and_gradients() {
        let device = Device::flex().autodiff();
        let (x, w) = (input(&device), weights(&device));
        let mut norm = LayerNormConfig::new(8)
            .with_epsilon(LAYER_NORM_EPSILON)
            .init(&device);
        // Gamma and beta away from their initial ones and zeros.
        norm.gamma = Param::from_tensor(norm.gamma.val().mul_scalar(1.5).detach());
        norm.beta = norm
            .beta
            .map(|b| Param::from_tensor(b.val().add_scalar(0.25).detach()));
        let fused = layer_norm(&norm, x.clone(), LAYER_NORM_EPSILON);
        let reference = norm.forward(x.clone());
        close(fused.clone(), reference.clone());
        let grads_fused = (fused * w.clone()).sum().backward();
        let grads_reference = (reference * w).sum().backward();
        close(
            x.grad(&grads_fused).unwrap(),
            x.grad(&grads_reference).unwrap(),
        );
        let gamma = norm.gamma.val();
        let beta = norm.beta.as_ref().unwrap().val();
        for param in [gamma, beta] {
            close(
                param.grad(&grads_fused).unwrap(),
                param.grad(&grads_reference).unwrap(),
            );
        }
    }

    #[test]
    fn fused_gelu_matches_burns_values_and_gradient() {
        same_values_and_gradient(gelu, burn_gelu);
    }

    #[test]
    fn the_rational_erf_is_within_5e_7_of_the_exact_one() {
        // Every 1/1000 over [-6, 6]: both sides of the clamp, and the tails near ±1.
        for i in -6000..=6000 {
            let x = i as f32 / 1000.0;
            let exact = libm::erf(x as f64);
            assert!((erf(x) as f64 - exact).abs() <= 5e-7, "erf({x})");
        }
    }
}

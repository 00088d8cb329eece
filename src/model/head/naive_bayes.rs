//! FiT's naive Bayes head (Shysheya et al. 2022): a Gaussian classifier fitted in closed
//! form on a client's own features, rebuilt from the data instead of trained or sent.
//!
//! The fit stays differentiable, so episodic training can pass gradients through it: the
//! inverse and log-determinant of each covariance are computed in f64 on the host, and
//! enter the graph through their first-order expansions (`d Σ⁻¹ = -Σ⁻¹ dΣ Σ⁻¹`,
//! `d log|Σ| = tr(Σ⁻¹ dΣ)`), which carry the exact gradient.

use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// Which covariance the class conditionals share.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Covariance {
    /// One pooled within-class covariance (linear discriminant analysis).
    Lda,
    /// One per class, shrunk towards the pooled one by `n_k / (n_k + 1)` so that classes
    /// with few samples lean on the shared estimate (quadratic discriminant analysis).
    Qda,
}

/// How the head is fitted.
#[derive(Copy, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NaiveBayes {
    /// One pooled covariance or one per class.
    pub covariance: Covariance,
    /// Every covariance becomes `(1 - shrinkage) Σ + shrinkage I`, so that a client with a
    /// handful of images per class still has a well-posed classifier.
    pub shrinkage: f64,
}

/// Logit of a class absent from the support set.
const ABSENT: f32 = -1.0e9;

/// A fitted head: class means, (regularised) covariances and priors.
#[derive(Debug)]
pub struct NaiveBayesHead {
    means: Tensor<2>,
    /// Per class: the precision (Σ⁻¹) and log|Σ| with their gradients; `None` if absent.
    classes: Vec<Option<(Tensor<2>, Tensor<1>)>>,
    log_priors: Vec<f64>,
    covariances: Vec<Option<Vec<f64>>>,
}

impl NaiveBayesHead {
    /// Fits the head to `features` `[n, d]` with `labels` in `0..classes`.
    pub fn fit(features: Tensor<2>, labels: &[usize], classes: usize, config: &NaiveBayes) -> Self {
        let device = features.device();
        let [n, d] = features.dims();
        assert_eq!(labels.len(), n, "one label per feature row");
        let mut onehot = vec![0.0f32; n * classes];
        let mut counts = vec![0usize; classes];
        for (i, &y) in labels.iter().enumerate() {
            onehot[i * classes + y] = 1.0;
            counts[y] += 1;
        }
        let onehot: Tensor<2> = Tensor::from_data(TensorData::new(onehot, [n, classes]), &device);
        let inv_counts: Vec<f32> = counts.iter().map(|&c| 1.0 / c.max(1) as f32).collect();
        let inv_counts: Tensor<2> =
            Tensor::from_data(TensorData::new(inv_counts, [classes, 1]), &device);
        let means = onehot.clone().transpose().matmul(features.clone()) * inv_counts;
        // Each sample's deviation from its class mean.
        let centered = features - onehot.matmul(means.clone());
        let present: Vec<usize> = (0..classes).filter(|&k| counts[k] > 0).collect();
        let scatter = |k: usize| {
            let rows: Vec<i64> = (0..n)
                .filter(|&i| labels[i] == k)
                .map(|i| i as i64)
                .collect();
            let len = rows.len();
            let rows: Tensor<1, Int> = Tensor::from_data(TensorData::new(rows, [len]), &device);
            let c = centered.clone().select(0, rows);
            c.clone().transpose().matmul(c)
        };
        let scatters: Vec<(usize, Tensor<2>)> = present.iter().map(|&k| (k, scatter(k))).collect();
        let dof = n.saturating_sub(present.len()).max(1);
        let pooled = scatters
            .iter()
            .map(|(_, s)| s.clone())
            .reduce(|a, b| a + b)
            .unwrap_or_else(|| Tensor::zeros([d, d], &device))
            .div_scalar(dof as f64);
        let eye: Tensor<2> = Tensor::eye(d, &device);
        let regularise = |sigma: Tensor<2>| {
            sigma.mul_scalar(1.0 - config.shrinkage) + eye.clone().mul_scalar(config.shrinkage)
        };
        let mut fitted: Vec<Option<(Tensor<2>, Tensor<1>)>> = vec![None; classes];
        let mut covariances = vec![None; classes];
        let shared =
            (config.covariance == Covariance::Lda).then(|| precision(regularise(pooled.clone())));
        for (k, s) in scatters {
            let (sigma, (p, logdet)) = match &shared {
                Some((sigma, p)) => (sigma.clone(), p.clone()),
                None => {
                    let nk = counts[k];
                    let own = s.div_scalar(nk.saturating_sub(1).max(1) as f64);
                    let lambda = nk as f64 / (nk as f64 + 1.0);
                    let sigma = own.mul_scalar(lambda) + pooled.clone().mul_scalar(1.0 - lambda);
                    precision(regularise(sigma))
                }
            };
            covariances[k] = Some(sigma);
            fitted[k] = Some((p, logdet));
        }
        let log_priors = counts
            .iter()
            .map(|&c| (c.max(1) as f64 / n.max(1) as f64).ln())
            .collect();
        Self {
            means,
            classes: fitted,
            log_priors,
            covariances,
        }
    }

    /// Class logits `[n, classes]`: `log π_k - ½ (f - μ_k)ᵀ Σ_k⁻¹ (f - μ_k) - ½ log|Σ_k|`.
    pub fn logits(&self, features: Tensor<2>) -> Tensor<2> {
        let n = features.dims()[0];
        let device = features.device();
        let columns: Vec<Tensor<2>> = self
            .classes
            .iter()
            .enumerate()
            .map(|(k, class)| match class {
                None => Tensor::full([n, 1], ABSENT, &device),
                Some((precision, logdet)) => {
                    let mean = self.means.clone().narrow(0, k, 1);
                    let diff = features.clone() - mean;
                    let maha = (diff.clone().matmul(precision.clone()) * diff).sum_dim(1);
                    let constant = logdet
                        .clone()
                        .mul_scalar(-0.5)
                        .add_scalar(self.log_priors[k]);
                    maha.mul_scalar(-0.5) + constant.reshape([1, 1])
                }
            })
            .collect();
        Tensor::cat(columns, 1)
    }

    /// The class means `[classes][d]` (zero for absent classes).
    pub fn means(&self) -> Vec<Vec<f32>> {
        let [k, d] = self.means.dims();
        let flat = self
            .means
            .clone()
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32 means");
        (0..k).map(|c| flat[c * d..(c + 1) * d].to_vec()).collect()
    }

    /// Each present class's regularised covariance, row-major `d x d`.
    pub fn covariances(&self) -> &[Option<Vec<f64>>] {
        &self.covariances
    }
}

/// `(Σ as host values, (Σ⁻¹, log|Σ|))`, the latter two differentiable through `sigma`.
fn precision(sigma: Tensor<2>) -> (Vec<f64>, (Tensor<2>, Tensor<1>)) {
    let device: Device = sigma.device();
    let [d, _] = sigma.dims();
    let host: Vec<f64> = sigma
        .clone()
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32 covariance")
        .into_iter()
        .map(f64::from)
        .collect();
    let (inverse, logdet) = inverse_logdet(&host, d);
    let p: Tensor<2> = Tensor::from_data(
        TensorData::new(
            inverse.iter().map(|&v| v as f32).collect::<Vec<_>>(),
            [d, d],
        ),
        &device,
    );
    let delta = sigma.clone() - sigma.detach();
    let precision = p.clone() - p.clone().matmul(delta.clone()).matmul(p.clone());
    let logdet = (p * delta).sum().add_scalar(logdet);
    (host, (precision, logdet))
}

/// The inverse and log-determinant of a symmetric positive-definite `d x d` matrix, by
/// Cholesky factorisation.
pub fn inverse_logdet(a: &[f64], d: usize) -> (Vec<f64>, f64) {
    // a = L Lᵀ, L lower triangular.
    let mut l = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i * d + k] * l[j * d + k]).sum();
            if i == j {
                l[i * d + i] = (a[i * d + i] - s).max(f64::MIN_POSITIVE).sqrt();
            } else {
                l[i * d + j] = (a[i * d + j] - s) / l[j * d + j];
            }
        }
    }
    let logdet = 2.0 * (0..d).map(|i| l[i * d + i].ln()).sum::<f64>();
    // Solve L Lᵀ x = e_c for every column c.
    let mut inv = vec![0.0; d * d];
    for c in 0..d {
        let mut y = vec![0.0; d];
        for i in 0..d {
            let b = if i == c { 1.0 } else { 0.0 };
            let s: f64 = (0..i).map(|k| l[i * d + k] * y[k]).sum();
            y[i] = (b - s) / l[i * d + i];
        }
        for i in (0..d).rev() {
            let s: f64 = (i + 1..d).map(|k| l[k * d + i] * inv[k * d + c]).sum();
            inv[i * d + c] = (y[i] - s) / l[i * d + i];
        }
    }
    (inv, logdet)
}

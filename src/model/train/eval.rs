//! Evaluation: accuracy and loss of a model on samples, through its linear head or a
//! fitted naive Bayes head.

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::Tensor;

use super::Samples;
use crate::model::{NaiveBayes, NaiveBayesHead, Vit};

/// Correct predictions and summed loss over a set of samples.
#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub struct EvalCounts {
    /// Samples predicted right.
    pub correct: u64,
    /// Samples seen.
    pub total: u64,
    /// The loss summed over the samples.
    pub loss_sum: f64,
}

impl EvalCounts {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &EvalCounts) {
        self.correct += other.correct;
        self.total += other.total;
        self.loss_sum += other.loss_sum;
    }

    /// The share predicted right; `None` for no sample.
    pub(crate) fn accuracy_of_any(&self) -> Option<f64> {
        (self.total > 0).then(|| self.accuracy())
    }

    /// The share predicted right (0 for no sample).
    pub fn accuracy(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.correct as f64 / self.total as f64
        }
    }
}

/// Fits FiT's naive Bayes head to the features of `indices` (in validation mode).
pub(crate) fn fit_head(
    model: &Vit,
    config: &NaiveBayes,
    samples: Samples<'_>,
    indices: &[u32],
    batch: usize,
) -> NaiveBayesHead {
    let model = model.valid();
    let device = model.patch_embed.weight.val().device();
    let data = samples.data;
    let features: Vec<Tensor<2>> = indices
        .chunks(batch.max(1))
        .map(|chunk| {
            let (x, _) = samples.input(&model, chunk, &device);
            model.encode_input(x, None).features
        })
        .collect();
    let labels: Vec<usize> = indices
        .iter()
        .map(|&i| data.labels[i as usize] as usize)
        .collect();
    let dim = model.feature_width();
    let features = if features.is_empty() {
        Tensor::zeros([0, dim], &device)
    } else {
        Tensor::cat(features, 0)
    };
    NaiveBayesHead::fit(features, &labels, data.classes, config)
}

/// Evaluates `model` (in validation mode) on `indices`, in batches of `batch`, through
/// its linear head or, when given, a fitted naive Bayes head.
pub fn evaluate(
    model: &Vit,
    head: Option<&NaiveBayesHead>,
    samples: Samples<'_>,
    indices: &[u32],
    batch: usize,
) -> EvalCounts {
    let model = model.valid().merged();
    let device = model.patch_embed.weight.val().device();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let mut counts = EvalCounts::default();
    for chunk in indices.chunks(batch.max(1)) {
        let (x, y) = samples.input(&model, chunk, &device);
        let features = model.encode_input(x, None).features;
        let logits = match head {
            Some(head) => head.logits(features),
            None => model.head.forward(features),
        };
        let loss = loss_fn.forward(logits.clone(), y.clone());
        counts.loss_sum += loss.into_scalar::<f32>() as f64 * chunk.len() as f64;
        let pred = logits.argmax(1).reshape([chunk.len()]);
        let correct = pred.equal(y).int().sum().into_scalar::<i64>();
        counts.correct += correct as u64;
        counts.total += chunk.len() as u64;
    }
    counts
}

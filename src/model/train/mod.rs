//! Local training and evaluation of a model on a subset of a data set.

mod eval;
mod group;
mod local;

pub(crate) use eval::fit_head;
pub use eval::{EvalCounts, evaluate};
pub use group::train_group;
pub(super) use local::fine_tune;
pub use local::train_local;

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::head::{NaiveBayes, NaiveBayesHead};
use super::patches::{batch_tensors, labels};
use super::prefix::Prefix;
use super::vit::{Input, Vit};
use crate::data::Dataset;

/// The local optimiser, fresh for every job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Optimizer {
    /// Plain stochastic gradient descent.
    Sgd {
        /// The learning rate.
        lr: f64,
    },
    /// Adam with Burn's default moments.
    Adam {
        /// The learning rate.
        lr: f64,
    },
}

impl Optimizer {
    /// The learning rate.
    pub fn lr(&self) -> f64 {
        match *self {
            Optimizer::Sgd { lr } | Optimizer::Adam { lr } => lr,
        }
    }

    /// A fresh optimiser.
    pub fn init(&self) -> ModuleOptimizer {
        match self {
            Optimizer::Sgd { .. } => SgdConfig::new().init(),
            Optimizer::Adam { .. } => AdamConfig::new().init(),
        }
    }
}

/// Hyperparameters of one local-training job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Passes over the client's data.
    pub epochs: u32,
    /// Samples per step.
    pub batch_size: usize,
    /// The optimiser and its rate.
    pub optimizer: Optimizer,
}

/// A data set as a model reads it: images cut into patches, or the cached activations of
/// the model's frozen prefix.
#[derive(Copy, Clone)]
pub struct Samples<'a> {
    /// The images.
    pub data: &'a Dataset,
    /// The model's patch size, to cut images into tokens.
    pub patch: usize,
    /// `data`'s cached prefix activations, valid for the model that reads them.
    pub prefix: Option<&'a Prefix>,
}

impl<'a> Samples<'a> {
    /// `data` read from its pixels.
    pub fn new(data: &'a Dataset, patch: usize) -> Self {
        Self {
            data,
            patch,
            prefix: None,
        }
    }

    /// Samples `idx` as `model`'s input, and their labels.
    pub fn input(&self, model: &Vit, idx: &[u32], device: &Device) -> (Input, Tensor<1, Int>) {
        match self.prefix {
            Some(prefix) => (
                prefix.input(model, self.data, idx, self.patch, device),
                labels(self.data, idx, device),
            ),
            None => {
                let (x, y) = batch_tensors(self.data, idx, self.patch, device);
                (Input::Patches(x), y)
            }
        }
    }
}

/// One client's (or the pretraining set's) training data, and how a job draws from it.
pub struct LocalData<'a> {
    /// The data set as the model reads it.
    pub samples: Samples<'a>,
    /// The client's samples in it.
    pub indices: &'a [u32],
    /// Seeds every random choice of the job (batch order).
    pub seed: u64,
    /// Where the job runs.
    pub device: &'a Device,
    /// What each step minimises.
    pub objective: &'a Objective,
}

/// What a local training step minimises.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Objective {
    /// FiT's episodic training: each batch is split into a support half that fits the
    /// naive Bayes head and a query half that the loss is taken on. `None` trains through
    /// the model's linear head.
    pub naive_bayes: Option<NaiveBayes>,
    /// FedAPT: the client's own key and the weight of the loss that teaches the adaptive
    /// network to match the client's samples to it.
    pub key: Option<(usize, f64)>,
}

impl Objective {
    /// The loss on `batch`, or `None` when the batch makes no episode (every class in it
    /// has a single sample).
    pub(crate) fn loss(
        &self,
        model: &Vit,
        local: &LocalData<'_>,
        batch: &[u32],
    ) -> Option<Tensor<1>> {
        let ce = CrossEntropyLossConfig::new().init(local.device);
        let (task, encoded_keys) = match &self.naive_bayes {
            None => {
                let (x, y) = local.input(model, batch);
                let encoded = model.encode_input(x, None);
                let logits = model.head.forward(encoded.features);
                (ce.forward(logits, y), encoded.key_logits)
            }
            Some(config) => {
                let data = local.samples.data;
                let (support, query) = episode(data, batch);
                if query.is_empty() {
                    return None;
                }
                let (xs, _) = local.input(model, &support);
                let labels: Vec<usize> = support
                    .iter()
                    .map(|&i| data.labels[i as usize] as usize)
                    .collect();
                let head = NaiveBayesHead::fit(
                    model.encode_input(xs, None).features,
                    &labels,
                    data.classes,
                    config,
                );
                let (xq, yq) = local.input(model, &query);
                let encoded = model.encode_input(xq, None);
                (
                    ce.forward(head.logits(encoded.features), yq),
                    encoded.key_logits,
                )
            }
        };
        Some(match (self.key, encoded_keys) {
            (Some((client, weight)), Some(key_logits)) => {
                let n = key_logits.dims()[0];
                let own: Tensor<1, Int> =
                    Tensor::from_data(TensorData::new(vec![client as i64; n], [n]), local.device);
                task + ce.forward(key_logits, own).mul_scalar(weight)
            }
            _ => task,
        })
    }
}

/// Splits a batch into an episode: for every class with at least two samples in it, the
/// first half (rounded up) goes to the support set and the rest to the query set; single
/// samples go to the support set.
fn episode(data: &Dataset, batch: &[u32]) -> (Vec<u32>, Vec<u32>) {
    let mut by_class: Vec<Vec<u32>> = vec![Vec::new(); data.classes];
    for &i in batch {
        by_class[data.labels[i as usize] as usize].push(i);
    }
    let (mut support, mut query) = (Vec::new(), Vec::new());
    for members in by_class {
        let cut = members.len().div_ceil(2);
        support.extend_from_slice(&members[..cut]);
        query.extend_from_slice(&members[cut..]);
    }
    (support, query)
}

/// A job's batches, one pass over the shuffled indices after another.
pub(crate) struct Batches {
    rng: ChaCha8Rng,
    order: Vec<u32>,
    batch: usize,
    /// Where the next batch starts in `order`; 0 starts a pass (and a shuffle).
    at: usize,
    left: usize,
}

impl Batches {
    /// `steps` batches of `batch` of `indices` (none when there are no indices).
    fn new(indices: &[u32], seed: u64, batch: usize, steps: usize) -> Self {
        Batches {
            rng: ChaCha8Rng::seed_from_u64(seed),
            order: indices.to_vec(),
            batch: batch.max(1),
            at: 0,
            left: if indices.is_empty() { 0 } else { steps },
        }
    }
}

impl Iterator for Batches {
    type Item = Vec<u32>;

    fn next(&mut self) -> Option<Vec<u32>> {
        if self.left == 0 {
            return None;
        }
        if self.at == 0 {
            self.order.shuffle(&mut self.rng);
        }
        let end = (self.at + self.batch).min(self.order.len());
        let batch = self.order[self.at..end].to_vec();
        self.at = if end == self.order.len() { 0 } else { end };
        self.left -= 1;
        Some(batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Batches {}

impl LocalData<'_> {
    /// Batches of the indices for `steps` steps, reshuffled from the job's seed at every
    /// pass (the last batch of a pass may be smaller); drawn one at a time, so that many
    /// epochs cost no memory.
    pub(crate) fn batches(&self, batch: usize, steps: usize) -> Batches {
        Batches::new(self.indices, self.seed, batch, steps)
    }

    /// Steps in `config.epochs` passes over the data.
    pub(crate) fn steps(&self, config: &TrainConfig) -> usize {
        config.epochs as usize * self.indices.len().div_ceil(config.batch_size.max(1))
    }

    /// A batch as `model`'s input and labels on the job's device.
    pub(crate) fn input(&self, model: &Vit, batch: &[u32]) -> (Input, Tensor<1, Int>) {
        self.samples.input(model, batch, self.device)
    }
}

/// The mean of `sum` over `n` items, 0 for none.
pub(crate) fn mean(sum: f64, n: usize) -> f64 {
    if n == 0 { 0.0 } else { sum / n as f64 }
}

/// Gradient descent as every training procedure takes it: an optimiser fresh for the
/// job, its learning rate, and the mean of the losses the procedure reports.
pub(crate) struct Descent {
    optim: ModuleOptimizer,
    lr: f64,
    loss_sum: f64,
    losses: usize,
}

impl Descent {
    /// A job's descent with `optimizer`.
    pub(crate) fn new(optimizer: &Optimizer) -> Self {
        Self::with(optimizer.init(), optimizer.lr())
    }

    /// Plain SGD at `lr` (MAML's inner step, personalization at a rate of its own).
    pub(crate) fn sgd(lr: f64) -> Self {
        Self::with(SgdConfig::new().init(), lr)
    }

    fn with(optim: ModuleOptimizer, lr: f64) -> Self {
        Self {
            optim,
            lr,
            loss_sum: 0.0,
            losses: 0,
        }
    }

    /// Counts `loss` (a scalar) into the job's mean loss.
    pub(crate) fn count(&mut self, loss: &Tensor<1>) {
        self.loss_sum += loss.clone().into_scalar::<f32>() as f64;
        self.losses += 1;
    }

    /// One step of `model` down the gradient of `loss`.
    pub(crate) fn step(&mut self, model: Vit, loss: Tensor<1>) -> Vit {
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        self.optim.step(self.lr, model, grads)
    }

    /// One step of `model` down the gradient of `loss` taken at `at`, another point
    /// (first-order MAML steps the model with the adapted model's gradient).
    pub(crate) fn step_at(&mut self, model: Vit, loss: Tensor<1>, at: &Vit) -> Vit {
        let grads = GradientsParams::from_grads(loss.backward(), at);
        self.optim.step(self.lr, model, grads)
    }

    /// The mean of the counted losses (0 for none).
    pub(crate) fn mean_loss(&self) -> f64 {
        mean(self.loss_sum, self.losses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every pass shuffled at once, then cut: what drawing the batches lazily must equal.
    fn eager(indices: &[u32], seed: u64, batch: usize, steps: usize) -> Vec<Vec<u32>> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut order = indices.to_vec();
        let mut out = Vec::new();
        while out.len() < steps && !order.is_empty() {
            order.shuffle(&mut rng);
            let left = steps - out.len();
            out.extend(order.chunks(batch).map(<[u32]>::to_vec).take(left));
        }
        out
    }

    #[test]
    fn batches_are_drawn_lazily_in_the_eager_order() {
        let indices: Vec<u32> = (0..23).map(|i| i * 3).collect();
        for (batch, steps) in [(5, 0), (5, 3), (5, 5), (5, 12), (23, 4), (40, 3), (1, 50)] {
            let lazy: Vec<Vec<u32>> = Batches::new(&indices, 7, batch, steps).collect();
            assert_eq!(lazy, eager(&indices, 7, batch, steps), "{batch} x {steps}");
        }
        assert_eq!(Batches::new(&[], 7, 5, 10).len(), 0);
        // A billion steps cost nothing until drawn.
        assert_eq!(
            Batches::new(&indices, 7, 5, 1_000_000_000).len(),
            1_000_000_000
        );
    }
}

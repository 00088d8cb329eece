//! Local training and evaluation of a model on a subset of a data set.

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::naive_bayes::{NaiveBayes, NaiveBayesHead};
use super::vit::Vit;
use crate::data::Dataset;

/// The local optimiser, fresh for every job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Optimizer {
    Sgd { lr: f64 },
    Adam { lr: f64 },
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
    pub epochs: u32,
    pub batch_size: usize,
    pub optimizer: Optimizer,
}

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

/// One client's (or the pretraining set's) training data, and how a job draws from it.
pub struct LocalData<'a> {
    pub data: &'a Dataset,
    pub indices: &'a [u32],
    /// The model's patch size, to cut images into tokens.
    pub patch: usize,
    /// Seeds every random choice of the job (batch order).
    pub seed: u64,
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
                let (x, y) = local.tensors(batch);
                let encoded = model.encode(x);
                let logits = model.head.forward(encoded.features);
                (ce.forward(logits, y), encoded.key_logits)
            }
            Some(config) => {
                let (support, query) = episode(local.data, batch);
                if query.is_empty() {
                    return None;
                }
                let (xs, _) = local.tensors(&support);
                let labels: Vec<usize> = support
                    .iter()
                    .map(|&i| local.data.labels[i as usize] as usize)
                    .collect();
                let head = NaiveBayesHead::fit(
                    model.encode(xs).features,
                    &labels,
                    local.data.classes,
                    config,
                );
                let (xq, yq) = local.tensors(&query);
                let encoded = model.encode(xq);
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

impl LocalData<'_> {
    /// Batches of the indices for `steps` steps, reshuffled from the job's seed at every
    /// pass (the last batch of a pass may be smaller).
    pub(crate) fn batches(&self, batch: usize, steps: usize) -> Vec<Vec<u32>> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let mut order = self.indices.to_vec();
        let mut out = Vec::with_capacity(steps);
        while out.len() < steps && !order.is_empty() {
            order.shuffle(&mut rng);
            let left = steps - out.len();
            out.extend(order.chunks(batch.max(1)).map(<[u32]>::to_vec).take(left));
        }
        out
    }

    /// Steps in `config.epochs` passes over the data.
    pub(crate) fn steps(&self, config: &TrainConfig) -> usize {
        config.epochs as usize * self.indices.len().div_ceil(config.batch_size.max(1))
    }

    /// A batch as input and label tensors on the job's device.
    pub(crate) fn tensors(&self, batch: &[u32]) -> (Tensor<3>, Tensor<1, Int>) {
        batch_tensors(self.data, batch, self.patch, self.device)
    }
}

/// The mean of `sum` over `n` items, 0 for none.
pub(crate) fn mean(sum: f64, n: usize) -> f64 {
    if n == 0 { 0.0 } else { sum / n as f64 }
}

/// Trains the model's trainable parameters on `local` for the configured epochs.
/// Returns the trained model and the mean batch loss.
pub fn train_local(model: Vit, local: &LocalData<'_>, config: &TrainConfig) -> (Vit, f64) {
    fine_tune(model, local, local.steps(config), config)
}

/// Takes `steps` optimiser steps on batches of `local`. Returns the model and the mean loss.
pub fn fine_tune(
    mut model: Vit,
    local: &LocalData<'_>,
    steps: usize,
    config: &TrainConfig,
) -> (Vit, f64) {
    let mut optim = config.optimizer.init();
    let (mut loss_sum, mut n) = (0.0, 0usize);
    for batch in &local.batches(config.batch_size, steps) {
        let Some(loss) = local.objective.loss(&model, local, batch) else {
            continue;
        };
        loss_sum += loss.clone().into_scalar::<f32>() as f64;
        n += 1;
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(config.optimizer.lr(), model, grads);
    }
    (model, mean(loss_sum, n))
}

/// Correct predictions and summed loss over a set of samples.
#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub struct EvalCounts {
    pub correct: u64,
    pub total: u64,
    pub loss_sum: f64,
}

impl EvalCounts {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &EvalCounts) {
        self.correct += other.correct;
        self.total += other.total;
        self.loss_sum += other.loss_sum;
    }

    pub fn accuracy(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.correct as f64 / self.total as f64
        }
    }
}

/// Fits FiT's naive Bayes head to the features of `indices` (in validation mode).
pub fn fit_head(
    model: &Vit,
    config: &NaiveBayes,
    data: &Dataset,
    indices: &[u32],
    patch: usize,
    batch: usize,
) -> NaiveBayesHead {
    let model = model.valid();
    let device = model.patch_embed.weight.val().device();
    let features: Vec<Tensor<2>> = indices
        .chunks(batch.max(1))
        .map(|chunk| {
            model
                .encode(batch_tensors(data, chunk, patch, &device).0)
                .features
        })
        .collect();
    let labels: Vec<usize> = indices
        .iter()
        .map(|&i| data.labels[i as usize] as usize)
        .collect();
    let dim = model.norm.gamma.dims()[0];
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
    data: &Dataset,
    indices: &[u32],
    patch: usize,
    batch: usize,
) -> EvalCounts {
    let model = model.valid();
    let device = model.patch_embed.weight.val().device();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let mut counts = EvalCounts::default();
    for chunk in indices.chunks(batch.max(1)) {
        let (x, y) = batch_tensors(data, chunk, patch, &device);
        let features = model.encode(x).features;
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

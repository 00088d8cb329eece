//! Local training and evaluation of a model on a subset of a data set.

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::group::Owners;
use super::naive_bayes::{NaiveBayes, NaiveBayesHead};
use super::params::Trainable;
use super::prefix::Prefix;
use super::vit::{Input, Vit};
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

fn labels(data: &Dataset, idx: &[u32], device: &Device) -> Tensor<1, Int> {
    let labels: Vec<i64> = idx
        .iter()
        .map(|&i| data.labels[i as usize] as i64)
        .collect();
    Tensor::from_data(TensorData::new(labels, [idx.len()]), device)
}

/// A data set as a model reads it: images cut into patches, or the cached activations of
/// the model's frozen prefix.
#[derive(Copy, Clone)]
pub struct Samples<'a> {
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
    pub samples: Samples<'a>,
    pub indices: &'a [u32],
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

    /// A batch as `model`'s input and labels on the job's device.
    pub(crate) fn input(&self, model: &Vit, batch: &[u32]) -> (Input, Tensor<1, Int>) {
        self.samples.input(model, batch, self.device)
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

/// Trains a group of clients' adapters together (client batching): the adapters start
/// from `starts`, stacked in one model (see [`group`](super::group)); step `j` runs every
/// member's `j`-th batch in one forward/backward pass and one optimiser step, each
/// member's samples through its own adapter. A member whose batches run out keeps the
/// adapter of its last step.
///
/// Equals [`train_local`] of each member alone up to float rounding. The members read the
/// same samples (one data set, one prefix cache) and train through the linear head (or a
/// frozen one) without an extra loss term; see
/// [`Adaptation::groups`](super::Adaptation::groups).
pub fn train_group(
    model: Vit,
    trainable: &Trainable,
    members: &[LocalData<'_>],
    starts: &[&[f32]],
    config: &TrainConfig,
    head_trains: bool,
) -> Vec<(Vec<f32>, f64)> {
    let k = members.len();
    let Some(first) = members.first() else {
        return Vec::new();
    };
    let (device, samples) = (first.device, first.samples);
    assert!(
        members
            .iter()
            .all(|m| std::ptr::eq(m.samples.data, samples.data)),
        "a group's members read one data set"
    );
    let mut model = trainable.load_group(model, starts);
    let batches: Vec<Vec<Vec<u32>>> = members
        .iter()
        .map(|m| m.batches(config.batch_size, m.steps(config)))
        .collect();
    let steps = batches.iter().map(Vec::len).max().unwrap_or(0);
    let mut out: Vec<(Vec<f32>, f64)> = starts.iter().map(|s| (s.to_vec(), 0.0)).collect();
    let mut loss_sums = vec![0.0f64; k];
    let mut optim = config.optimizer.init();
    for step in 0..steps {
        let active: Vec<usize> = (0..k).filter(|&i| batches[i].len() > step).collect();
        // The active members' batches, one after another, read as one.
        let (mut idx, mut owner, mut weight) = (Vec::new(), Vec::new(), Vec::new());
        let mut sizes = vec![0; k];
        for &i in &active {
            let batch = &batches[i][step];
            idx.extend_from_slice(batch);
            owner.extend(std::iter::repeat_n(i, batch.len()));
            weight.extend(std::iter::repeat_n(1.0 / batch.len() as f32, batch.len()));
            sizes[i] = batch.len();
        }
        let n = idx.len();
        let (x, y) = samples.input(&model, &idx, device);
        let owners = Owners::new(&sizes, device);
        let encoded = model.encode_input(x, Some(&owners));
        let logits = if head_trains {
            // Every client's logits side by side; each sample keeps its own client's.
            owners.own_block(model.head.forward(encoded.features))
        } else {
            model.head.forward(encoded.features)
        };
        // Each member's mean loss, summed: every adapter gets its own member's gradient.
        let y = y.reshape([n, 1]);
        let nll = log_softmax(logits, 1).gather(1, y).reshape([n]).neg();
        let w: Tensor<1> = Tensor::from_data(TensorData::new(weight, [n]), device);
        let per_sample = nll * w;
        let values = per_sample
            .clone()
            .into_data()
            .try_to_vec::<f32>()
            .expect("losses are f32");
        // Weighted by 1 / batch size, a member's values add up to its mean batch loss.
        for (&i, v) in owner.iter().zip(&values) {
            loss_sums[i] += *v as f64;
        }
        let grads = GradientsParams::from_grads(per_sample.sum().backward(), &model);
        model = optim.step(config.optimizer.lr(), model, grads);
        let finished: Vec<usize> = active
            .iter()
            .copied()
            .filter(|&i| batches[i].len() == step + 1)
            .collect();
        if !finished.is_empty() {
            let params = trainable.extract_group(&model, k);
            for i in finished {
                out[i] = (params[i].clone(), mean(loss_sums[i], batches[i].len()));
            }
        }
    }
    out
}

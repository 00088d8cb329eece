//! The model clients fine-tune, with Burn: the backbone, its adapters and heads, local
//! training and evaluation, and the clients' procedures.
//!
//! - `vit`, `fused`: the ViT backbone and its fused kernels;
//! - `adapter/`: what trains on the frozen backbone (LoRA, FiLM, prompts, memory tokens,
//!   blocks), and what each costs;
//! - `head/`: the classifier (linear, frozen for FedBABU, naive Bayes for FiT);
//! - `train/`: local training, client batching and evaluation;
//! - `procedure/`: what clients do with them (PersA-FL's MAML and Moreau envelope,
//!   personalization before a test);
//! - `params`, `init`, `prefix`, `group`: the flat trainable vector, initialisation, the
//!   frozen-prefix cache, and the sample-to-client map of a batch.

mod adapter;
mod cost;
mod fused;
mod group;
mod head;
mod import;
mod init;
mod params;
mod patches;
mod prefix;
mod procedure;
mod rowwise;
mod train;
mod vit;

pub use adapter::{AdapterSpec, Film, LoraLinear, LoraTarget, PromptNet};
pub use cost::{AdapterCost, Flops, SampleCost, catalog};
pub use head::{Covariance, HeadSpec, NaiveBayes, NaiveBayesHead, inverse_logdet};
pub use import::{
    Architecture, CheckpointLayout, ImportError, Normalization, Pretrained, Problem, TensorProblem,
};
pub use params::Trainable;
pub use prefix::{Depth, FillCount, Prefix};
pub use procedure::{PersonalStep, Personalization, train_maml, train_moreau};
pub use train::{
    EvalCounts, LocalData, Objective, Optimizer, Samples, TrainConfig, evaluate, train_group,
    train_local,
};
pub use vit::{Activation, EncoderOutput, Input, Pooling, ShapeError, Vit, VitConfig, VitStyle};

pub(crate) use group::Owners;
pub(crate) use init::init_params;
pub(crate) use procedure::{personalize, train_slot};
pub(crate) use train::fit_head;

use std::path::Path;

use burn::tensor::Device;

/// How the backbone is adapted: the adapter, the head, and the number of clients (one
/// FedAPT key each).
#[derive(Clone, Debug, PartialEq)]
pub struct Adaptation {
    /// What trains in the backbone.
    pub adapter: AdapterSpec,
    /// The classifier.
    pub head: HeadSpec,
    /// Clients (FedAPT draws one key each).
    pub clients: usize,
}

impl Adaptation {
    /// An adapter with a trained linear head.
    pub fn linear(adapter: AdapterSpec) -> Self {
        Self {
            adapter,
            head: HeadSpec::Linear,
            clients: 1,
        }
    }

    /// The parameters that train and travel: the adapter's, and the head's if it trains.
    pub fn trainable(&self) -> Trainable {
        let mut patterns = self.adapter.trained();
        if self.head.trains() {
            patterns.push(HEAD.into());
        }
        Trainable::new(&patterns.join("|"))
    }

    /// The head alone, for FedBABU's personalization.
    pub fn head() -> Trainable {
        Trainable::new(HEAD)
    }

    /// The parameters that start fresh rather than pretrained: the adapter's own and the
    /// head, unless it is the checkpoint's.
    fn fresh(&self) -> Trainable {
        let mut patterns = self.adapter.added();
        if self.head != HeadSpec::Pretrained {
            patterns.push(HEAD.into());
        }
        Trainable::new(&patterns.join("|"))
    }

    /// How deep the frozen prefix reaches: the whole backbone when only the head trains,
    /// the patch embedding unless the whole backbone trains.
    pub fn frozen_prefix(&self) -> Option<Depth> {
        match self.adapter {
            AdapterSpec::HeadOnly => Some(Depth::Features),
            AdapterSpec::Full => None,
            _ => Some(Depth::Embedding),
        }
    }

    /// Whether clients' jobs can train in one batch (see [`train_group`]): adapters whose
    /// parameters act per sample (LoRA, FiLM, prompt and memory tokens, the head), trained
    /// through the linear or a frozen head.
    pub fn groups(&self) -> bool {
        let per_sample = matches!(
            self.adapter,
            AdapterSpec::Lora { .. }
                | AdapterSpec::Film
                | AdapterSpec::Prompt { .. }
                | AdapterSpec::Memory { .. }
                | AdapterSpec::HeadOnly
        );
        per_sample && self.head.naive_bayes().is_none()
    }

    /// What a training step of a client minimises.
    pub fn objective(&self, client: usize) -> Objective {
        Objective {
            naive_bayes: self.head.naive_bayes(),
            key: self.adapter.key_loss().map(|w| (client, w)),
        }
    }
}

const HEAD: &str = r"head\.(weight|bias)";

/// Where a backbone's pretrained values come from.
pub enum Weights<'a> {
    /// A checkpoint `flotilla pretrain` wrote (Burn's format, the model's own names).
    Burn(&'a Path),
    /// A timm or open_clip safetensors file, checked into `Architecture`; the data's
    /// values are normalised by the `(mean, std)` given.
    Pretrained(&'a Pretrained, &'a Architecture, (f32, f32)),
}

/// Why a backbone's weights could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// A Burn checkpoint.
    #[error(transparent)]
    Burn(#[from] burn::store::RecordError),
    /// A safetensors checkpoint.
    #[error(transparent)]
    Import(#[from] ImportError),
}

/// Builds the model clients fine-tune: the backbone (pretrained weights when given), a
/// fresh head (or the checkpoint's) and the adapter, with everything but what trains
/// frozen.
///
/// Every value not read from a checkpoint is drawn from `seed` (see [`init_params`]), so
/// the model is the same on every thread and every run.
pub fn build_model(
    config: &VitConfig,
    weights: Option<Weights<'_>>,
    adaptation: &Adaptation,
    seed: u64,
    device: &Device,
) -> Result<Vit, WeightsError> {
    let mut vit = init_params(config.init(device), &Trainable::new(".*"), seed);
    match weights {
        Some(Weights::Burn(path)) => {
            use burn::module::Module;
            vit = vit.try_load_file(path)?;
        }
        Some(Weights::Pretrained(pretrained, arch, input)) => {
            let head = adaptation.head == HeadSpec::Pretrained;
            vit = pretrained.load(vit, arch, input, head)?;
        }
        None => {}
    }
    let vit = vit.attach(&adaptation.adapter, adaptation.clients, device);
    // A fresh head and fresh adapter parameters, from a stream of their own.
    let vit = init_params(vit, &adaptation.fresh(), seed ^ 0x5eed_0ada_97e5);
    Ok(adaptation.trainable().apply(vit))
}

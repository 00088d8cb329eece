//! The classifier on the class token: what kind, and whether it trains and travels.

use serde::{Deserialize, Serialize};

mod naive_bayes;

pub use naive_bayes::{Covariance, NaiveBayes, NaiveBayesHead, inverse_logdet};

fn default_shrinkage() -> f64 {
    0.5
}

/// The head of the model clients fine-tune.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum HeadSpec {
    /// A fresh linear layer that trains and is federated with the adapter.
    #[default]
    Linear,
    /// The pretrained checkpoint's own linear head (its classes must be the data's): it
    /// trains and is federated as [`Linear`](Self::Linear) is, from the checkpoint's values.
    Pretrained,
    /// FedBABU: a linear layer left at its random initialisation, never trained or sent;
    /// personalization fine-tunes it locally (`eval.personalize: FineTuneHead`).
    Frozen,
    /// FiT: a Gaussian naive Bayes classifier fitted in closed form on each client's own
    /// features; nothing of it trains or travels.
    NaiveBayes {
        /// One pooled covariance (`Lda`) or one per class (`Qda`).
        covariance: Covariance,
        /// How far every covariance is pulled towards the identity, in `(0, 1]`.
        #[serde(default = "default_shrinkage")]
        shrinkage: f64,
    },
}

impl HeadSpec {
    /// Whether the head's parameters train and travel.
    pub fn trains(&self) -> bool {
        matches!(self, HeadSpec::Linear | HeadSpec::Pretrained)
    }

    /// The naive Bayes configuration, for that head.
    pub fn naive_bayes(&self) -> Option<NaiveBayes> {
        match *self {
            HeadSpec::NaiveBayes {
                covariance,
                shrinkage,
            } => Some(NaiveBayes {
                covariance,
                shrinkage,
            }),
            _ => None,
        }
    }

    /// A short name for tables.
    pub fn name(&self) -> &'static str {
        match self {
            HeadSpec::Linear => "linear",
            HeadSpec::Pretrained => "pretrained",
            HeadSpec::Frozen => "frozen",
            HeadSpec::NaiveBayes {
                covariance: Covariance::Lda,
                ..
            } => "naive Bayes (LDA)",
            HeadSpec::NaiveBayes {
                covariance: Covariance::Qda,
                ..
            } => "naive Bayes (QDA)",
        }
    }
}

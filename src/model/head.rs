//! The classifier on the class token: what kind, and whether it trains and travels.

use serde::{Deserialize, Serialize};

use super::naive_bayes::{Covariance, NaiveBayes};

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
    /// FedBABU: a linear layer left at its random initialisation, never trained or sent;
    /// personalization fine-tunes it locally (`eval.personalize: FineTuneHead`).
    Frozen,
    /// FiT: a Gaussian naive Bayes classifier fitted in closed form on each client's own
    /// features; nothing of it trains or travels.
    NaiveBayes {
        covariance: Covariance,
        #[serde(default = "default_shrinkage")]
        shrinkage: f64,
    },
}

impl HeadSpec {
    /// Whether the head's parameters train and travel.
    pub fn trains(&self) -> bool {
        matches!(self, HeadSpec::Linear)
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

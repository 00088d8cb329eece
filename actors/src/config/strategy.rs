//! The server strategies' settings: FedAvg, FedAsync, FedBuff, FL-TAC's clustering, and
//! how asynchronous strategies weigh stale updates.

use serde::{Deserialize, Serialize};

use crate::time::SimTime;

/// FedAvg's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FedAvgConfig {
    /// Updates aggregated per round.
    pub clients_per_round: usize,
    /// Extra fraction of clients selected so that stragglers can be left out
    /// (0.3 selects 30% more; the first `clients_per_round` updates close the round).
    pub over_selection: f64,
    /// A round closes at this time after it starts, with whatever updates arrived.
    pub deadline: Option<SimTime>,
}

/// FedAsync's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FedAsyncConfig {
    /// Clients training at once; a finished client is replaced at once.
    pub concurrency: usize,
    /// Base mixing weight `α` in `(0, 1]`.
    pub alpha: f64,
    /// How the mixing weight decays with staleness.
    pub staleness: Staleness,
}

/// FedBuff's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FedBuffConfig {
    /// Clients training at once; a finished client is replaced at once.
    pub concurrency: usize,
    /// Deltas per aggregation, `K`.
    pub buffer: usize,
    /// Server learning rate `η`.
    pub server_lr: f64,
    /// Weighting of each delta by its staleness (`Constant` for the plain mean).
    pub staleness: Staleness,
    /// Updates older than this many versions are discarded.
    pub max_staleness: Option<u64>,
}

/// Most clusters a scenario may ask for: matching clusters to models is exact (it tries
/// every injective assignment), which stays cheap up to here.
pub const MAX_CLUSTERS: usize = 8;

/// FL-TAC's clustering settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Clustering {
    /// Clusters, and models the server keeps: `k`.
    pub k: usize,
    /// Most Lloyd iterations per k-means run.
    pub iterations: usize,
    /// k-means runs per clustering, each from its own k-means++ seeding; the one with the
    /// least within-cluster sum of squares wins (k-means alone can settle in a poor local
    /// optimum that merges two tasks).
    pub restarts: usize,
    /// Once the models differ, start Lloyd's iterations from them instead of fresh
    /// k-means++ seedings: an adapter then joins the model it drifted least from, and a
    /// clustering that lacks some task (a FedBuff flush, a partial round) leaves that
    /// task's model alone instead of splitting another task in two.
    pub warm_start: bool,
}

/// `s(τ)`: how much an update that is `τ` versions old still counts, in asynchronous
/// aggregation (Xie et al. 2019, section 5.2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Staleness {
    /// `s(τ) = 1`.
    Constant,
    /// `s(τ) = (1 + τ)^-exponent`.
    Polynomial {
        /// How fast the weight decays.
        exponent: f64,
    },
    /// `s(τ) = 1` for `τ <= b`, else `1 / (a (τ - b) + 1)`.
    Hinge {
        /// Slope of the decay past `b`.
        a: f64,
        /// Staleness up to which updates count fully.
        b: f64,
    },
}

impl Staleness {
    /// The weight of an update `tau` versions old.
    ///
    /// ```
    /// use flotilla_actors::config::Staleness;
    /// assert_eq!(Staleness::Polynomial { exponent: 0.5 }.weight(3), 0.5);
    /// assert_eq!(Staleness::Hinge { a: 2.0, b: 1.0 }.weight(1), 1.0);
    /// assert_eq!(Staleness::Hinge { a: 2.0, b: 1.0 }.weight(3), 0.2);
    /// ```
    pub fn weight(&self, tau: u64) -> f64 {
        let t = tau as f64;
        match *self {
            Staleness::Constant => 1.0,
            Staleness::Polynomial { exponent } => (1.0 + t).powf(-exponent),
            Staleness::Hinge { a, b } => {
                if t <= b {
                    1.0
                } else {
                    1.0 / (a * (t - b) + 1.0)
                }
            }
        }
    }
}

//! The federated algorithm: a server strategy, and for PersA-FL and FL-TAC what the
//! clients or the server add on top of it.

use serde::{Deserialize, Serialize};

use crate::model::PersonalStep;
use crate::scenario::units::Duration;
use flotilla_actors::config::Staleness;

/// The federated algorithm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum AlgorithmSection {
    /// Synchronous rounds.
    FedAvg {
        /// Updates aggregated per round.
        clients_per_round: usize,
        /// Extra fraction of clients selected, so that stragglers can be left out.
        #[serde(default)]
        over_selection: f64,
        /// A round closes this long after it starts, with what arrived.
        #[serde(default)]
        deadline: Option<Duration>,
    },
    /// Every update mixed in on arrival with weight `alpha * s(staleness)`.
    FedAsync {
        /// Clients at work at once.
        concurrency: usize,
        /// Base mixing weight, in `(0, 1]`.
        alpha: f64,
        /// How an update's weight decays with its staleness.
        #[serde(default = "constant_staleness")]
        staleness: Staleness,
    },
    /// `buffer` deltas averaged, then applied with `server_lr`.
    FedBuff {
        /// Clients at work at once.
        concurrency: usize,
        /// Updates per aggregation.
        buffer: usize,
        /// The server's learning rate.
        #[serde(default = "one")]
        server_lr: f64,
        /// How an update's weight decays with its staleness.
        #[serde(default = "constant_staleness")]
        staleness: Staleness,
        /// Updates older than this many versions are discarded.
        #[serde(default)]
        max_staleness: Option<u64>,
    },
    /// PersA-FL: asynchronous aggregation (`server` is FedAsync or FedBuff) of clients
    /// that run a personalized-FL procedure and keep their personal state.
    #[serde(rename = "PersAFL")]
    PersAfl {
        /// The server strategy underneath.
        server: Box<AlgorithmSection>,
        /// What every client runs on the model it received.
        personal: PersonalStep,
    },
    /// FL-TAC: clients train one adapter per task they hold; the server (`server` is
    /// FedAvg or FedBuff) clusters the adapters into `k` groups with k-means (the best of
    /// `restarts` k-means++ seedings, each followed by at most `iterations` Lloyd steps)
    /// and aggregates inside each.
    #[serde(rename = "FLTAC")]
    FlTac {
        /// Clusters, and models the server keeps.
        k: usize,
        /// Most Lloyd steps per k-means run.
        #[serde(default = "default_iterations")]
        iterations: usize,
        /// k-means runs per clustering; the tightest wins.
        #[serde(default = "default_restarts")]
        restarts: usize,
        /// Once the cluster models differ, start k-means from them instead of fresh
        /// seedings (for FedBuff flushes or partial rounds that may lack a task).
        #[serde(default)]
        warm_start: bool,
        /// The server strategy underneath.
        server: Box<AlgorithmSection>,
    },
}

fn default_iterations() -> usize {
    20
}

fn default_restarts() -> usize {
    10
}

fn constant_staleness() -> Staleness {
    Staleness::Constant
}

fn one() -> f64 {
    1.0
}

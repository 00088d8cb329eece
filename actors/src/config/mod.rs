//! A simulation's resolved settings: what the scenario file becomes once validated (the
//! population, the network, the strategy and its settings, when to stop).

use serde::{Deserialize, Serialize};

mod strategy;

pub use strategy::{
    Clustering, FedAsyncConfig, FedAvgConfig, FedBuffConfig, MAX_CLUSTERS, Staleness,
};

use crate::device::{Availability, DeviceSpec};
use crate::learner::TaskId;
use crate::net::{LinkSpec, Rate};
use crate::time::SimTime;
use crate::wire::Wire;

/// One client's device and links.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientSpec {
    /// The device class it belongs to (a label for reports).
    pub class: String,
    /// How fast it trains and how often it drops out.
    pub device: DeviceSpec,
    /// When it is online.
    pub availability: Availability,
    /// Its connection to the server (updates).
    pub uplink: LinkSpec,
    /// The server's connection to it (models).
    pub downlink: LinkSpec,
    /// The client's slots, one per adapter it trains, each with the true task behind it
    /// (`None` when the slot mixes tasks): for reports only, strategies never see it.
    pub slots: Vec<Option<TaskId>>,
}

/// The algorithm the server runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum AlgorithmSpec {
    /// Synchronous rounds (McMahan et al. 2017).
    FedAvg(FedAvgConfig),
    /// Every update mixed in on arrival (Xie et al. 2019).
    FedAsync(FedAsyncConfig),
    /// Buffered asynchronous aggregation (Nguyen et al. 2022).
    FedBuff(FedBuffConfig),
}

/// When a run ends.
#[derive(Clone, Debug, PartialEq)]
pub struct StopRule {
    /// After this many completed rounds (synchronous algorithms); `0` evaluates the
    /// initial model and stops.
    pub rounds: Option<u32>,
    /// At this simulated time.
    pub virtual_time: Option<SimTime>,
    /// As soon as an evaluation reaches this global accuracy.
    pub target_accuracy: Option<f64>,
}

/// Everything the engine needs to run.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// Every random stream derives from it.
    pub seed: u64,
    /// The population, by client id.
    pub clients: Vec<ClientSpec>,
    /// Server ingress capacity shared by uploads (bits/s); `None` is unlimited.
    pub ingress: Option<Rate>,
    /// Server egress capacity shared by downloads (bits/s); `None` is unlimited.
    pub egress: Option<Rate>,
    /// How parameters are encoded each way.
    pub wire: Wire,
    /// The server's strategy.
    pub algorithm: AlgorithmSpec,
    /// FL-TAC: cluster the adapters and keep one model per cluster.
    pub clustering: Option<Clustering>,
    /// Number of tasks in the data (1 without tasks).
    pub tasks: usize,
    /// When the run ends.
    pub stop: StopRule,
    /// Evaluate the global model every this many rounds (always at the end).
    pub eval_every_rounds: Option<u32>,
    /// Also evaluate it at every multiple of this simulated time (when it changed).
    pub eval_every: Option<SimTime>,
    /// Record every change of state of this many clients, spread evenly over the ids.
    pub tracked_clients: usize,
}

impl SimConfig {
    /// Whether `client`'s changes of state are recorded: `tracked_clients` ids spread
    /// evenly over the population.
    pub(crate) fn tracks(client: usize, clients: usize, tracked: usize) -> bool {
        let tracked = tracked.min(clients);
        // Client c is the i-th sample when floor(i * clients / tracked) == c.
        (0..tracked).any(|i| i * clients / tracked == client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracked_clients_spread_over_the_ids() {
        let tracked: Vec<usize> = (0..10).filter(|&c| SimConfig::tracks(c, 10, 4)).collect();
        assert_eq!(tracked, vec![0, 2, 5, 7]);
    }
}

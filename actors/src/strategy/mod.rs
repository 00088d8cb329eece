//! Server strategies: whom to select and how to aggregate, in the spirit of Flower's
//! `configure_fit` / `aggregate_fit`, driven by simulation events.

mod aggregate;
mod asynchronous;
mod crew;
mod fedasync;
mod fedavg;
mod fedbuff;
mod fltac;
mod idle;

pub(crate) use aggregate::{apply_buffer, mix_into, weighted_mean};
pub(crate) use fltac::{Clusterer, Member};

use crate::config::AlgorithmSpec;
use crate::learner::ClientId;
use crate::message::UpdateMsg;
use crate::server::ServerCtx;
use asynchronous::{Aggregator, Asynchronous};
use crew::Crew;
use fedasync::FedAsync;
use fedavg::FedAvg;
use fedbuff::FedBuff;

/// The server strategy of `algorithm`, aggregating by clusters of adapters (FL-TAC) when
/// a `clusterer` is given.
pub(crate) fn build(algorithm: &AlgorithmSpec, clusterer: Option<Clusterer>) -> Box<dyn Strategy> {
    match (algorithm, clusterer) {
        (AlgorithmSpec::FedAvg(c), None) => Box::new(FedAvg::new(c.clone())),
        (AlgorithmSpec::FedAvg(c), Some(k)) => Box::new(FedAvg::new(c.clone()).clustered(k)),
        (AlgorithmSpec::FedBuff(c), k) => {
            let mut fedbuff = FedBuff::new(c.clone());
            if let Some(k) = k {
                fedbuff = fedbuff.clustered(k);
            }
            Box::new(Asynchronous::new(c.concurrency, fedbuff))
        }
        // FedAsync mixes one model; scenarios never cluster it.
        (AlgorithmSpec::FedAsync(c), _) => {
            Box::new(Asynchronous::new(c.concurrency, FedAsync::new(c.clone())))
        }
    }
}

/// A federated-learning algorithm's server side.
pub(crate) trait Strategy: Send {
    /// Whether the strategy reads what an update's client started from
    /// ([`ServerCtx::base`]), so that the server must remember what it sent each client.
    fn reads_bases(&self) -> bool {
        false
    }
    /// The run begins: select clients and send them the model.
    fn start(&mut self, ctx: &mut ServerCtx<'_>);
    /// An update arrived from a client.
    fn on_update(&mut self, ctx: &mut ServerCtx<'_>, update: UpdateMsg);
    /// A timer set with [`ServerCtx::set_timer`] fired.
    /// Strategies that set no timers keep the default.
    fn on_timer(&mut self, _ctx: &mut ServerCtx<'_>, _token: u64) {}
    /// A client's job for `round` failed (it dropped out, went offline, declined, or a
    /// transfer was given up): the client is free again, and nothing will come of it.
    fn on_failure(&mut self, ctx: &mut ServerCtx<'_>, client: ClientId, round: u32);
    /// A client came online (asynchronous strategies may put it to work).
    fn on_online(&mut self, _ctx: &mut ServerCtx<'_>, _client: ClientId) {}
    /// A client went offline.
    fn on_offline(&mut self, _ctx: &mut ServerCtx<'_>, _client: ClientId) {}
    /// What the strategy waits for, in words, for a run that stalls (e.g. "round 7 waits
    /// for 3 updates").
    fn awaiting(&self) -> String;
}

/// Stands in for the strategy while the server lends it out to handle an event.
pub(crate) struct Idle;

impl Strategy for Idle {
    fn start(&mut self, _: &mut ServerCtx<'_>) {}
    fn on_update(&mut self, _: &mut ServerCtx<'_>, _: UpdateMsg) {}
    fn on_failure(&mut self, _: &mut ServerCtx<'_>, _: ClientId, _: u32) {}
    fn awaiting(&self) -> String {
        "nothing".into()
    }
}

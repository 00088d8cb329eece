//! Server strategies: whom to select and how to aggregate, in the spirit of Flower's
//! `configure_fit` / `aggregate_fit`, driven by simulation events.

mod concurrency;
mod fedasync;
mod fedavg;
mod fedbuff;
mod fltac;
mod staleness;

pub use concurrency::Crew;
pub use fedasync::{FedAsync, FedAsyncConfig, mix};
pub use fedavg::{FedAvg, FedAvgConfig, weighted_mean};
pub use fedbuff::{FedBuff, FedBuffConfig, apply_buffer};
pub use fltac::{Clusterer, Clustering, MAX_CLUSTERS, Member, inertia, kmeans, match_clusters};
pub use staleness::Staleness;

use crate::learner::ClientId;
use crate::message::UpdateMsg;
use crate::server::ServerCtx;

/// A federated-learning algorithm's server side.
pub trait Strategy: Send {
    /// A short name for reports and metric labels.
    fn name(&self) -> &'static str;
    /// The run begins: select clients and send them the model.
    fn start(&mut self, ctx: &mut ServerCtx<'_>);
    /// An update arrived from a client.
    fn on_update(&mut self, ctx: &mut ServerCtx<'_>, update: UpdateMsg);
    /// A timer set with [`ServerCtx::set_timer`] fired.
    /// Strategies that set no timers keep the default.
    fn on_timer(&mut self, _ctx: &mut ServerCtx<'_>, _token: u64) {}
    /// A client working for the server failed (dropped out, or a transfer was given up).
    /// Synchronous strategies rely on their deadline instead.
    fn on_failure(&mut self, _ctx: &mut ServerCtx<'_>, _client: ClientId) {}
    /// A client came online (asynchronous strategies may put it to work).
    fn on_online(&mut self, _ctx: &mut ServerCtx<'_>, _client: ClientId) {}
    /// A client went offline.
    fn on_offline(&mut self, _ctx: &mut ServerCtx<'_>, _client: ClientId) {}
}

/// Stands in for the strategy while the server lends it out to handle an event.
pub(crate) struct Idle;

impl Strategy for Idle {
    fn name(&self) -> &'static str {
        "idle"
    }
    fn start(&mut self, _: &mut ServerCtx<'_>) {}
    fn on_update(&mut self, _: &mut ServerCtx<'_>, _: UpdateMsg) {}
}

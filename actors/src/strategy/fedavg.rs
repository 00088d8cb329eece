//! FedAvg (McMahan et al. 2017): synchronous rounds, sample-weighted mean, with a round
//! deadline and over-selection for stragglers (Bonawitz et al. 2019).

use rand::seq::index::sample;
use serde::{Deserialize, Serialize};

use crate::learner::ClientId;
use crate::message::UpdateMsg;
use crate::record::DiscardReason;
use crate::server::ServerCtx;
use crate::strategy::{Clusterer, Strategy, weighted_mean};
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

/// Synchronous FedAvg, optionally with FL-TAC's clustered aggregation.
pub(crate) struct FedAvg {
    config: FedAvgConfig,
    clusterer: Option<Clusterer>,
    round: u32,
    open: bool,
    received: Vec<UpdateMsg>,
}

impl FedAvg {
    pub(crate) fn new(config: FedAvgConfig) -> Self {
        Self {
            config,
            clusterer: None,
            round: 0,
            open: false,
            received: Vec::new(),
        }
    }

    /// Aggregates by clusters of adapters (FL-TAC) instead of one mean.
    pub(crate) fn clustered(mut self, clusterer: Clusterer) -> Self {
        self.clusterer = Some(clusterer);
        self
    }

    /// Clients selected per round: `ceil(k * (1 + over_selection))`, at most all of them.
    pub(crate) fn selection_size(&self, clients: usize) -> usize {
        let k = self.config.clients_per_round as f64 * (1.0 + self.config.over_selection);
        (k.ceil() as usize).min(clients)
    }

    fn begin_round(&mut self, ctx: &mut ServerCtx<'_>) {
        self.round += 1;
        self.open = true;
        self.received.clear();
        ctx.begin_round();
        let online = ctx.online_clients();
        let m = self.selection_size(online.len());
        let mut selected: Vec<ClientId> = sample(ctx.rng(), online.len(), m)
            .into_iter()
            .map(|i| online[i])
            .collect();
        selected.sort_unstable();
        for client in selected {
            ctx.send_model(client, self.round);
        }
        if let Some(deadline) = self.config.deadline {
            let at = ctx.now() + deadline;
            ctx.set_timer(at, self.round as u64);
        }
    }

    fn close_round(&mut self, ctx: &mut ServerCtx<'_>) {
        self.open = false;
        let mut updates = std::mem::take(&mut self.received);
        if !updates.is_empty() {
            // Aggregate in client order: the result does not depend on arrival order.
            updates.sort_by_key(|u| u.client);
            let contributors: Vec<ClientId> = updates.iter().map(|u| u.client).collect();
            if let Some(clusterer) = &mut self.clusterer {
                clusterer.aggregate(ctx, &updates, &contributors);
            } else {
                let weighted: Vec<(&[f32], f64)> = updates
                    .iter()
                    .map(|u| (u.single().params.as_slice(), u.single().num_samples as f64))
                    .collect();
                ctx.apply(weighted_mean(&weighted), &contributors);
            }
        }
        if ctx.end_round(self.round) {
            self.begin_round(ctx);
        }
    }
}

impl Strategy for FedAvg {
    fn start(&mut self, ctx: &mut ServerCtx<'_>) {
        self.begin_round(ctx);
    }

    fn on_update(&mut self, ctx: &mut ServerCtx<'_>, update: UpdateMsg) {
        if !self.open || update.round != self.round {
            ctx.discard(update.client, DiscardReason::Late);
            return;
        }
        self.received.push(update);
        if self.received.len() >= self.config.clients_per_round {
            self.close_round(ctx);
        }
    }

    fn on_timer(&mut self, ctx: &mut ServerCtx<'_>, token: u64) {
        if self.open && token == self.round as u64 {
            self.close_round(ctx);
        }
    }
}

//! FedAvg (McMahan et al. 2017): synchronous rounds, sample-weighted mean, with a round
//! deadline and over-selection for stragglers (Bonawitz et al. 2019).
//!
//! A round closes when `clients_per_round` updates are in, at its deadline, or as soon as
//! no selected client is still working on it (the others failed, went offline or
//! declined): it then aggregates what arrived. A round that finds no client online waits
//! for the first to come online.

use rand::seq::index::sample;

use crate::config::FedAvgConfig;
use crate::learner::ClientId;
use crate::message::UpdateMsg;
use crate::record::DiscardReason;
use crate::server::ServerCtx;
use crate::strategy::{Clusterer, Strategy, weighted_mean};

/// The timer token that starts a round that waited for a client to come online (round
/// deadlines use the round's number).
const WAKE: u64 = u64::MAX;

/// Synchronous FedAvg, optionally with FL-TAC's clustered aggregation.
pub(crate) struct FedAvg {
    config: FedAvgConfig,
    clusterer: Option<Clusterer>,
    round: u32,
    open: bool,
    /// No client was online when the next round was due: it starts when one comes online.
    waiting: bool,
    received: Vec<UpdateMsg>,
    /// The clients chosen for the open round that are still working on it.
    outstanding: Vec<ClientId>,
}

impl FedAvg {
    pub(crate) fn new(config: FedAvgConfig) -> Self {
        Self {
            config,
            clusterer: None,
            round: 0,
            open: false,
            waiting: false,
            received: Vec::new(),
            outstanding: Vec::new(),
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
        let online = ctx.online_clients();
        if online.is_empty() {
            self.waiting = true;
            return;
        }
        self.waiting = false;
        self.round += 1;
        self.open = true;
        self.received.clear();
        ctx.begin_round();
        let m = self.selection_size(online.len());
        let mut selected: Vec<ClientId> = sample(ctx.rng(), online.len(), m)
            .into_iter()
            .map(|i| online[i])
            .collect();
        selected.sort_unstable();
        for &client in &selected {
            ctx.send_model(client, self.round);
        }
        self.outstanding = selected;
        if let Some(deadline) = self.config.deadline {
            let at = ctx.now() + deadline;
            ctx.set_timer(at, self.round as u64);
        }
    }

    fn close_round(&mut self, ctx: &mut ServerCtx<'_>) {
        self.open = false;
        self.outstanding.clear();
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

    /// `client` is done with the open round, delivered or failed; closes the round when
    /// it has its updates or nobody is left working on it.
    fn settle(&mut self, ctx: &mut ServerCtx<'_>, client: ClientId) {
        self.outstanding.retain(|&c| c != client);
        if self.received.len() >= self.config.clients_per_round || self.outstanding.is_empty() {
            self.close_round(ctx);
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
        let client = update.client;
        self.received.push(update);
        self.settle(ctx, client);
    }

    fn on_failure(&mut self, ctx: &mut ServerCtx<'_>, client: ClientId, round: u32) {
        if self.open && round == self.round && self.outstanding.contains(&client) {
            self.settle(ctx, client);
        }
    }

    fn on_timer(&mut self, ctx: &mut ServerCtx<'_>, token: u64) {
        if token == WAKE {
            if self.waiting {
                self.begin_round(ctx);
            }
        } else if self.open && token == self.round as u64 {
            self.close_round(ctx);
        }
    }

    fn on_online(&mut self, ctx: &mut ServerCtx<'_>, _client: ClientId) {
        if self.waiting {
            // Start once every device that comes online at this instant has checked in.
            let now = ctx.now();
            ctx.set_timer(now, WAKE);
        }
    }

    fn awaiting(&self) -> String {
        if self.waiting {
            format!("round {} waits for a client to come online", self.round + 1)
        } else {
            let more = self
                .config
                .clients_per_round
                .saturating_sub(self.received.len());
            format!(
                "round {} waits for {more} more update{} from {} client{} at work",
                self.round,
                if more == 1 { "" } else { "s" },
                self.outstanding.len(),
                if self.outstanding.len() == 1 { "" } else { "s" },
            )
        }
    }
}

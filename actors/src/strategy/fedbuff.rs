//! FedBuff (Nguyen et al. 2022): the server buffers `K` client deltas, then applies their
//! (optionally staleness-weighted) mean with a server learning rate.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Crew, Staleness, Strategy};
use crate::learner::ClientId;
use crate::message::UpdateMsg;
use crate::payload::Params;
use crate::record::DiscardReason;
use crate::server::ServerCtx;

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

/// `w + lr · (1/K) Σ s_i Δ_i` for `K` deltas with staleness weights `s_i`, in f64.
///
/// ```
/// use flotilla_actors::strategy::apply_buffer;
/// let deltas: [(&[f32], f64); 2] = [(&[2.0, 0.0], 1.0), (&[4.0, 2.0], 0.5)];
/// assert_eq!(apply_buffer(&[1.0, 1.0], &deltas, 0.5), vec![2.0, 1.25]);
/// ```
pub fn apply_buffer(global: &[f32], deltas: &[(&[f32], f64)], lr: f64) -> Vec<f32> {
    let k = deltas.len() as f64;
    let mut acc: Vec<f64> = global.iter().map(|&w| w as f64).collect();
    for (delta, s) in deltas {
        for (a, &d) in acc.iter_mut().zip(delta.iter()) {
            *a += lr * s * d as f64 / k;
        }
    }
    acc.into_iter().map(|a| a as f32).collect()
}

/// Asynchronous FedBuff.
pub struct FedBuff {
    config: FedBuffConfig,
    crew: Crew,
    /// Deltas waiting for the buffer to fill, with their staleness weight.
    buffered: Vec<(ClientId, Vec<f32>, f64)>,
    /// Models sent to clients still working, by version, to turn their updates into deltas.
    sent: BTreeMap<u64, Params>,
}

impl FedBuff {
    pub fn new(config: FedBuffConfig) -> Self {
        Self {
            crew: Crew::new(config.concurrency),
            config,
            buffered: Vec::new(),
            sent: BTreeMap::new(),
        }
    }

    fn refill(&mut self, ctx: &mut ServerCtx<'_>) {
        self.crew.fill(ctx);
        self.sent.insert(ctx.version(), ctx.global().clone());
    }

    fn flush(&mut self, ctx: &mut ServerCtx<'_>) {
        let buffered = std::mem::take(&mut self.buffered);
        let deltas: Vec<(&[f32], f64)> = buffered
            .iter()
            .map(|(_, d, s)| (d.as_slice(), *s))
            .collect();
        let contributors: Vec<ClientId> = buffered.iter().map(|(c, _, _)| *c).collect();
        let next = apply_buffer(ctx.global(), &deltas, self.config.server_lr);
        ctx.apply(next, &contributors);
    }
}

impl Strategy for FedBuff {
    fn name(&self) -> &'static str {
        "fedbuff"
    }

    fn start(&mut self, ctx: &mut ServerCtx<'_>) {
        ctx.begin_round();
        self.refill(ctx);
    }

    fn on_update(&mut self, ctx: &mut ServerCtx<'_>, update: UpdateMsg) {
        self.crew.release(update.client);
        let tau = ctx.version().saturating_sub(update.base_version);
        let base = self.sent.get(&update.base_version).cloned();
        match (base, self.config.max_staleness) {
            (Some(_), Some(max)) if tau > max => ctx.discard(update.client, DiscardReason::Stale),
            (None, _) => ctx.discard(update.client, DiscardReason::Stale),
            (Some(base), _) => {
                let delta: Vec<f32> = update
                    .params
                    .iter()
                    .zip(base.iter())
                    .map(|(u, b)| u - b)
                    .collect();
                let s = self.config.staleness.weight(tau);
                self.buffered.push((update.client, delta, s));
            }
        }
        if self.buffered.len() >= self.config.buffer {
            self.flush(ctx);
            let version = ctx.version();
            if !ctx.end_round(version as u32) {
                return;
            }
            ctx.begin_round();
        }
        self.refill(ctx);
        // Forget models no working client started from.
        let oldest = self.crew.oldest_base().unwrap_or(ctx.version());
        self.sent.retain(|&v, _| v >= oldest);
    }

    fn on_failure(&mut self, ctx: &mut ServerCtx<'_>, client: ClientId) {
        if self.crew.contains(client) {
            self.crew.release(client);
            self.refill(ctx);
        }
    }

    fn on_online(&mut self, ctx: &mut ServerCtx<'_>, _: ClientId) {
        self.refill(ctx);
    }

    fn on_timer(&mut self, _: &mut ServerCtx<'_>, _: u64) {}
}

//! FedBuff (Nguyen et al. 2022): the server buffers `K` client deltas, then applies their
//! (optionally staleness-weighted) mean with a server learning rate.

use super::{Aggregator, Clusterer, Member, apply_buffer};
use crate::config::FedBuffConfig;
use crate::learner::ClientId;
use crate::learner::Params;
use crate::message::UpdateMsg;
use crate::record::DiscardReason;
use crate::server::ServerCtx;

/// One buffered update: its adapters, their deltas against what the client was sent,
/// and its staleness weight.
struct Buffered {
    client: ClientId,
    adapters: Vec<(Params, u64)>,
    deltas: Vec<Vec<f32>>,
    weight: f64,
}

/// FedBuff's aggregation, optionally with FL-TAC's clustered aggregation.
pub(crate) struct FedBuff {
    config: FedBuffConfig,
    clusterer: Option<Clusterer>,
    /// Updates waiting for the buffer to fill.
    buffered: Vec<Buffered>,
}

impl FedBuff {
    pub(crate) fn new(config: FedBuffConfig) -> Self {
        Self {
            config,
            clusterer: None,
            buffered: Vec::new(),
        }
    }

    /// Aggregates by clusters of adapters (FL-TAC), one clustering per flush.
    pub(crate) fn clustered(mut self, clusterer: Clusterer) -> Self {
        self.clusterer = Some(clusterer);
        self
    }

    fn flush(&mut self, ctx: &mut ServerCtx<'_>) {
        let buffered = std::mem::take(&mut self.buffered);
        let contributors: Vec<ClientId> = buffered.iter().map(|b| b.client).collect();
        let lr = self.config.server_lr;
        let deltas: Vec<(&[f32], f64)> = buffered
            .iter()
            .flat_map(|b| b.deltas.iter().map(|d| (d.as_slice(), b.weight)))
            .collect();
        if let Some(clusterer) = &mut self.clusterer {
            let members: Vec<Member<'_>> = buffered
                .iter()
                .flat_map(|b| {
                    b.adapters.iter().enumerate().map(|(slot, (p, n))| Member {
                        client: b.client,
                        slot,
                        params: p,
                        weight: *n as f64,
                    })
                })
                .collect();
            clusterer.apply_buffer(ctx, &members, &deltas, lr, &contributors);
        } else {
            let next = apply_buffer(ctx.global(), &deltas, lr);
            ctx.apply(next, &contributors);
        }
    }
}

impl Aggregator for FedBuff {
    /// FedBuff buffers deltas against what each client started from.
    fn reads_bases(&self) -> bool {
        true
    }

    fn awaiting(&self) -> String {
        let more = self.config.buffer.saturating_sub(self.buffered.len());
        format!(
            "{more} more update{} ({} of {} buffered)",
            if more == 1 { "" } else { "s" },
            self.buffered.len(),
            self.config.buffer
        )
    }

    fn aggregate(&mut self, ctx: &mut ServerCtx<'_>, update: UpdateMsg) -> bool {
        let tau = ctx.version().saturating_sub(update.base_version);
        // The models this client started from; gone if it was sent newer ones since.
        let base = ctx.base().map(<[Params]>::to_vec);
        match (base, self.config.max_staleness) {
            (Some(_), Some(max)) if tau > max => ctx.discard(update.client, DiscardReason::Stale),
            (None, _) => ctx.discard(update.client, DiscardReason::Stale),
            (Some(base), _) => {
                let deltas = update
                    .adapters
                    .iter()
                    .zip(&base)
                    .map(|(a, b)| a.params.iter().zip(b.iter()).map(|(u, b)| u - b).collect())
                    .collect();
                self.buffered.push(Buffered {
                    client: update.client,
                    adapters: update
                        .adapters
                        .iter()
                        .map(|a| (a.params.clone(), a.num_samples))
                        .collect(),
                    deltas,
                    weight: self.config.staleness.weight(tau),
                });
            }
        }
        if self.buffered.len() >= self.config.buffer {
            self.flush(ctx);
            let version = ctx.version();
            if !ctx.end_round(version as u32) {
                return false;
            }
            ctx.begin_round();
        }
        true
    }
}

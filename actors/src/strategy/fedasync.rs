//! FedAsync (Xie et al. 2019): every update is mixed into the global model on arrival,
//! with a weight that decays with its staleness.

use serde::{Deserialize, Serialize};

use super::{Aggregator, Staleness, mix_into};
use crate::message::UpdateMsg;
use crate::server::ServerCtx;

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

/// FedAsync's aggregation: mix each update in on arrival.
pub(crate) struct FedAsync {
    config: FedAsyncConfig,
}

impl FedAsync {
    pub(crate) fn new(config: FedAsyncConfig) -> Self {
        Self { config }
    }
}

impl Aggregator for FedAsync {
    fn aggregate(&mut self, ctx: &mut ServerCtx<'_>, update: UpdateMsg) -> bool {
        let tau = ctx.version().saturating_sub(update.base_version);
        let a = self.config.alpha * self.config.staleness.weight(tau);
        let client = update.client;
        // The update's own buffer becomes the new model (copied only if still shared).
        let mut mixed = std::sync::Arc::unwrap_or_clone(update.into_single().params);
        mix_into(ctx.global(), &mut mixed, a);
        ctx.apply(mixed, &[client]);
        let version = ctx.version();
        let goes_on = ctx.end_round(version as u32);
        if goes_on {
            ctx.begin_round();
        }
        goes_on
    }
}

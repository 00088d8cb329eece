//! FedAsync (Xie et al. 2019): every update is mixed into the global model on arrival,
//! with a weight that decays with its staleness.

use super::{Aggregator, mix_into};
use crate::config::FedAsyncConfig;
use crate::message::UpdateMsg;
use crate::server::ServerCtx;

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

//! FedAsync (Xie et al. 2019): every update is mixed into the global model on arrival,
//! with a weight that decays with its staleness.

use serde::{Deserialize, Serialize};

use super::{Crew, Staleness, Strategy};
use crate::learner::ClientId;
use crate::message::UpdateMsg;
use crate::server::ServerCtx;

/// FedAsync's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FedAsyncConfig {
    /// Clients training at once; a finished client is replaced at once.
    pub concurrency: usize,
    /// Base mixing weight `α` in `(0, 1]`.
    pub alpha: f64,
    pub staleness: Staleness,
}

/// `(1 - a) w + a u`, accumulated in f64.
///
/// ```
/// use flotilla_actors::strategy::mix;
/// assert_eq!(mix(&[1.0, 2.0], &[3.0, 6.0], 0.25), vec![1.5, 3.0]);
/// ```
pub fn mix(global: &[f32], update: &[f32], a: f64) -> Vec<f32> {
    global
        .iter()
        .zip(update)
        .map(|(&w, &u)| ((1.0 - a) * w as f64 + a * u as f64) as f32)
        .collect()
}

/// Asynchronous FedAsync.
pub struct FedAsync {
    config: FedAsyncConfig,
    crew: Crew,
}

impl FedAsync {
    pub fn new(config: FedAsyncConfig) -> Self {
        Self {
            crew: Crew::new(config.concurrency),
            config,
        }
    }
}

impl Strategy for FedAsync {
    fn name(&self) -> &'static str {
        "fedasync"
    }

    fn start(&mut self, ctx: &mut ServerCtx<'_>) {
        ctx.begin_round();
        self.crew.fill(ctx);
    }

    fn on_update(&mut self, ctx: &mut ServerCtx<'_>, update: UpdateMsg) {
        self.crew.release(ctx, update.client);
        let tau = ctx.version().saturating_sub(update.base_version);
        let a = self.config.alpha * self.config.staleness.weight(tau);
        let mixed = mix(ctx.global(), &update.single().params, a);
        ctx.apply(mixed, &[update.client]);
        let version = ctx.version();
        if ctx.end_round(version as u32) {
            ctx.begin_round();
            self.crew.fill(ctx);
        }
    }

    fn on_failure(&mut self, ctx: &mut ServerCtx<'_>, client: ClientId) {
        self.crew.replace(ctx, client);
    }

    fn on_online(&mut self, ctx: &mut ServerCtx<'_>, client: ClientId) {
        self.crew.online(ctx, client);
    }

    fn on_offline(&mut self, _: &mut ServerCtx<'_>, client: ClientId) {
        self.crew.offline(client);
    }
}

//! The shape every asynchronous server shares: a crew of `concurrency` clients kept at
//! work, each update folded in on arrival by an [`Aggregator`], failed and offline
//! clients replaced.

use super::{Crew, Strategy};
use crate::learner::ClientId;
use crate::message::UpdateMsg;
use crate::server::ServerCtx;

/// What tells one asynchronous server from another: how an arriving update is folded
/// into the model.
pub(crate) trait Aggregator: Send {
    /// Folds `update` in. Returns whether the run goes on, so that the crew is topped up.
    fn aggregate(&mut self, ctx: &mut ServerCtx<'_>, update: UpdateMsg) -> bool;
    /// Whether it reads what an update's client started from.
    fn reads_bases(&self) -> bool {
        false
    }
    /// What the next model version waits for, in words (e.g. "3 more updates").
    fn awaiting(&self) -> String {
        "an update".into()
    }
}

/// An asynchronous server: `aggregator` over a crew of working clients.
pub(crate) struct Asynchronous<A> {
    crew: Crew,
    aggregator: A,
}

impl<A: Aggregator> Asynchronous<A> {
    /// Keeps `concurrency` clients at work for `aggregator`.
    pub(crate) fn new(concurrency: usize, aggregator: A) -> Self {
        Self {
            crew: Crew::new(concurrency),
            aggregator,
        }
    }
}

impl<A: Aggregator> Strategy for Asynchronous<A> {
    fn reads_bases(&self) -> bool {
        self.aggregator.reads_bases()
    }

    fn start(&mut self, ctx: &mut ServerCtx<'_>) {
        ctx.begin_round();
        self.crew.fill(ctx);
    }

    fn on_update(&mut self, ctx: &mut ServerCtx<'_>, update: UpdateMsg) {
        self.crew.release(ctx, update.client);
        if self.aggregator.aggregate(ctx, update) {
            self.crew.fill(ctx);
        }
    }

    fn on_failure(&mut self, ctx: &mut ServerCtx<'_>, client: ClientId, _round: u32) {
        self.crew.replace(ctx, client);
    }

    fn on_online(&mut self, ctx: &mut ServerCtx<'_>, client: ClientId) {
        self.crew.online(ctx, client);
    }

    fn on_offline(&mut self, _: &mut ServerCtx<'_>, client: ClientId) {
        self.crew.offline(client);
    }

    fn awaiting(&self) -> String {
        format!(
            "the next model version waits for {}, with {} of {} clients at work",
            self.aggregator.awaiting(),
            self.crew.at_work(),
            self.crew.concurrency()
        )
    }
}

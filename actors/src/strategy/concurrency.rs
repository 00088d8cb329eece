//! Keeping a fixed number of clients at work, as asynchronous FL servers do.

use std::collections::BTreeSet;

use rand::Rng;

use crate::learner::ClientId;
use crate::server::ServerCtx;

/// The clients currently training for the server, topped up to `concurrency`.
#[derive(Clone, Debug)]
pub struct Crew {
    concurrency: usize,
    working: BTreeSet<ClientId>,
}

impl Crew {
    pub fn new(concurrency: usize) -> Self {
        Self {
            concurrency,
            working: BTreeSet::new(),
        }
    }

    /// `client` failed: if it was working for the server, another takes its place.
    pub fn replace(&mut self, ctx: &mut ServerCtx<'_>, client: ClientId) {
        if self.working.remove(&client) {
            self.fill(ctx);
        }
    }

    /// `client` finished (its update arrived, or it failed): it leaves the crew.
    pub fn release(&mut self, client: ClientId) {
        self.working.remove(&client);
    }

    /// Selects idle online clients uniformly at random until `concurrency` are working (or
    /// none is left), and sends each the current model.
    pub fn fill(&mut self, ctx: &mut ServerCtx<'_>) {
        let mut idle: Vec<ClientId> = ctx
            .online_clients()
            .into_iter()
            .filter(|c| !self.working.contains(c))
            .collect();
        while self.working.len() < self.concurrency && !idle.is_empty() {
            let pick = idle.remove(ctx.rng().random_range(0..idle.len()));
            self.working.insert(pick);
            let version = ctx.version();
            ctx.send_model(pick, version as u32);
        }
    }
}

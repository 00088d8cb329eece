//! Keeping a fixed number of clients at work, as asynchronous FL servers do.

use rand::Rng;

use super::idle::IdleSet;
use crate::learner::ClientId;
use crate::server::ServerCtx;

/// The clients currently training for the server, topped up to `concurrency`.
#[derive(Clone, Debug)]
pub(crate) struct Crew {
    concurrency: usize,
    /// Which clients work for the server, by id (sized at the first fill).
    working: Vec<bool>,
    at_work: usize,
    /// The online clients not working, once the first fill has seen who is online.
    idle: Option<IdleSet>,
}

impl Crew {
    /// A crew of `concurrency` clients.
    pub(crate) fn new(concurrency: usize) -> Self {
        Self {
            concurrency,
            working: Vec::new(),
            at_work: 0,
            idle: None,
        }
    }

    /// Clients working for the server now.
    pub(crate) fn at_work(&self) -> usize {
        self.at_work
    }

    /// Clients the crew keeps at work when it can.
    pub(crate) fn concurrency(&self) -> usize {
        self.concurrency
    }

    fn works(&self, client: ClientId) -> bool {
        self.working.get(client).is_some_and(|&w| w)
    }

    /// `client` failed: if it was working for the server, another takes its place.
    pub(crate) fn replace(&mut self, ctx: &mut ServerCtx<'_>, client: ClientId) {
        if self.works(client) {
            self.release(ctx, client);
            self.fill(ctx);
        }
    }

    /// `client` finished (its update arrived, or it failed): it leaves the crew.
    pub(crate) fn release(&mut self, ctx: &ServerCtx<'_>, client: ClientId) {
        if self.works(client) {
            self.working[client] = false;
            self.at_work -= 1;
            if ctx.is_online(client)
                && let Some(idle) = &mut self.idle
            {
                idle.insert(client);
            }
        }
    }

    /// `client` came online: it may be picked, and picks are topped up.
    pub(crate) fn online(&mut self, ctx: &mut ServerCtx<'_>, client: ClientId) {
        if !self.works(client)
            && let Some(idle) = &mut self.idle
        {
            idle.insert(client);
        }
        self.fill(ctx);
    }

    /// `client` went offline: it cannot be picked until it is back.
    pub(crate) fn offline(&mut self, client: ClientId) {
        if let Some(idle) = &mut self.idle {
            idle.remove(client);
        }
    }

    /// Selects idle online clients uniformly at random until `concurrency` are working (or
    /// none is left), and sends each the current model. Each pick is the `r`-th idle
    /// client in id order for a uniform `r`, found in O(log n).
    pub(crate) fn fill(&mut self, ctx: &mut ServerCtx<'_>) {
        if self.working.len() < ctx.clients() {
            self.working.resize(ctx.clients(), false);
        }
        let working = &self.working;
        let idle = self.idle.get_or_insert_with(|| {
            let mut set = IdleSet::new(ctx.clients());
            for c in ctx.online_clients() {
                if !working[c] {
                    set.insert(c);
                }
            }
            set
        });
        while self.at_work < self.concurrency && idle.len() > 0 {
            let pick = idle.nth(ctx.rng().random_range(0..idle.len()));
            idle.remove(pick);
            self.working[pick] = true;
            self.at_work += 1;
            let version = ctx.version();
            ctx.send_model(pick, version as u32);
        }
    }
}

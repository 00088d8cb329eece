//! Keeping a fixed number of clients at work, as asynchronous FL servers do.

use std::collections::BTreeSet;

use rand::Rng;

use crate::learner::ClientId;
use crate::server::ServerCtx;

/// The clients currently training for the server, topped up to `concurrency`.
#[derive(Clone, Debug)]
pub(crate) struct Crew {
    concurrency: usize,
    working: BTreeSet<ClientId>,
    /// The online clients not working, once the first fill has seen who is online.
    idle: Option<IdleSet>,
}

impl Crew {
    pub(crate) fn new(concurrency: usize) -> Self {
        Self {
            concurrency,
            working: BTreeSet::new(),
            idle: None,
        }
    }

    /// `client` failed: if it was working for the server, another takes its place.
    pub(crate) fn replace(&mut self, ctx: &mut ServerCtx<'_>, client: ClientId) {
        if self.working.contains(&client) {
            self.release(ctx, client);
            self.fill(ctx);
        }
    }

    /// `client` finished (its update arrived, or it failed): it leaves the crew.
    pub(crate) fn release(&mut self, ctx: &ServerCtx<'_>, client: ClientId) {
        if self.working.remove(&client)
            && ctx.is_online(client)
            && let Some(idle) = &mut self.idle
        {
            idle.insert(client);
        }
    }

    /// `client` came online: it may be picked, and picks are topped up.
    pub(crate) fn online(&mut self, ctx: &mut ServerCtx<'_>, client: ClientId) {
        if !self.working.contains(&client)
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
        let working = &self.working;
        let idle = self.idle.get_or_insert_with(|| {
            let mut set = IdleSet::new(ctx.clients());
            for c in ctx.online_clients() {
                if !working.contains(&c) {
                    set.insert(c);
                }
            }
            set
        });
        while self.working.len() < self.concurrency && idle.len() > 0 {
            let pick = idle.nth(ctx.rng().random_range(0..idle.len()));
            idle.remove(pick);
            self.working.insert(pick);
            let version = ctx.version();
            ctx.send_model(pick, version as u32);
        }
    }
}

/// A set of client ids with O(log n) insertion, removal and `k`-th smallest member (a
/// Fenwick tree over membership bits).
#[derive(Clone, Debug)]
struct IdleSet {
    member: Vec<bool>,
    tree: Vec<usize>,
    len: usize,
}

impl IdleSet {
    fn new(clients: usize) -> Self {
        Self {
            member: vec![false; clients],
            tree: vec![0; clients + 1],
            len: 0,
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    fn insert(&mut self, c: ClientId) {
        if !self.member[c] {
            self.member[c] = true;
            self.len += 1;
            self.update(c, |n| n + 1);
        }
    }

    fn remove(&mut self, c: ClientId) {
        if self.member[c] {
            self.member[c] = false;
            self.len -= 1;
            self.update(c, |n| n - 1);
        }
    }

    fn update(&mut self, c: ClientId, f: impl Fn(usize) -> usize) {
        let mut i = c + 1;
        while i < self.tree.len() {
            self.tree[i] = f(self.tree[i]);
            i += i & i.wrapping_neg();
        }
    }

    /// The `k`-th smallest member (from 0); `k < len`.
    fn nth(&self, k: usize) -> ClientId {
        let (mut pos, mut left) = (0, k + 1);
        let mut step = (self.tree.len() - 1).next_power_of_two();
        while step > 0 {
            let next = pos + step;
            if next < self.tree.len() && self.tree[next] < left {
                pos = next;
                left -= self.tree[next];
            }
            step /= 2;
        }
        pos
    }
}

#[cfg(test)]
mod tests {
    use super::IdleSet;

    #[test]
    fn nth_is_the_kth_smallest_member() {
        let mut set = IdleSet::new(37);
        let mut plain: Vec<usize> = Vec::new();
        for c in (0..37).filter(|c| c % 3 != 1) {
            set.insert(c);
            plain.push(c);
        }
        for c in [5, 0, 36, 17] {
            set.remove(c);
            plain.retain(|&x| x != c);
        }
        set.insert(4);
        plain.push(4);
        plain.sort_unstable();
        assert_eq!(set.len(), plain.len());
        for (k, &c) in plain.iter().enumerate() {
            assert_eq!(set.nth(k), c, "k = {k}");
        }
    }
}

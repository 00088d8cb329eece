//! Processor sharing of one capacity among concurrent transfers: max-min fair, each
//! transfer also capped by its own link's bandwidth, in O(log n) per change.
//!
//! Max-min fairness splits the transfers in two: those whose cap is below the fair share
//! run at their cap (*capped*), and the others all run at the same fair share
//! `s = (capacity - sum of the capped caps) / (number of the others)` (*fair*). So the
//! fair transfers need not be re-timed one by one when `s` changes: one shared "service"
//! clock `V` counts the bits each of them has been served since the start, and a fair
//! transfer finishes when `V` reaches its *finish tag* (`V` when it joined plus its bits),
//! as in the virtual-time schedulers of fair queueing and SimGrid's lazy max-min solver.
//! A capped transfer keeps its own rate, and only changes class when its cap crosses the
//! fair share. Both sums (`V` and the capped caps) are kept exact (see [`Exact`]), so the
//! times come out to the microsecond as if every transfer were re-timed at every change.
//!
//! One file on purpose: the two sets, the service clock and the heap of finish tags are
//! one invariant, and every method keeps it; the reference and tests live beside it.

#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests;

use rustc_hash::FxHashMap;

use super::exact::Exact;
use super::heap::IndexedHeap;
use super::{LinkId, MIN_BANDWIDTH, Rate};
use crate::time::SimTime;

/// One attempt's bits crossing the server's shared capacity.
#[derive(Clone, Debug)]
pub(crate) struct Transfer {
    pub(crate) link: LinkId,
    pub(crate) attempt: u64,
    pub(crate) bits: f64,
    /// The sending link's own bandwidth (bits/s): this transfer never goes faster.
    pub(crate) cap: Rate,
    /// Added after the last bit leaves the bottleneck.
    pub(crate) latency: SimTime,
}

/// The end of a link's list of transfers.
const NONE: u32 = u32::MAX;

/// Less than half a microsecond of work left counts as done (float noise).
const DONE_WITHIN: f64 = 0.5e-6;

/// Where a transfer stands.
#[derive(Copy, Clone, Debug)]
enum Class {
    /// Runs at the fair share; done when the service clock reaches `finish`.
    Fair { finish: Exact },
    /// Runs at its cap; had `left` bits to go at `since`.
    Capped { since: SimTime, left: f64 },
}

struct Entry {
    transfer: Transfer,
    /// Order of arrival: transfers that finish together are reported in it.
    seq: u64,
    /// The next transfer of the same link ([`NONE`] ends the list).
    next_on_link: u32,
    /// The cap now (bits/s, at least [`MIN_BANDWIDTH`]).
    cap: f64,
    class: Class,
}

/// Processor sharing of one capacity among concurrent transfers (max-min fair with caps).
pub(crate) struct SharedCapacity {
    capacity: Option<Rate>,
    entries: Vec<Option<Entry>>,
    free: Vec<u32>,
    next_seq: u64,
    /// The first of each link's transfers (a link may carry a few messages at once; they
    /// are chained through their entries).
    by_link: FxHashMap<LinkId, u32>,
    /// Fair transfers by finish tag.
    fair_finish: IndexedHeap<Exact>,
    /// Fair transfers by cap, least first: the first to become capped.
    fair_caps: IndexedHeap<(f64, u64)>,
    /// Capped transfers by cap, greatest first (negated): the first to become fair.
    capped_caps: IndexedHeap<(f64, u64)>,
    /// Capped transfers by the microsecond they finish by.
    capped_wake: IndexedHeap<SimTime>,
    /// Transfers whose cap follows steps, by the time it next changes.
    changes: IndexedHeap<SimTime>,
    /// The capped transfers' caps, summed.
    capped_sum: Exact,
    /// Bits served to every fair transfer since the start.
    served: Exact,
    /// The fair transfers' rate now.
    share: f64,
    /// Time of the last change: `served` counts up to it.
    last: SimTime,
}

impl SharedCapacity {
    /// A capacity in bits per second, or unlimited.
    pub(crate) fn new(capacity: Option<Rate>) -> Self {
        Self {
            capacity,
            entries: Vec::new(),
            free: Vec::new(),
            next_seq: 0,
            by_link: FxHashMap::default(),
            fair_finish: IndexedHeap::default(),
            fair_caps: IndexedHeap::default(),
            capped_caps: IndexedHeap::default(),
            capped_wake: IndexedHeap::default(),
            changes: IndexedHeap::default(),
            capped_sum: Exact::default(),
            served: Exact::default(),
            share: 0.0,
            last: SimTime::ZERO,
        }
    }

    /// Adds a transfer at `now` and re-times the others.
    pub(crate) fn start(&mut self, now: SimTime, transfer: Transfer) {
        self.settle(now);
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.entries.push(None);
                u32::try_from(self.entries.len() - 1).expect("fewer than 2^32 transfers")
            }
        };
        let cap = transfer.cap.at(now).max(MIN_BANDWIDTH);
        if let Some(at) = transfer.cap.next_change_after(now) {
            self.changes.set(id, at);
        }
        let next_on_link = self.by_link.insert(transfer.link, id).unwrap_or(NONE);
        let seq = self.next_seq;
        self.next_seq += 1;
        let left = transfer.bits;
        self.entries[id as usize] = Some(Entry {
            transfer,
            seq,
            next_on_link,
            cap,
            class: Class::Capped { since: now, left },
        });
        self.capped_sum.add(cap);
        self.index_capped(id);
        self.rebalance();
    }

    /// Removes and returns the transfers whose last bit has left by `now`, in the order
    /// they started.
    pub(crate) fn finish_due(&mut self, now: SimTime) -> Vec<Transfer> {
        // What is done is judged at the rates that ran until now; caps change after.
        self.advance(now);
        let mut done = Vec::new();
        while let Some((finish, id)) = self.fair_finish.peek() {
            if finish.minus(self.served) > self.share * DONE_WITHIN {
                break;
            }
            done.push(id);
            self.remove(id);
        }
        // A capped transfer that finishes within half a microsecond after `now` has its
        // wake-up at the next microsecond.
        let mut near = Vec::new();
        while let Some((wake, id)) = self.capped_wake.peek() {
            if wake > now + SimTime(1) {
                break;
            }
            self.capped_wake.remove(id);
            near.push(id);
        }
        for id in near {
            let entry = self.entry(id);
            let Class::Capped { since, left } = entry.class else {
                unreachable!("the wake heap holds capped transfers")
            };
            let cap = entry.cap;
            if left - cap * now.saturating_sub(since).as_secs_f64() <= cap * DONE_WITHIN {
                done.push(id);
                self.remove(id);
            } else {
                self.index_capped(id);
            }
        }
        let mut finished: Vec<Entry> = done.into_iter().map(|id| self.release(id)).collect();
        finished.sort_by_key(|e| e.seq);
        self.settle(now);
        finished.into_iter().map(|e| e.transfer).collect()
    }

    /// Drops the transfers of `link` (its client went offline) and re-times the others.
    /// Returns how many were dropped.
    pub(crate) fn cancel(&mut self, now: SimTime, link: LinkId) -> usize {
        self.settle(now);
        let mut dropped = 0;
        while let Some(&id) = self.by_link.get(&link) {
            self.remove(id);
            self.release(id);
            dropped += 1;
        }
        self.rebalance();
        dropped
    }

    /// When the next transfer finishes at the current rates, or the rates next change,
    /// whichever comes first; `None` when nothing is under way.
    pub(crate) fn next_completion(&self) -> Option<SimTime> {
        let fair = self.fair_finish.peek().map(|(finish, _)| {
            self.last + SimTime::from_secs_ceil(finish.minus(self.served) / self.share)
        });
        let capped = self.capped_wake.peek().map(|(wake, _)| wake);
        let finish = [fair, capped].into_iter().flatten().min()?;
        let change = [
            self.changes.peek().map(|(at, _)| at),
            self.capacity
                .as_ref()
                .and_then(|c| c.next_change_after(self.last)),
        ]
        .into_iter()
        .flatten()
        .min();
        Some(change.map_or(finish, |c| c.min(finish)))
    }

    fn entry(&self, id: u32) -> &Entry {
        self.entries[id as usize]
            .as_ref()
            .expect("an indexed transfer is present")
    }

    fn entry_mut(&mut self, id: u32) -> &mut Entry {
        self.entries[id as usize]
            .as_mut()
            .expect("an indexed transfer is present")
    }

    /// Brings the service clock to `now` at the current share.
    fn advance(&mut self, now: SimTime) {
        let dt = now.saturating_sub(self.last).as_secs_f64();
        if dt > 0.0 && self.fair_finish.len() > 0 {
            self.served.add(self.share * dt);
        }
        self.last = self.last.max(now);
    }

    /// Brings the service clock to `now`, applies the cap changes due by then, and
    /// re-divides the capacity.
    fn settle(&mut self, now: SimTime) {
        self.advance(now);
        while let Some((at, id)) = self.changes.peek() {
            if at > self.last {
                break;
            }
            let entry = self.entry(id);
            let (cap, next) = (
                entry.transfer.cap.at(at),
                entry.transfer.cap.next_change_after(at),
            );
            match next {
                Some(next) => self.changes.set(id, next),
                None => {
                    self.changes.remove(id);
                }
            }
            self.recap(id, cap.max(MIN_BANDWIDTH));
        }
        self.rebalance();
    }

    /// Gives transfer `id` a new cap from now on.
    fn recap(&mut self, id: u32, cap: f64) {
        let now = self.last;
        let entry = self.entry_mut(id);
        let old = entry.cap;
        entry.cap = cap;
        match entry.class {
            Class::Fair { .. } => {
                let seq = entry.seq;
                self.fair_caps.set(id, (cap, seq));
            }
            Class::Capped { since, left } => {
                let left = (left - old * now.saturating_sub(since).as_secs_f64()).max(0.0);
                entry.class = Class::Capped { since: now, left };
                self.capped_sum.add(cap - old);
                self.index_capped(id);
            }
        }
    }

    /// Moves transfers between the classes until every capped transfer's cap is below
    /// the fair share and every fair transfer's at or above it; then sets the share.
    fn rebalance(&mut self) {
        let Some(capacity) = self
            .capacity
            .as_ref()
            .map(|c| c.at(self.last).max(MIN_BANDWIDTH))
        else {
            // Unlimited: every transfer runs at its cap.
            return;
        };
        loop {
            let fair = self.fair_finish.len() as f64;
            let left = capacity - self.capped_sum.value();
            if let Some(((cap, _), id)) = self.fair_caps.peek()
                && cap < left / fair
            {
                self.make_capped(id);
                continue;
            }
            if let Some(((neg_cap, _), id)) = self.capped_caps.peek() {
                let cap = -neg_cap;
                // Were it fair, it would share what it now takes with the fair ones.
                if cap >= (left + cap) / (fair + 1.0) {
                    self.make_fair(id);
                    continue;
                }
            }
            break;
        }
        let fair = self.fair_finish.len();
        self.share = if fair > 0 {
            (capacity - self.capped_sum.value()) / fair as f64
        } else {
            0.0
        };
    }

    /// Makes fair transfer `id` capped, with what it has left now.
    fn make_capped(&mut self, id: u32) {
        let served = self.served;
        let now = self.last;
        let entry = self.entry_mut(id);
        let Class::Fair { finish } = entry.class else {
            unreachable!("a fair transfer")
        };
        let left = finish.minus(served).max(0.0);
        entry.class = Class::Capped { since: now, left };
        let cap = entry.cap;
        self.fair_finish.remove(id);
        self.fair_caps.remove(id);
        self.capped_sum.add(cap);
        self.index_capped(id);
    }

    /// Makes capped transfer `id` fair, with what it has left now.
    fn make_fair(&mut self, id: u32) {
        let served = self.served;
        let now = self.last;
        let entry = self.entry_mut(id);
        let Class::Capped { since, left } = entry.class else {
            unreachable!("a capped transfer")
        };
        let cap = entry.cap;
        let left = (left - cap * now.saturating_sub(since).as_secs_f64()).max(0.0);
        let finish = served.plus(left);
        entry.class = Class::Fair { finish };
        let seq = entry.seq;
        self.capped_sum.add(-cap);
        self.capped_caps.remove(id);
        self.capped_wake.remove(id);
        self.fair_finish.set(id, finish);
        self.fair_caps.set(id, (cap, seq));
    }

    /// Files capped transfer `id` by cap and by the microsecond it finishes by.
    fn index_capped(&mut self, id: u32) {
        let entry = self.entry(id);
        let Class::Capped { since, left } = entry.class else {
            unreachable!("a capped transfer")
        };
        let (cap, seq) = (entry.cap, entry.seq);
        self.capped_caps.set(id, (-cap, seq));
        self.capped_wake
            .set(id, since + SimTime::from_secs_ceil(left / cap));
    }

    /// Takes transfer `id` out of every index and of its class's sums.
    fn remove(&mut self, id: u32) {
        let entry = self.entry(id);
        if let Class::Capped { .. } = entry.class {
            let cap = entry.cap;
            self.capped_sum.add(-cap);
        }
        self.fair_finish.remove(id);
        self.fair_caps.remove(id);
        self.capped_caps.remove(id);
        self.capped_wake.remove(id);
        self.changes.remove(id);
    }

    /// Frees removed transfer `id`'s slot and returns its entry.
    fn release(&mut self, id: u32) -> Entry {
        let entry = self.entries[id as usize]
            .take()
            .expect("a removed transfer is still stored");
        // Unlink it from its link's chain.
        let link = entry.transfer.link;
        let head = self.by_link.get(&link).copied().unwrap_or(NONE);
        if head == id {
            if entry.next_on_link == NONE {
                self.by_link.remove(&link);
            } else {
                self.by_link.insert(link, entry.next_on_link);
            }
        } else {
            let mut at = head;
            while at != NONE {
                let e = self.entry_mut(at);
                if e.next_on_link == id {
                    e.next_on_link = entry.next_on_link;
                    break;
                }
                at = e.next_on_link;
            }
        }
        self.free.push(id);
        entry
    }
}

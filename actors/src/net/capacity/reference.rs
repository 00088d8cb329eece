//! The reference for [`SharedCapacity`](super::SharedCapacity): processor sharing done
//! the obvious way, every transfer re-rated at every change. Tests only.

use std::collections::BTreeMap;

use super::Transfer;
use crate::net::{LinkId, MIN_BANDWIDTH, Rate};
use crate::time::SimTime;

struct Active {
    transfer: Transfer,
    remaining_bits: f64,
    rate_bps: f64,
}

/// The straightforward algorithm the engine used first: every change re-sorts and re-rates
/// every transfer (O(n log n) per change). Kept as the reference the fast one must match.
pub(super) struct Reference {
    capacity: Option<Rate>,
    active: BTreeMap<u64, Active>,
    next_id: u64,
    last: SimTime,
}

impl Reference {
    /// A capacity in bits per second, or unlimited.
    pub(super) fn new(capacity: Option<Rate>) -> Self {
        Self {
            capacity,
            active: BTreeMap::new(),
            next_id: 0,
            last: SimTime::ZERO,
        }
    }

    /// Adds a transfer at `now` and re-times the others.
    pub(super) fn start(&mut self, now: SimTime, transfer: Transfer) {
        self.advance(now);
        let id = self.next_id;
        self.next_id += 1;
        self.active.insert(
            id,
            Active {
                remaining_bits: transfer.bits,
                transfer,
                rate_bps: 0.0,
            },
        );
        self.reallocate();
    }

    /// Removes and returns the transfers whose last bit has left by `now`.
    pub(super) fn finish_due(&mut self, now: SimTime) -> Vec<Transfer> {
        self.advance(now);
        // Less than half a microsecond of work left counts as done (float noise).
        let done: Vec<u64> = self
            .active
            .iter()
            .filter(|(_, a)| a.remaining_bits <= a.rate_bps * 0.5e-6)
            .map(|(&id, _)| id)
            .collect();
        let finished = done
            .into_iter()
            .filter_map(|id| self.active.remove(&id))
            .map(|a| a.transfer)
            .collect();
        self.reallocate();
        finished
    }

    /// Drops the transfers of `link` (its client went offline) and re-times the others.
    /// Returns how many were dropped.
    pub(super) fn cancel(&mut self, now: SimTime, link: LinkId) -> usize {
        self.advance(now);
        let before = self.active.len();
        self.active.retain(|_, a| a.transfer.link != link);
        self.reallocate();
        before - self.active.len()
    }

    /// When the next transfer finishes at the current rates, or the rates next change,
    /// whichever comes first.
    pub(super) fn next_completion(&self) -> Option<SimTime> {
        let finish = self
            .active
            .values()
            .map(|a| self.last + SimTime::from_secs_ceil(a.remaining_bits / a.rate_bps))
            .min()?;
        let change = self
            .active
            .values()
            .filter_map(|a| a.transfer.cap.next_change_after(self.last))
            .chain(
                self.capacity
                    .as_ref()
                    .and_then(|c| c.next_change_after(self.last)),
            )
            .min();
        Some(change.map_or(finish, |c| c.min(finish)))
    }

    fn advance(&mut self, now: SimTime) {
        let dt = now.saturating_sub(self.last).as_secs_f64();
        if dt > 0.0 {
            for a in self.active.values_mut() {
                a.remaining_bits = (a.remaining_bits - a.rate_bps * dt).max(0.0);
            }
        }
        self.last = self.last.max(now);
    }

    /// Max-min fair rates: transfers capped below the fair share keep their cap, and the
    /// rest split what is left equally.
    fn reallocate(&mut self) {
        let now = self.last;
        let cap = |a: &Active| a.transfer.cap.at(now).max(MIN_BANDWIDTH);
        let Some(capacity) = self.capacity.as_ref().map(|c| c.at(now).max(MIN_BANDWIDTH)) else {
            for a in self.active.values_mut() {
                a.rate_bps = cap(a);
            }
            return;
        };
        let mut order: Vec<(f64, u64)> = self.active.iter().map(|(&id, a)| (cap(a), id)).collect();
        order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut left = capacity;
        let mut n = order.len();
        for (cap, id) in order {
            let share = left / n as f64;
            let rate = cap.min(share);
            self.active.get_mut(&id).expect("active transfer").rate_bps = rate;
            left -= rate;
            n -= 1;
        }
    }
}

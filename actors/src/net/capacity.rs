//! Processor sharing of one capacity among concurrent transfers.

use std::collections::BTreeMap;

use super::link::MIN_BANDWIDTH;
use super::{LinkId, Rate};
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

struct Active {
    transfer: Transfer,
    remaining_bits: f64,
    rate_bps: f64,
}

/// Processor sharing of one capacity among concurrent transfers (max-min fair with caps).
pub(crate) struct SharedCapacity {
    capacity: Option<Rate>,
    active: BTreeMap<u64, Active>,
    next_id: u64,
    last: SimTime,
}

impl SharedCapacity {
    /// A capacity in bits per second, or unlimited.
    pub(crate) fn new(capacity: Option<Rate>) -> Self {
        Self {
            capacity,
            active: BTreeMap::new(),
            next_id: 0,
            last: SimTime::ZERO,
        }
    }

    /// Adds a transfer at `now` and re-times the others.
    pub(crate) fn start(&mut self, now: SimTime, transfer: Transfer) {
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
    pub(crate) fn finish_due(&mut self, now: SimTime) -> Vec<Transfer> {
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
    pub(crate) fn cancel(&mut self, now: SimTime, link: LinkId) -> usize {
        self.advance(now);
        let before = self.active.len();
        self.active.retain(|_, a| a.transfer.link != link);
        self.reallocate();
        before - self.active.len()
    }

    /// When the next transfer finishes at the current rates, or the rates next change,
    /// whichever comes first.
    pub(crate) fn next_completion(&self) -> Option<SimTime> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_transfers_split_the_capacity() {
        // 10 Mbit/s shared by two 1 Mbit transfers with fast links: each gets 5 Mbit/s.
        let mut c = SharedCapacity::new(Some(Rate::Fixed(10e6)));
        for client in 0..2 {
            let link = LinkId {
                client,
                dir: Direction::Up,
            };
            let cap = Rate::Fixed(1e9);
            c.start(
                SimTime::ZERO,
                Transfer {
                    link,
                    attempt: 0,
                    bits: 1e6,
                    cap,
                    latency: SimTime::ZERO,
                },
            );
        }
        assert_eq!(c.next_completion(), Some(SimTime(200_000)));
    }
    use crate::net::{Direction, Steps};

    fn transfer(client: usize, bits: f64, cap: f64) -> Transfer {
        Transfer {
            link: LinkId {
                client,
                dir: Direction::Up,
            },
            attempt: 0,
            bits,
            cap: Rate::Fixed(cap),
            latency: SimTime::ZERO,
        }
    }

    fn drain(c: &mut SharedCapacity) -> Vec<(SimTime, usize)> {
        let mut done = vec![];
        while let Some(t) = c.next_completion() {
            for tr in c.finish_due(t) {
                done.push((t, tr.link.client));
            }
        }
        done
    }

    #[test]
    fn capped_transfer_frees_share_for_others() {
        // 30 Mbit/s shared; client 0 is capped at 5 Mbit/s, so 1 and 2 get 12.5 each.
        let mut c = SharedCapacity::new(Some(Rate::Fixed(30e6)));
        c.start(SimTime::ZERO, transfer(0, 5e6, 5e6));
        c.start(SimTime::ZERO, transfer(1, 12.5e6, 1e9));
        c.start(SimTime::ZERO, transfer(2, 25e6, 1e9));
        // t=1s: 0 and 1 finish. Then 2 has 12.5 Mbit left at 30 Mbit/s: 5/12 s more.
        assert_eq!(
            drain(&mut c),
            vec![
                (SimTime(1_000_000), 0),
                (SimTime(1_000_000), 1),
                (SimTime(1_416_667), 2)
            ]
        );
    }

    #[test]
    fn bandwidth_steps_retime_at_exactly_the_listed_times() {
        // 1 Mbit at 1 Mbit/s for 0.5 s, then 0.25 Mbit/s: 0.5 Mbit left takes 2 s more.
        let steps = Steps::new(vec![(SimTime::ZERO, 1e6), (SimTime(500_000), 0.25e6)]).unwrap();
        let mut c = SharedCapacity::new(None);
        let mut t = transfer(0, 1e6, 0.0);
        t.cap = Rate::Steps(steps);
        c.start(SimTime::ZERO, t);
        assert_eq!(c.next_completion(), Some(SimTime(500_000)));
        assert_eq!(drain(&mut c), vec![(SimTime(2_500_000), 0)]);
    }

    #[test]
    fn capacity_steps_reshare_running_transfers() {
        // 4 Mbit/s shared by two 2 Mbit transfers; at 0.5 s the capacity drops to 1 Mbit/s.
        // Each has 1 Mbit left at 0.5 Mbit/s: both finish at 2.5 s.
        let steps = Steps::new(vec![(SimTime::ZERO, 4e6), (SimTime(500_000), 1e6)]).unwrap();
        let mut c = SharedCapacity::new(Some(Rate::Steps(steps)));
        c.start(SimTime::ZERO, transfer(0, 2e6, 1e9));
        c.start(SimTime::ZERO, transfer(1, 2e6, 1e9));
        assert_eq!(
            drain(&mut c),
            vec![(SimTime(2_500_000), 0), (SimTime(2_500_000), 1)]
        );
    }

    #[test]
    fn late_arrival_retimes_the_running_transfer() {
        // 8 Mbit/s: A (8 Mbit) alone for 0.5 s, then shares with B (2 Mbit).
        let mut c = SharedCapacity::new(Some(Rate::Fixed(8e6)));
        c.start(SimTime::ZERO, transfer(0, 8e6, 1e9));
        c.start(SimTime(500_000), transfer(1, 2e6, 1e9));
        // B: 2 Mbit at 4 Mbit/s -> t = 1.0 s; A has 4 - 2 = 2 Mbit left, alone -> t = 1.25 s.
        assert_eq!(
            drain(&mut c),
            vec![(SimTime(1_000_000), 1), (SimTime(1_250_000), 0)]
        );
    }
}

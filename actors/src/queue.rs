//! The event queue: events ordered by simulated time, ties broken by priority, then by
//! insertion order.

use std::collections::VecDeque;

use crate::time::SimTime;

/// A priority queue of events keyed by `(time, sequence)`.
///
/// The sequence number is assigned at insertion, so events due at the same simulated time
/// come out in the order they were scheduled: the order is a function of the simulation
/// alone, never of the host. Events pushed with [`EventQueue::push_first`] come out before
/// every ordinary event due at the same time (availability changes take effect before
/// anything else happens at that instant).
///
/// It is a radix heap: since no event is ever scheduled before the last one taken out,
/// each event waits in the bucket of the highest bit in which its time differs from that
/// last time, and moves only to lower buckets as time advances. Events due now (most of
/// them) go straight to the back of bucket 0 and come out from its front: O(1) each, and
/// every step is a sequential scan, whatever the number of pending events. Each bucket
/// stays in sequence order, so ties come out in the order they were scheduled. The
/// events themselves stay put in reusable slots; buckets hold 16-byte keys.
pub(crate) struct EventQueue<E> {
    /// Bucket `b > 0` holds the events whose time differs from `last` first in bit
    /// `b - 1`; bucket 0 the ordinary events due at `last`, first in first out.
    buckets: Vec<VecDeque<Key>>,
    /// The first-class events due at `last`, first in first out.
    urgent: VecDeque<Key>,
    /// Which buckets hold events, one bit each.
    occupied: u128,
    /// The time of the last event taken out.
    last: SimTime,
    slots: Vec<Option<E>>,
    free: Vec<u32>,
    next_seq: u64,
}

/// An event's time, and its first-class flag (the top bit) and sequence number (the next
/// 39 bits) packed with the slot that holds it (low 24 bits).
type Key = (SimTime, u64);

/// Bits of a packed key that hold the slot.
const SLOT_BITS: u32 = 24;
const SLOT_MASK: u64 = (1 << SLOT_BITS) - 1;
/// The bit of a packed key that marks a first-class event.
const FIRST: u64 = 1 << 63;

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self {
            buckets: (0..=64).map(|_| VecDeque::new()).collect(),
            urgent: VecDeque::new(),
            occupied: 0,
            last: SimTime::ZERO,
            slots: Vec::new(),
            free: Vec::new(),
            next_seq: 0,
        }
    }
}

impl<E> EventQueue<E> {
    /// Events waiting.
    pub(crate) fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Schedules `event` at `at`, which must not be before the last event taken out.
    pub(crate) fn push(&mut self, at: SimTime, event: E) {
        self.insert(at, event, 0);
    }

    /// Schedules `event` at `at` ahead of every ordinary event due then (first-class
    /// events due together keep their own scheduling order).
    pub(crate) fn push_first(&mut self, at: SimTime, event: E) {
        self.insert(at, event, FIRST);
    }

    fn insert(&mut self, at: SimTime, event: E, class: u64) {
        assert!(at >= self.last, "an event scheduled in the past");
        let seq = self.next_seq;
        self.next_seq += 1;
        assert!(seq < 1 << (63 - SLOT_BITS), "fewer than 2^39 events");
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(event);
                slot
            }
            None => {
                self.slots.push(Some(event));
                let slot = self.slots.len() - 1;
                assert!((slot as u64) <= SLOT_MASK, "fewer than 2^24 pending events");
                slot as u32
            }
        };
        self.file((at, class | seq << SLOT_BITS | slot as u64));
    }

    /// Removes and returns the earliest event.
    pub(crate) fn pop(&mut self) -> Option<(SimTime, E)> {
        if self.urgent.is_empty() && self.buckets[0].is_empty() {
            self.occupied &= !1;
            // The lowest occupied bucket holds the next time: redistribute it from there.
            let b = self.occupied.trailing_zeros() as usize;
            if b > 64 {
                return None;
            }
            self.occupied &= !(1 << b);
            let moving = std::mem::take(&mut self.buckets[b]);
            self.last = moving
                .iter()
                .map(|k| k.0)
                .min()
                .expect("an occupied bucket");
            for key in &moving {
                self.file(*key);
            }
            // Keep the emptied bucket's buffer for later.
            self.buckets[b] = moving;
            self.buckets[b].clear();
        }
        let (at, key) = match self.urgent.pop_front() {
            Some(key) => key,
            None => self.buckets[0]
                .pop_front()
                .expect("bucket 0 holds the next event"),
        };
        let slot = (key & SLOT_MASK) as u32;
        self.free.push(slot);
        let event = self.slots[slot as usize].take();
        Some((at, event.expect("a queued key's slot holds its event")))
    }

    /// Puts `key` in its bucket, relative to `last`.
    fn file(&mut self, key: Key) {
        let differ = key.0.as_micros() ^ self.last.as_micros();
        let b = (u64::BITS - differ.leading_zeros()) as usize;
        if b == 0 && key.1 & FIRST != 0 {
            self.urgent.push_back(key);
            return;
        }
        self.buckets[b].push_back(key);
        self.occupied |= 1 << b;
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;

    #[test]
    fn equal_times_come_out_in_scheduling_order() {
        let mut q = EventQueue::default();
        q.push(SimTime(5), "late");
        q.push(SimTime(1), "first");
        q.push(SimTime(1), "second");
        assert_eq!(q.pop(), Some((SimTime(1), "first")));
        assert_eq!(q.pop(), Some((SimTime(1), "second")));
        assert_eq!(q.pop(), Some((SimTime(5), "late")));
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn first_class_events_come_out_before_ordinary_ones_due_then() {
        let mut q = EventQueue::default();
        q.push(SimTime(3), "ordinary, early");
        q.push_first(SimTime(3), "first");
        q.push(SimTime(1), "now");
        q.push_first(SimTime(3), "second first");
        assert_eq!(q.pop(), Some((SimTime(1), "now")));
        q.push(SimTime(1), "ordinary, now");
        q.push_first(SimTime(1), "first, now");
        assert_eq!(q.pop(), Some((SimTime(1), "first, now")));
        assert_eq!(q.pop(), Some((SimTime(1), "ordinary, now")));
        assert_eq!(q.pop(), Some((SimTime(3), "first")));
        assert_eq!(q.pop(), Some((SimTime(3), "second first")));
        assert_eq!(q.pop(), Some((SimTime(3), "ordinary, early")));
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn random_pushes_and_pops_come_out_as_a_stable_sort() {
        // Times from a small range, so that many tie; every popped event must be the
        // earliest, and among equals first-class before ordinary, then the first pushed.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut q = EventQueue::default();
        // (time, ordinary?, n): first-class events sort first among equal times.
        let mut plain: Vec<(SimTime, bool, u64)> = Vec::new();
        let mut now = SimTime::ZERO;
        for n in 0..20_000u64 {
            if rng.random::<f64>() < 0.55 {
                let at = now + SimTime(rng.random_range(0..50));
                let first = rng.random::<f64>() < 0.2;
                if first {
                    q.push_first(at, n);
                } else {
                    q.push(at, n);
                }
                plain.push((at, !first, n));
            } else if let Some((at, n)) = q.pop() {
                now = at;
                let least = *plain.iter().min().expect("as many as the queue holds");
                assert_eq!((at, n), (least.0, least.2));
                plain.retain(|&p| p != least);
            }
        }
    }
}

//! The event queue: events ordered by simulated time, ties broken by insertion order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::time::SimTime;

/// A priority queue of events keyed by `(time, sequence)`.
///
/// The sequence number is assigned at insertion, so events due at the same simulated time
/// come out in the order they were scheduled: the order is a function of the simulation
/// alone, never of the host.
///
/// The heap orders small `(time, sequence, slot)` keys; the events themselves stay put in
/// reusable slots, so a push or pop moves 24 bytes per heap level whatever an event's size.
pub(crate) struct EventQueue<E> {
    heap: BinaryHeap<Reverse<(SimTime, u64, u32)>>,
    slots: Vec<Option<E>>,
    free: Vec<u32>,
    next_seq: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self {
            heap: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            next_seq: 0,
        }
    }
}

impl<E> EventQueue<E> {
    /// Schedules `event` at `at`.
    pub(crate) fn push(&mut self, at: SimTime, event: E) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(event);
                slot
            }
            None => {
                self.slots.push(Some(event));
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 pending events")
            }
        };
        self.heap.push(Reverse((at, seq, slot)));
    }

    /// Removes and returns the earliest event.
    pub(crate) fn pop(&mut self) -> Option<(SimTime, E)> {
        let Reverse((at, _, slot)) = self.heap.pop()?;
        self.free.push(slot);
        let event = self.slots[slot as usize].take();
        Some((at, event.expect("a queued key's slot holds its event")))
    }
}

#[cfg(test)]
mod tests {
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
    }
}

//! A binary min-heap of items named by small integer ids, whose keys can be changed or
//! removed by id in O(log n): what a scheduler needs to keep many timers.

/// A min-heap of `(key, id)` with at most one entry per id.
///
/// Ties between equal keys are broken by the smaller id, so the order is a function of
/// the keys and ids alone.
#[derive(Clone, Debug)]
pub(crate) struct IndexedHeap<K> {
    heap: Vec<(K, u32)>,
    /// Each id's position in `heap`, `ABSENT` when it holds no entry.
    pos: Vec<u32>,
}

const ABSENT: u32 = u32::MAX;

impl<K> Default for IndexedHeap<K> {
    fn default() -> Self {
        Self {
            heap: Vec::new(),
            pos: Vec::new(),
        }
    }
}

impl<K: PartialOrd + Copy> IndexedHeap<K> {
    /// Entries in the heap.
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether `id` has an entry.
    #[cfg(test)]
    fn contains(&self, id: u32) -> bool {
        self.pos.get(id as usize).is_some_and(|&p| p != ABSENT)
    }

    /// The least entry.
    pub(crate) fn peek(&self) -> Option<(K, u32)> {
        self.heap.first().copied()
    }

    /// Sets `id`'s key, adding it if absent.
    pub(crate) fn set(&mut self, id: u32, key: K) {
        if self.pos.len() <= id as usize {
            self.pos.resize(id as usize + 1, ABSENT);
        }
        match self.pos[id as usize] {
            ABSENT => {
                self.heap.push((key, id));
                let at = self.heap.len() - 1;
                self.pos[id as usize] = at as u32;
                self.up(at);
            }
            at => {
                self.heap[at as usize].0 = key;
                let at = self.up(at as usize);
                self.down(at);
            }
        }
    }

    /// Removes `id`'s entry, if any; returns its key.
    pub(crate) fn remove(&mut self, id: u32) -> Option<K> {
        let at = *self.pos.get(id as usize)?;
        if at == ABSENT {
            return None;
        }
        let at = at as usize;
        let last = self.heap.len() - 1;
        self.swap(at, last);
        let (key, _) = self.heap.pop().expect("a present entry");
        self.pos[id as usize] = ABSENT;
        if at < self.heap.len() {
            let at = self.up(at);
            self.down(at);
        }
        Some(key)
    }

    /// Removes and returns the least entry.
    #[cfg(test)]
    fn pop(&mut self) -> Option<(K, u32)> {
        let (key, id) = self.peek()?;
        self.remove(id);
        Some((key, id))
    }

    fn less(&self, a: usize, b: usize) -> bool {
        let ((ka, ia), (kb, ib)) = (&self.heap[a], &self.heap[b]);
        match ka.partial_cmp(kb) {
            Some(std::cmp::Ordering::Less) => true,
            Some(std::cmp::Ordering::Equal) => ia < ib,
            _ => false,
        }
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.pos[self.heap[a].1 as usize] = a as u32;
        self.pos[self.heap[b].1 as usize] = b as u32;
    }

    /// Moves the entry at `at` up to its place; returns where it ends.
    fn up(&mut self, mut at: usize) -> usize {
        while at > 0 {
            let parent = (at - 1) / 2;
            if !self.less(at, parent) {
                break;
            }
            self.swap(at, parent);
            at = parent;
        }
        at
    }

    /// Moves the entry at `at` down to its place.
    fn down(&mut self, mut at: usize) {
        loop {
            let (l, r) = (2 * at + 1, 2 * at + 2);
            let mut least = at;
            if l < self.heap.len() && self.less(l, least) {
                least = l;
            }
            if r < self.heap.len() && self.less(r, least) {
                least = r;
            }
            if least == at {
                return;
            }
            self.swap(at, least);
            at = least;
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;

    #[test]
    fn keys_change_and_leave_by_id() {
        let mut h = IndexedHeap::default();
        h.set(3, 5.0);
        h.set(1, 2.0);
        h.set(7, 9.0);
        assert_eq!(h.peek(), Some((2.0, 1)));
        h.set(1, 10.0);
        assert_eq!(h.peek(), Some((5.0, 3)));
        assert_eq!(h.remove(3), Some(5.0));
        assert_eq!(h.remove(3), None);
        assert!(!h.contains(3) && h.contains(7));
        assert_eq!(h.pop(), Some((9.0, 7)));
        assert_eq!(h.pop(), Some((10.0, 1)));
        assert_eq!(h.pop(), None);
    }

    #[test]
    fn equal_keys_come_out_by_id_and_every_order_matches_a_sort() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut h = IndexedHeap::default();
        let mut plain: Vec<Option<u32>> = vec![None; 200];
        for _ in 0..5_000 {
            let id = rng.random_range(0..200u32);
            if rng.random::<f64>() < 0.3 {
                assert_eq!(h.remove(id), plain[id as usize].take());
            } else {
                let key = rng.random_range(0..50u32);
                h.set(id, key);
                plain[id as usize] = Some(key);
            }
            let least = plain
                .iter()
                .enumerate()
                .filter_map(|(i, k)| k.map(|k| (k, i as u32)))
                .min();
            assert_eq!(h.peek(), least);
            assert_eq!(h.len(), plain.iter().flatten().count());
        }
    }
}

//! The idle clients an asynchronous server picks from: a set of ids with insertion,
//! removal and the k-th smallest member, each in O(log n).

use crate::learner::ClientId;

/// A set of client ids with O(log n) insertion, removal and `k`-th smallest member.
///
/// Membership is a bitset of 64-client words; a Fenwick tree counts members per word.
/// The tree has one entry per 64 clients, so a million clients' tree fits in a core's
/// cache, and an operation touches one word of the bitset outside it.
#[derive(Clone, Debug)]
pub(crate) struct IdleSet {
    words: Vec<u64>,
    /// Fenwick counts of members, by word (1-based).
    tree: Vec<u32>,
    len: usize,
}

impl IdleSet {
    /// An empty set for ids `0..clients`.
    pub(crate) fn new(clients: usize) -> Self {
        let words = clients.div_ceil(64);
        Self {
            words: vec![0; words],
            tree: vec![0; words + 1],
            len: 0,
        }
    }

    /// Members.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Adds `c` (no-op if present).
    pub(crate) fn insert(&mut self, c: ClientId) {
        let (w, bit) = (c / 64, 1u64 << (c % 64));
        if self.words[w] & bit == 0 {
            self.words[w] |= bit;
            self.len += 1;
            self.update(w, |n| n + 1);
        }
    }

    /// Removes `c` (no-op if absent).
    pub(crate) fn remove(&mut self, c: ClientId) {
        let (w, bit) = (c / 64, 1u64 << (c % 64));
        if self.words[w] & bit != 0 {
            self.words[w] &= !bit;
            self.len -= 1;
            self.update(w, |n| n - 1);
        }
    }

    fn update(&mut self, word: usize, f: impl Fn(u32) -> u32) {
        let mut i = word + 1;
        while i < self.tree.len() {
            self.tree[i] = f(self.tree[i]);
            i += i & i.wrapping_neg();
        }
    }

    /// The `k`-th smallest member (from 0); `k < len`.
    pub(crate) fn nth(&self, k: usize) -> ClientId {
        // The word holding it: the last position whose prefix count is at most k.
        let (mut pos, mut left) = (0, k);
        let mut step = (self.tree.len() - 1).next_power_of_two();
        while step > 0 {
            let next = pos + step;
            if next < self.tree.len() && (self.tree[next] as usize) <= left {
                pos = next;
                left -= self.tree[next] as usize;
            }
            step /= 2;
        }
        // Then its `left`-th set bit.
        let mut word = self.words[pos];
        for _ in 0..left {
            word &= word - 1;
        }
        pos * 64 + word.trailing_zeros() as usize
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::IdleSet;

    #[test]
    fn every_rank_is_right_across_many_words() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let mut set = IdleSet::new(1_000);
        let mut plain = vec![false; 1_000];
        for _ in 0..5_000 {
            let c = rng.random_range(0..1_000);
            if rng.random::<bool>() {
                set.insert(c);
                plain[c] = true;
            } else {
                set.remove(c);
                plain[c] = false;
            }
        }
        let members: Vec<usize> = (0..1_000).filter(|&c| plain[c]).collect();
        assert_eq!(set.len(), members.len());
        for (k, &c) in members.iter().enumerate() {
            assert_eq!(set.nth(k), c, "k = {k}");
        }
    }

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

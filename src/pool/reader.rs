//! The images as the model reads them: the frozen prefix's cached activations where they
//! are valid, the pixels elsewhere.

use std::sync::Arc;

use burn::tensor::Device;

use super::Pool;
use super::job::JobKind;
use crate::data::{Dataset, Slot, TaskData};
use crate::model::{Depth, FillCount, LocalData, Objective, Prefix, Samples, Vit};

/// The frozen prefix's activations of the train and test images, filled as jobs need them.
pub(crate) struct PrefixCache {
    train: Prefix,
    test: Prefix,
    count: Arc<FillCount>,
}

impl PrefixCache {
    /// A cache of `model`'s activations at `depth` of as many images as `budget` bytes
    /// hold, the training images first, then the test images; `None` for no budget.
    /// Nothing is computed yet. The clients' local test splits, which every evaluation
    /// reads, fill chunks of their own, so that a run that trains nothing computes
    /// nothing of the images clients train on.
    pub(super) fn new(
        model: &Vit,
        depth: Depth,
        data: &TaskData,
        patch: usize,
        budget: u64,
    ) -> Option<Self> {
        if budget == 0 {
            return None;
        }
        let count = Arc::new(FillCount::default());
        let train = Prefix::lazy(
            model,
            depth,
            &data.train,
            patch,
            budget,
            &local_tests_first(data),
            count.clone(),
        );
        let left = budget.saturating_sub(train.capacity_bytes());
        let all = [(0..data.test.len() as u32).collect()];
        let test = Prefix::lazy(model, depth, &data.test, patch, left, &all, count.clone());
        Some(Self { train, test, count })
    }

    fn of(&self, set: Set) -> &Prefix {
        match set {
            Set::Train => &self.train,
            Set::Test => &self.test,
        }
    }

    /// How far the cache has been filled, for the progress display.
    pub(crate) fn count(&self) -> Arc<FillCount> {
        self.count.clone()
    }

    /// Samples held and samples computed, of the training and the test images.
    pub(crate) fn usage(&self) -> CacheUse {
        CacheUse {
            train_held: self.train.held(),
            train_filled: self.train.filled(),
            test_held: self.test.held(),
            test_filled: self.test.filled(),
        }
    }
}

/// The training images in two groups: the clients' local test splits, then the others,
/// each ascending.
fn local_tests_first(data: &TaskData) -> [Vec<u32>; 2] {
    let mut tested = vec![false; data.train.len()];
    for slot in data.slots.iter().flatten() {
        for &i in &slot.test {
            tested[i as usize] = true;
        }
    }
    let (mut tests, mut rest) = (Vec::new(), Vec::new());
    for (i, t) in (0..).zip(tested) {
        if t { tests.push(i) } else { rest.push(i) }
    }
    [tests, rest]
}

/// What a run's frozen-prefix cache held and filled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheUse {
    /// Training images the budget gives the cache.
    pub train_held: usize,
    /// Training images whose activations were computed.
    pub train_filled: usize,
    /// Test images the budget gives the cache.
    pub test_held: usize,
    /// Test images whose activations were computed.
    pub test_filled: usize,
}

/// The training or the test images.
#[derive(Clone, Copy, Debug)]
pub(super) enum Set {
    Train,
    Test,
}

/// The training and test images as the model reads them, through the cache where valid.
#[derive(Clone)]
pub(super) struct Reader {
    pub(super) data: Arc<TaskData>,
    pub(super) cache: Option<Arc<PrefixCache>>,
    pub(super) patch: usize,
}

impl Reader {
    /// The training images.
    pub(super) fn train(&self) -> Samples<'_> {
        Samples {
            data: &self.data.train,
            patch: self.patch,
            prefix: self.cache.as_ref().map(|c| &c.train),
        }
    }

    /// The central test images.
    pub(super) fn test(&self) -> Samples<'_> {
        Samples {
            data: &self.data.test,
            patch: self.patch,
            prefix: self.cache.as_ref().map(|c| &c.test),
        }
    }

    /// Queues on `pool`, as `kind` tasks ahead of the job that will read them, the fills
    /// of the cache's chunks holding samples `indices` of `set` that nobody has asked for
    /// yet, so that the workers idle meanwhile share them.
    pub(super) fn prefetch(&self, pool: &Pool, kind: JobKind, set: Set, indices: &[u32]) {
        let Some(cache) = &self.cache else {
            return;
        };
        for c in cache.of(set).request(indices) {
            let reader = self.clone();
            pool.fill(
                kind,
                Box::new(move |w| {
                    if let Some(cache) = &reader.cache {
                        let data = reader.dataset(set);
                        cache.of(set).fill_chunk(c, &w.model, data, reader.patch);
                    }
                }),
            );
        }
    }

    /// Queues the cache fills client `client`'s training images need, ahead of its job.
    pub(super) fn prefetch_training(&self, pool: &Pool, client: usize) {
        for slot in &self.data.slots[client] {
            self.prefetch(pool, JobKind::Train, Set::Train, &slot.train);
        }
    }

    fn dataset(&self, set: Set) -> &Dataset {
        match set {
            Set::Train => &self.data.train,
            Set::Test => &self.data.test,
        }
    }

    /// Slot `s`'s training data in a job seeded `seed`.
    pub(super) fn slot_data<'a>(
        &'a self,
        slot: &'a Slot,
        s: usize,
        seed: u64,
        device: &'a Device,
        objective: &'a Objective,
    ) -> LocalData<'a> {
        LocalData {
            samples: self.train(),
            indices: &slot.train,
            seed: slot_seed(seed, s),
            device,
            objective,
        }
    }
}

/// The shuffling seed of slot `slot` in a job seeded `seed` (slot 0 keeps the job's).
pub(super) fn slot_seed(seed: u64, slot: usize) -> u64 {
    seed ^ (slot as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

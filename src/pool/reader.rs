//! The images as the model reads them: the frozen prefix's cached activations where they
//! are valid, the pixels elsewhere.

use std::sync::Arc;

use burn::tensor::Device;

use crate::data::{Slot, TaskData};
use crate::model::{Depth, LocalData, Objective, Prefix, Samples, Vit};

/// The frozen prefix's activations of the train and test images.
pub(super) struct PrefixCache {
    train: Prefix,
    test: Prefix,
}

impl PrefixCache {
    /// Fills `budget` bytes with `model`'s activations at `depth` of the training images
    /// first, then the test images; `None` for no budget.
    pub(super) fn fill(
        model: &Vit,
        depth: Depth,
        data: &TaskData,
        patch: usize,
        budget: u64,
    ) -> Option<Self> {
        if budget == 0 {
            return None;
        }
        let train = Prefix::fill(model, depth, &data.train, patch, budget);
        let left = budget.saturating_sub(train.bytes());
        let test = Prefix::fill(model, depth, &data.test, patch, left);
        Some(Self { train, test })
    }
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

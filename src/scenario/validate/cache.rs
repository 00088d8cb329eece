//! What the frozen-prefix cache will hold and what filling it costs, from the scenario
//! and the data files' headers alone, as `flotilla validate` tells it.

use crate::model::{Depth, SampleCost};
use crate::scenario::Loaded;

/// The frozen-prefix cache of a run: how many images its budget holds (training images
/// first, then test images, as the pool lays it out), their bytes, and the forward FLOPs
/// that computing all of their rows counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheSize {
    /// Training images held.
    pub train: u64,
    /// Test images held.
    pub test: u64,
    /// Bytes of all their rows.
    pub bytes: u64,
    /// FLOPs of the frozen prefix over all of them.
    pub flops: u64,
}

impl Loaded {
    /// This run's frozen-prefix cache; `None` when nothing is frozen before the first
    /// trainable layer, the budget is zero, or the data's headers cannot be read.
    pub fn prefix_cache(&self) -> Option<CacheSize> {
        let s = &self.scenario;
        let budget = s.pool.cache.value() as u64;
        let adaptation = self.adaptation();
        let depth = adaptation.frozen_prefix()?;
        if budget == 0 {
            return None;
        }
        let extent = s.data.source.extent(&self.base, s.data.image)?;
        let vit = self
            .backbone(extent.side, extent.channels, 256)
            .ok()?
            .config;
        let row = 4 * match depth {
            Depth::Embedding => (vit.tokens() * vit.dim) as u64,
            Depth::Features => vit.features() as u64,
        };
        let train = (extent.train as u64).min(budget / row);
        let test = (extent.test as u64).min((budget - train * row) / row);
        let per_image = SampleCost::count(&vit, &adaptation).prefix;
        Some(CacheSize {
            train,
            test,
            bytes: (train + test) * row,
            flops: (train + test).saturating_mul(per_image),
        })
    }
}

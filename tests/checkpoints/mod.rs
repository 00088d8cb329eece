//! The parity fixtures of tests/fixtures/pretrained/ as the tests name them.

use std::path::{Path, PathBuf};

use flotilla::model::{Activation, CheckpointLayout, Normalization, Pretrained};

/// The path of fixture `name`.
pub(crate) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pretrained")
        .join(name)
}

/// Fixture `file` of `layout`, with the settings its generator used.
pub(crate) fn pretrained(file: &str, layout: CheckpointLayout) -> Pretrained {
    Pretrained {
        file: fixture(file),
        layout,
        heads: 3,
        activation: match layout {
            CheckpointLayout::Timm => Activation::Gelu,
            CheckpointLayout::OpenClip => Activation::QuickGelu,
        },
        epsilon: match layout {
            CheckpointLayout::Timm => 1e-6,
            CheckpointLayout::OpenClip => 1e-5,
        },
        normalization: Normalization::of(layout),
    }
}

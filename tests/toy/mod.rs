//! A tiny ViT and toy images for model-level tests.

use flotilla::data::{Dataset, Pixels};
use flotilla::model::{VitConfig, VitStyle};

/// A 2-block ViT of width 16 on 8x8 grey images of 3 classes.
pub(crate) fn tiny() -> VitConfig {
    VitConfig {
        image: 8,
        channels: 1,
        patch: 4,
        dim: 16,
        depth: 2,
        heads: 2,
        mlp: 32,
        classes: 3,
        style: VitStyle::default(),
    }
}

/// `n` deterministic 8x8 images, labelled 0, 1, 2, 0, ...
pub(crate) fn toy_data(n: usize) -> Dataset {
    Dataset {
        pixels: Pixels::Floats(
            (0..n * 64)
                .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
                .collect(),
        ),
        labels: (0..n).map(|i| (i % 3) as u8).collect(),
        groups: vec![0; n],
        side: 8,
        channels: 1,
        classes: 3,
    }
}

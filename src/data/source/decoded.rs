//! Compressed images (PNG, JPEG) decoded, then stored in one shape: shared by the formats
//! that hold image files (folders) or image bytes (Parquet).
//!
//! With `data.image` the shape is known up front and every image goes into the store as
//! it is decoded; without it the first image gives the size and every image must be grey
//! for a grey store, so images wait (in their own channels) until all are in.

use std::path::PathBuf;

use super::{ImageShape, Images};
use crate::data::DataError;

/// One decoded image, its label and group, and where it came from (for messages).
pub(super) struct Decoded {
    /// The file, or the file and row, it came from.
    origin: PathBuf,
    /// Grey or RGB bytes, row-major.
    pixels: Vec<u8>,
    /// 1 (grey) or 3 (RGB).
    channels: usize,
    width: usize,
    height: usize,
    label: u8,
    group: u32,
}

/// Decodes `bytes` (PNG or JPEG) from `origin`: grey images stay grey, others become RGB.
pub(super) fn decode(
    bytes: &[u8],
    origin: PathBuf,
    label: u8,
    group: u32,
) -> Result<Decoded, DataError> {
    let img = image::load_from_memory(bytes).map_err(|source| DataError::Image {
        path: origin.clone(),
        source,
    })?;
    let (width, height) = (img.width() as usize, img.height() as usize);
    let (pixels, channels) = if img.color().channel_count() < 3 {
        (img.into_luma8().into_raw(), 1)
    } else {
        (img.into_rgb8().into_raw(), 3)
    };
    Ok(Decoded {
        origin,
        pixels,
        channels,
        width,
        height,
        label,
        group,
    })
}

/// Which split an image goes to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Split {
    Train,
    Test,
}

/// The train and test stores being filled.
pub(super) struct Store {
    shape: Option<ImageShape>,
    train: Images,
    test: Images,
    /// Images waiting for the shape (without `data.image`).
    waiting: Vec<(Split, Decoded)>,
}

impl Store {
    /// An empty store; images take `shape` when one is given.
    pub(super) fn new(shape: Option<ImageShape>) -> Store {
        let (side, channels) = shape.map_or((0, 1), |s| (s.side, s.channels));
        Store {
            shape,
            train: Images::new(side, channels),
            test: Images::new(side, channels),
            waiting: Vec::new(),
        }
    }

    /// Adds one decoded image to `split`.
    pub(super) fn add(&mut self, split: Split, d: Decoded) -> Result<(), DataError> {
        if self.shape.is_some() {
            self.put(split, d);
        } else {
            self.waiting.push((split, d));
        }
        Ok(())
    }

    /// The train and test images; without a shape, in the first image's own size (it
    /// must be square, and every other image that size), grey when every image is.
    pub(super) fn finish(mut self) -> Result<(Images, Images), DataError> {
        let waiting = std::mem::take(&mut self.waiting);
        if let Some((_, first)) = waiting.first() {
            if first.width != first.height {
                return Err(DataError::NotSquare {
                    path: first.origin.clone(),
                    width: first.width,
                    height: first.height,
                });
            }
            let grey = waiting.iter().all(|(_, d)| d.channels == 1);
            let (side, channels) = (first.width, if grey { 1 } else { 3 });
            self.train = Images::new(side, channels);
            self.test = Images::new(side, channels);
            for (split, d) in waiting {
                if (d.width, d.height) != (side, side) {
                    return Err(DataError::Malformed {
                        path: d.origin,
                        at: "size".into(),
                        problem: format!(
                            "{}x{} among {side}x{side} images; give data.image to resize \
                             them to one size",
                            d.width, d.height
                        ),
                    });
                }
                self.put(split, d);
            }
        }
        Ok((self.train, self.test))
    }

    fn put(&mut self, split: Split, d: Decoded) {
        let set = match split {
            Split::Train => &mut self.train,
            Split::Test => &mut self.test,
        };
        set.push_resized(&d.pixels, (d.width, d.height, d.channels), d.label, d.group);
    }
}

//! Compressed images (PNG, JPEG) decoded, then stored in one shape: shared by the formats
//! that hold image files (folders) or image bytes (Parquet).

use std::path::PathBuf;

use super::{ImageShape, Images};
use crate::data::DataError;

/// One decoded image, its label and group, and where it came from (for messages).
pub(super) struct Decoded {
    /// The file, or the file and row, it came from.
    pub(super) origin: PathBuf,
    /// RGB bytes, row-major.
    pub(super) rgb: Vec<u8>,
    /// Pixels per row.
    pub(super) width: usize,
    /// Rows.
    pub(super) height: usize,
    /// Whether the image was grey (one channel, or grey and alpha).
    pub(super) grey: bool,
    /// Its label.
    pub(super) label: u8,
    /// Its group.
    pub(super) group: u32,
}

/// Decodes `bytes` (PNG or JPEG) from `origin` to RGB.
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
    let grey = img.color().channel_count() < 3;
    let rgb = img.to_rgb8();
    Ok(Decoded {
        width: rgb.width() as usize,
        height: rgb.height() as usize,
        rgb: rgb.into_raw(),
        grey,
        label,
        group,
        origin,
    })
}

/// The train and test images in `shape`, or without one in the first image's own size
/// (it must be square, and every other image that size), grey when every image is.
pub(super) fn store(
    train: Vec<Decoded>,
    test: Vec<Decoded>,
    shape: Option<ImageShape>,
) -> Result<(Images, Images), DataError> {
    let (side, channels) = match (shape, train.iter().chain(&test).next()) {
        (Some(s), _) => (s.side, s.channels),
        (None, None) => (0, 1),
        (None, Some(d)) => {
            if d.width != d.height {
                return Err(DataError::NotSquare {
                    path: d.origin.clone(),
                    width: d.width,
                    height: d.height,
                });
            }
            let grey = train.iter().chain(&test).all(|d| d.grey);
            (d.width, if grey { 1 } else { 3 })
        }
    };
    let one = |set: Vec<Decoded>| {
        let mut out = Images::new(side, channels);
        for d in set {
            if shape.is_none() && (d.width, d.height) != (side, side) {
                return Err(DataError::Malformed {
                    path: d.origin,
                    at: "size".into(),
                    problem: format!(
                        "{}x{} among {side}x{side} images; give data.image to resize them \
                         to one size",
                        d.width, d.height
                    ),
                });
            }
            out.push_resized(&d.rgb, (d.width, d.height, 3), d.label, d.group);
        }
        Ok(out)
    };
    Ok((one(train)?, one(test)?))
}

//! Image data sets, tasks and domain shifts, client partitions and local splits.

mod domain;
mod partition;
mod pixels;
mod source;
mod tasks;

pub use domain::Domain;
pub use partition::{Groups, Partition, PartitionError, PartitionSpec, partition};
pub use pixels::Pixels;
pub use source::idx::{IdxError, IdxFormatError, read_idx};
pub use source::{CifarLabels, DataSource, ImageShape, Images, NamedSource, SourceImages};
pub use tasks::{Layout, LayoutError, Slot, TaskData, TaskSpec};

pub(crate) use domain::shift_domain;
pub(crate) use source::{idx_file, load_idx_dir};
pub(crate) use tasks::slot_tasks;

use std::path::PathBuf;

/// The mean every pixel value (in `[0, 1]`) is normalised with, MNIST's: `(v - MEAN) / STD`.
/// A pretrained backbone folds its own normalisation into its patch embedding instead.
pub const MEAN: f32 = 0.1307;
/// The standard deviation every pixel value is normalised with, MNIST's.
pub const STD: f32 = 0.3081;

/// Labelled square images, normalised, held in memory.
pub struct Dataset {
    /// `len * side * side * channels` pixels, normalised as they are read.
    pub pixels: Pixels,
    /// One label per image.
    pub labels: Vec<u8>,
    /// The group (writer, user or domain) of each image: an index into
    /// [`DataSplit::groups`].
    pub groups: Vec<u32>,
    /// Images are `side` x `side` pixels.
    pub side: usize,
    /// Channels per pixel (1 for grey, 3 for RGB).
    pub channels: usize,
    /// Labels are `0..classes`.
    pub classes: usize,
}

/// The train and test sets of one source.
pub struct DataSplit {
    /// The training images.
    pub train: Dataset,
    /// The central test images.
    pub test: Dataset,
    /// The names of the groups (writers, users or domains) images belong to.
    pub groups: Vec<String>,
}

/// Why data could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// An IDX file cannot be read.
    #[error(transparent)]
    Idx(#[from] IdxError),
    /// The files hold tensors of the wrong shapes.
    #[error("{split}: {problem}")]
    Shape {
        /// `train` or `t10k`.
        split: String,
        /// What does not fit.
        problem: String,
    },
    /// The training and test files do not fit together.
    #[error("{0}")]
    Mismatch(String),
    /// A file cannot be read.
    #[error("{path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
    /// A split holds no image.
    #[error("the {split} split holds no image: there is nothing to learn from")]
    Empty {
        /// `training` or `test`.
        split: &'static str,
    },
    /// Images are not square and no `data.image` shape resizes them.
    #[error("{path}: images are {width}x{height}; give data.image to resize them to a square")]
    NotSquare {
        /// A file holding such an image.
        path: PathBuf,
        /// Pixels per row.
        width: usize,
        /// Rows.
        height: usize,
    },
    /// One record, line, user or image inside a file is malformed.
    #[error("{path}: {at}: {problem}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Where in it: `record 12`, `line 3`, `user "f0001_23"`.
        at: String,
        /// What is wrong.
        problem: String,
    },
    /// An image file cannot be decoded.
    #[error("{path}: not a readable PNG or JPEG image")]
    Image {
        /// The file.
        path: PathBuf,
        /// What the decoder said.
        source: image::ImageError,
    },
    /// A Parquet file cannot be read.
    #[error("{path}: not a readable Parquet file")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// What the reader said.
        source: parquet::errors::ParquetError,
    },
    /// A JSON file does not parse as the format.
    #[error("{path}")]
    Json {
        /// The file.
        path: PathBuf,
        /// Where and what the parser found.
        source: serde_json::Error,
    },
}

impl Dataset {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the set holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The images `indices`, in that order, as a data set of their own.
    pub fn subset(&self, indices: &[u32]) -> Dataset {
        let len = self.image_len();
        Dataset {
            pixels: self.pixels.gather(indices, len),
            labels: indices.iter().map(|&i| self.labels[i as usize]).collect(),
            groups: indices.iter().map(|&i| self.groups[i as usize]).collect(),
            side: self.side,
            channels: self.channels,
            classes: self.classes,
        }
    }

    /// `parts` one after another; they share the first one's shape and classes.
    pub fn concat(parts: Vec<Dataset>) -> Dataset {
        let (side, channels, classes) = parts
            .first()
            .map_or((0, 1, 0), |p| (p.side, p.channels, p.classes));
        let mut pixels = Vec::new();
        let mut labels = Vec::new();
        let mut groups = Vec::new();
        for p in parts {
            pixels.push(p.pixels);
            labels.extend(p.labels);
            groups.extend(p.groups);
        }
        Dataset {
            pixels: Pixels::concat(pixels),
            labels,
            groups,
            side,
            channels,
            classes,
        }
    }

    fn image_len(&self) -> usize {
        self.side * self.side * self.channels
    }

    /// Cuts the images `indices` into `patch` x `patch` patches, row-major:
    /// `[len, tokens, patch * patch * channels]` values and the labels.
    pub fn patches(&self, indices: &[u32], patch: usize) -> (Vec<f32>, Vec<i64>) {
        let (side, ch) = (self.side, self.channels);
        let per_row = side / patch;
        let mut out = Vec::with_capacity(indices.len() * per_row * per_row * patch * patch * ch);
        let mut labels = Vec::with_capacity(indices.len());
        let len = self.image_len();
        for &i in indices {
            let start = i as usize * len;
            for py in 0..per_row {
                for px in 0..per_row {
                    for dy in 0..patch {
                        // A patch's row is `patch` pixels side by side in the image.
                        let row = start + ((py * patch + dy) * side + px * patch) * ch;
                        self.pixels
                            .extend_normalised(&mut out, row..row + patch * ch);
                    }
                }
            }
            labels.push(self.labels[i as usize] as i64);
        }
        (out, labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_are_row_major_blocks() {
        // One 4x4 image with pixel value = index, 2x2 patches.
        let ds = Dataset {
            pixels: Pixels::Floats((0..16).map(|v| v as f32).collect()),
            labels: vec![3],
            groups: vec![0],
            side: 4,
            channels: 1,
            classes: 4,
        };
        let (p, l) = ds.patches(&[0], 2);
        assert_eq!(l, vec![3]);
        assert_eq!(
            p,
            vec![
                0., 1., 4., 5., 2., 3., 6., 7., 8., 9., 12., 13., 10., 11., 14., 15.
            ]
        );
    }
}

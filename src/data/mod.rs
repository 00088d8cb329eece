//! Image data sets, tasks and domain shifts, client partitions and local splits.

mod domain;
mod idx;
mod partition;
mod tasks;

pub use domain::{Domain, shift_domain};
pub use idx::{IdxError, IdxFormatError, parse_idx, read_idx, read_idx_dims};
pub use partition::{Partition, PartitionError, PartitionSpec, partition};
pub use tasks::{Layout, LayoutError, Slot, TaskData, TaskSpec, slot_tasks};

use std::path::Path;

/// MNIST's pixel mean and standard deviation, for normalisation.
const MEAN: f32 = 0.1307;
const STD: f32 = 0.3081;

/// Labelled square images, normalised, held in memory.
pub struct Dataset {
    /// `len * side * side * channels` normalised pixels.
    pub pixels: Vec<f32>,
    /// One label per image.
    pub labels: Vec<u8>,
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
            pixels: indices
                .iter()
                .flat_map(|&i| &self.pixels[i as usize * len..(i as usize + 1) * len])
                .copied()
                .collect(),
            labels: indices.iter().map(|&i| self.labels[i as usize]).collect(),
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
        for p in parts {
            pixels.extend(p.pixels);
            labels.extend(p.labels);
        }
        Dataset {
            pixels,
            labels,
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
        for &i in indices {
            let img =
                &self.pixels[i as usize * self.image_len()..(i as usize + 1) * self.image_len()];
            for py in 0..per_row {
                for px in 0..per_row {
                    for dy in 0..patch {
                        let row = (py * patch + dy) * side + px * patch;
                        for x in row..row + patch {
                            out.extend_from_slice(&img[x * ch..(x + 1) * ch]);
                        }
                    }
                }
            }
            labels.push(self.labels[i as usize] as i64);
        }
        (out, labels)
    }
}

/// Loads an IDX data set directory: `train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`,
/// `t10k-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]`.
pub fn load_idx_dir(dir: &Path) -> Result<DataSplit, DataError> {
    let train = load_pair(dir, "train")?;
    let test = load_pair(dir, "t10k")?;
    if train.side != test.side {
        return Err(DataError::Mismatch(format!(
            "training images are {0}x{0} but test images {1}x{1}",
            train.side, test.side
        )));
    }
    // The model has one output per training class: a test label beyond them has no
    // output to score.
    if test.classes > train.classes {
        return Err(DataError::Mismatch(format!(
            "test labels go up to {} but training labels only to {}",
            test.classes - 1,
            train.classes.saturating_sub(1)
        )));
    }
    Ok(DataSplit { train, test })
}

/// The path of `name` in `dir`, preferring the gzip-compressed file.
pub fn idx_file(dir: &Path, name: &str) -> std::path::PathBuf {
    let gz = dir.join(format!("{name}.gz"));
    if gz.exists() { gz } else { dir.join(name) }
}

fn load_pair(dir: &Path, prefix: &str) -> Result<Dataset, DataError> {
    let images = read_idx(&idx_file(dir, &format!("{prefix}-images-idx3-ubyte")))?;
    let labels = read_idx(&idx_file(dir, &format!("{prefix}-labels-idx1-ubyte")))?;
    let (n, h, w) = match images.dims[..] {
        [n, h, w] => (n, h, w),
        _ => {
            return Err(DataError::Shape {
                split: prefix.to_string(),
                problem: format!("images have dims {:?}, expected 3", images.dims),
            });
        }
    };
    if h != w {
        return Err(DataError::Shape {
            split: prefix.to_string(),
            problem: format!("images are {h}x{w}, expected square"),
        });
    }
    if n == 0 || h == 0 {
        return Err(DataError::Shape {
            split: prefix.to_string(),
            problem: format!("{n} images of {h}x{w}: there is nothing to learn from"),
        });
    }
    if labels.dims != [n] {
        return Err(DataError::Shape {
            split: prefix.to_string(),
            problem: format!("{n} images but labels have dims {:?}", labels.dims),
        });
    }
    let classes = labels
        .data
        .iter()
        .copied()
        .max()
        .map_or(0, |m| m as usize + 1);
    Ok(Dataset {
        pixels: images
            .data
            .iter()
            .map(|&p| (p as f32 / 255.0 - MEAN) / STD)
            .collect(),
        labels: labels.data,
        side: h,
        channels: 1,
        classes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_are_row_major_blocks() {
        // One 4x4 image with pixel value = index, 2x2 patches.
        let ds = Dataset {
            pixels: (0..16).map(|v| v as f32).collect(),
            labels: vec![3],
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

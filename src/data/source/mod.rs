//! Where images come from: one loader per on-disk format, each decoding into the same
//! compact store of fixed-size u8 images ([`Images`]), which the run then normalises.
//!
//! A new format is one file here and one variant of [`DataSource`].

mod cache;
mod cifar;
mod csv;
mod decoded;
mod domains;
mod extent;
mod folder;
pub(crate) mod idx;
mod leaf;
mod parquet;
mod resize;
mod spec;

use std::path::Path;

pub(crate) use idx::idx_file;
pub use spec::{CifarLabels, DataSource, ImageShape, NamedSource};

use super::{DataError, DataSplit, Dataset, Pixels};

/// Labelled u8 images of one shape, one byte per channel, channel-interleaved.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Images {
    /// `len * side * side * channels` bytes.
    pub pixels: Vec<u8>,
    /// One label per image.
    pub labels: Vec<u8>,
    /// The group (writer, user or domain) of each image: an index into the source's names.
    pub groups: Vec<u32>,
    /// Images are `side` x `side`.
    pub side: usize,
    /// 1 or 3.
    pub channels: usize,
}

/// A source's train and test images and the names of its groups.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceImages {
    /// The training images.
    pub train: Images,
    /// The central test images.
    pub test: Images,
    /// Group names (writers, users or domains), indexed by [`Images::groups`].
    pub groups: Vec<String>,
}

impl Images {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there is no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// An empty store for `side` x `side` images of `channels`.
    fn new(side: usize, channels: usize) -> Images {
        Images {
            side,
            channels,
            ..Images::default()
        }
    }

    /// An empty store with room for `images` images.
    fn with_capacity(side: usize, channels: usize, images: usize) -> Images {
        Images {
            pixels: Vec::with_capacity(images * side * side * channels),
            labels: Vec::with_capacity(images),
            groups: Vec::with_capacity(images),
            side,
            channels,
        }
    }

    /// Appends one image already in this store's shape.
    fn push(&mut self, pixels: &[u8], label: u8, group: u32) {
        debug_assert_eq!(pixels.len(), self.side * self.side * self.channels);
        self.pixels.extend_from_slice(pixels);
        self.labels.push(label);
        self.groups.push(group);
    }

    /// Appends a `width` x `height` image of `channels`, brought to this store's shape.
    fn push_resized(
        &mut self,
        pixels: &[u8],
        (width, height, channels): (usize, usize, usize),
        label: u8,
        group: u32,
    ) {
        let img = resize::to_shape(pixels, (width, height, channels), self.side, self.channels);
        self.push(&img, label, group);
    }

    /// The images normalised as the model reads them.
    fn normalised(self, classes: usize) -> Dataset {
        Dataset {
            pixels: Pixels::Bytes(self.pixels),
            labels: self.labels,
            groups: self.groups,
            side: self.side,
            channels: self.channels,
            classes,
        }
    }
}

impl SourceImages {
    /// The images normalised, with one class per training label up to the largest; a test
    /// label beyond them is an error (the model has no output to score it).
    pub fn into_split(self) -> Result<DataSplit, DataError> {
        if self.train.is_empty() {
            return Err(DataError::Empty { split: "training" });
        }
        if self.test.is_empty() {
            return Err(DataError::Empty { split: "test" });
        }
        let classes = |i: &Images| i.labels.iter().max().map_or(0, |&m| m as usize + 1);
        let (train_classes, test_classes) = (classes(&self.train), classes(&self.test));
        if test_classes > train_classes {
            return Err(DataError::Mismatch(format!(
                "test labels go up to {} but training labels only to {}",
                test_classes - 1,
                train_classes.saturating_sub(1)
            )));
        }
        if self.train.side != self.test.side || self.train.channels != self.test.channels {
            return Err(DataError::Mismatch(format!(
                "training images are {0}x{0}x{1} but test images {2}x{2}x{3}",
                self.train.side, self.train.channels, self.test.side, self.test.channels
            )));
        }
        Ok(DataSplit {
            train: self.train.normalised(train_classes),
            test: self.test.normalised(train_classes),
            groups: self.groups,
        })
    }
}

impl DataSource {
    /// Loads the source (paths relative to `base`), every image brought to `shape` when
    /// one is given.
    pub fn load(&self, base: &Path, shape: Option<ImageShape>) -> Result<SourceImages, DataError> {
        let path = |p: &str| base.join(p);
        match self {
            DataSource::Idx { dir } => idx::load_dir(&path(dir), shape),
            DataSource::Cifar10 { dir } => cifar::load(&path(dir), None, shape),
            DataSource::Cifar100 { dir, labels } => cifar::load(&path(dir), Some(*labels), shape),
            DataSource::Csv {
                file,
                width,
                height,
                max,
                test_fraction,
            } => csv::load(&path(file), (*width, *height), *max, *test_fraction, shape),
            DataSource::Leaf { dir } => leaf::load(&path(dir), shape),
            DataSource::ImageFolder {
                dir,
                domains,
                list,
                test_fraction,
            } => folder::load(
                &path(dir),
                *domains,
                list.as_deref().map(path).as_deref(),
                *test_fraction,
                shape,
            ),
            DataSource::Parquet {
                dir,
                files,
                image,
                label,
                test_fraction,
            } => parquet::load(&path(dir), files, (image, label), *test_fraction, shape),
            DataSource::Domains(parts) => domains::load(parts, base, shape, None),
        }
    }

    /// [`DataSource::load`], with the images of formats that decode compressed files
    /// (folders, Parquet) kept in `cache` (a folder) and taken from there when the same
    /// files were decoded before.
    pub fn load_cached(
        &self,
        base: &Path,
        shape: Option<ImageShape>,
        cache: Option<&Path>,
    ) -> Result<SourceImages, DataError> {
        match (self, cache) {
            (DataSource::ImageFolder { .. } | DataSource::Parquet { .. }, Some(dir)) => {
                let file = cache::file_for(self, base, shape, dir)?;
                if let Some(loaded) = cache::read(&file) {
                    return Ok(loaded);
                }
                let loaded = self.load(base, shape)?;
                cache::write(&file, &loaded)?;
                Ok(loaded)
            }
            (DataSource::Domains(parts), Some(_)) => domains::load(parts, base, shape, cache),
            _ => self.load(base, shape),
        }
    }
}

/// Loads an IDX directory (see [`DataSource::Idx`]) in its own shape, normalised.
pub(crate) fn load_idx_dir(dir: &Path) -> Result<DataSplit, DataError> {
    idx::load_dir(dir, None)?.into_split()
}

/// The last part of `path`, naming a source's one group; `fallback` when it has none.
fn name_of(path: &Path, fallback: &str) -> String {
    path.file_name()
        .map_or_else(|| fallback.into(), |n| n.to_string_lossy().into_owned())
}

/// Whether image `i` of `n` falls in a held-out share `fraction`, spread evenly: every
/// fifth image for 0.2.
fn held_out(i: usize, fraction: f64) -> bool {
    ((i + 1) as f64 * fraction).floor() > (i as f64 * fraction).floor()
}

/// Opens a file, naming it in the error.
fn read(path: &Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The most bytes a text source may hold once decompressed.
const MAX_TEXT_BYTES: u64 = 4 << 30;

/// Reads a whole file, gunzipping it when its name ends in `.gz`; a file that holds (or
/// inflates to) more than 4 GiB is refused before the memory is taken.
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, DataError> {
    use std::io::Read;
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)))
    } else {
        Box::new(file)
    };
    let mut out = Vec::new();
    reader
        .take(MAX_TEXT_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(io)?;
    if out.len() as u64 > MAX_TEXT_BYTES {
        return Err(DataError::Malformed {
            path: path.to_path_buf(),
            at: "size".into(),
            problem: format!("holds more than {} GiB of text", MAX_TEXT_BYTES >> 30),
        });
    }
    Ok(out)
}

/// The shape images of `width` x `height` x `channels` are stored in: `shape` when given,
/// else their own (square only).
fn store_shape(
    path: &Path,
    (width, height, channels): (usize, usize, usize),
    shape: Option<ImageShape>,
) -> Result<(usize, usize), DataError> {
    match shape {
        Some(s) => Ok((s.side, s.channels)),
        None if width == height => Ok((width, channels)),
        None => Err(DataError::NotSquare {
            path: path.to_path_buf(),
            width,
            height,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_out_spreads_the_share_evenly() {
        let picked: Vec<usize> = (0..20).filter(|&i| held_out(i, 0.2)).collect();
        assert_eq!(picked, vec![4, 9, 14, 19]);
        assert_eq!((0..1000).filter(|&i| held_out(i, 0.25)).count(), 250);
        assert!(!(0..100).any(|i| held_out(i, 0.0)));
    }
}

//! Where images come from: one loader per on-disk format, each decoding into the same
//! compact store of fixed-size u8 images ([`Images`]), which the run then normalises.
//!
//! A new format is one file here and one variant of [`DataSource`].

mod cache;
mod cifar;
mod csv;
mod decoded;
mod folder;
pub(crate) mod idx;
mod leaf;
mod parquet;
mod resize;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use cifar::CifarLabels;
pub use idx::idx_file;
use idx::read_idx_dims;

use super::{DataError, DataSplit, Dataset, Pixels};

/// A data set on disk (paths relative to the scenario file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub enum DataSource {
    /// A directory of MNIST-style IDX files (train-* and t10k-*, gzip or not).
    Idx {
        /// The directory, relative to the scenario.
        dir: String,
    },
    /// CIFAR-10's binary version: `data_batch_1.bin` .. `data_batch_5.bin` and
    /// `test_batch.bin`.
    Cifar10 {
        /// The directory, relative to the scenario.
        dir: String,
    },
    /// CIFAR-100's binary version: `train.bin` and `test.bin`.
    Cifar100 {
        /// The directory, relative to the scenario.
        dir: String,
        /// Which labels to learn: the 100 fine ones or the 20 coarse superclasses.
        #[serde(default)]
        labels: CifarLabels,
    },
    /// A table of pixels, one image per line: `width * height` integers row-major, then
    /// the label (gzip or not), like the UCI digits.
    Csv {
        /// The file, relative to the scenario.
        file: String,
        /// Pixels per row.
        width: usize,
        /// Rows per image.
        height: usize,
        /// The largest pixel value (it becomes 255): 16 for the UCI digits.
        #[serde(default = "full_scale")]
        max: u16,
        /// Share of the lines held out as the central test set, spread evenly.
        #[serde(default = "default_holdout")]
        test_fraction: f64,
    },
    /// LEAF's JSON (FEMNIST, ...): `train/*.json` and `test/*.json`, each with `users`,
    /// `num_samples` and `user_data: {user: {x, y}}`; every user is a writer group.
    Leaf {
        /// The directory holding `train/` and `test/`, relative to the scenario.
        dir: String,
    },
    /// Images (PNG or JPEG) in `root/<class>/<image>`, classes sorted by name, or in
    /// `root/<domain>/<class>/<image>` with `domains`; `root/train/...` and
    /// `root/test/...` when both exist, else a held-out share of each class.
    ImageFolder {
        /// The root, relative to the scenario.
        dir: String,
        /// One more folder level: every top folder is a domain (a group).
        #[serde(default)]
        domains: bool,
        /// A list of `path label` lines (DomainNet's `<domain>_train.txt`), paths relative
        /// to the root; labels index the sorted class folders.
        #[serde(default)]
        list: Option<String>,
        /// Share of each class held out as the central test set without `train/`+`test/`.
        #[serde(default = "default_holdout")]
        test_fraction: f64,
    },
    /// A Hugging Face data set as saved on the hub: `train-*.parquet` and `test-*.parquet`
    /// files in `dir`, an image column of PNG or JPEG bytes (`struct<bytes, path>`), an
    /// integer label column; class names from the schema metadata when present.
    Parquet {
        /// The directory holding the files, relative to the scenario.
        dir: String,
        /// The files to read, relative to `dir` (each a split by its name's prefix);
        /// every `train*` and `test*` Parquet file in `dir` when empty.
        #[serde(default)]
        files: Vec<String>,
        /// The image column.
        #[serde(default = "image_column")]
        image: String,
        /// The label column.
        #[serde(default = "label_column")]
        label: String,
        /// Share of the training rows held out as the test set when there is no test file.
        #[serde(default = "default_holdout")]
        test_fraction: f64,
    },
    /// Several sources side by side as named domains of one data set (one group each);
    /// they must share one image shape (see `data.image`).
    Domains(Vec<NamedSource>),
}

/// One domain of [`DataSource::Domains`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedSource {
    /// The domain's name, which tasks select it by.
    pub name: String,
    /// Where its images come from.
    pub source: DataSource,
}

fn image_column() -> String {
    "image".into()
}

fn label_column() -> String {
    "label".into()
}

fn full_scale() -> u16 {
    255
}

fn default_holdout() -> f64 {
    0.2
}

/// The shape every image is brought to on load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageShape {
    /// Images become `side` x `side` pixels (bilinear).
    pub side: usize,
    /// 1 (grey: ITU-R 601 luma of colour images) or 3 (RGB: grey replicated).
    pub channels: usize,
}

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
pub struct Loaded {
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

impl Loaded {
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
    pub fn load(&self, base: &Path, shape: Option<ImageShape>) -> Result<Loaded, DataError> {
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
            DataSource::Domains(parts) => domains(parts, base, shape, None),
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
    ) -> Result<Loaded, DataError> {
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
            (DataSource::Domains(parts), Some(_)) => domains(parts, base, shape, cache),
            _ => self.load(base, shape),
        }
    }

    /// The files or folders the source reads, by the field naming each (for validation).
    pub fn paths(&self) -> Vec<(String, &str)> {
        match self {
            DataSource::Idx { dir }
            | DataSource::Cifar10 { dir }
            | DataSource::Cifar100 { dir, .. }
            | DataSource::Leaf { dir }
            | DataSource::Parquet { dir, .. } => vec![("dir".into(), dir)],
            DataSource::Csv { file, .. } => vec![("file".into(), file)],
            DataSource::ImageFolder { dir, list, .. } => {
                let mut p = vec![("dir".to_string(), dir.as_str())];
                p.extend(list.as_deref().map(|l| ("list".to_string(), l)));
                p
            }
            DataSource::Domains(parts) => parts
                .iter()
                .enumerate()
                .flat_map(|(i, part)| {
                    part.source
                        .paths()
                        .into_iter()
                        .map(move |(field, p)| (format!("[{i}].source.{field}"), p))
                })
                .collect(),
        }
    }
}

/// What a source holds, read from headers and file sizes without decoding any image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Extent {
    /// Training images.
    pub train: usize,
    /// Test images.
    pub test: usize,
    /// Images are `side` x `side` once loaded.
    pub side: usize,
    /// Channels once loaded.
    pub channels: usize,
}

impl DataSource {
    /// What the source holds once loaded with `shape`, when headers, file sizes, line or
    /// file counts tell without decoding an image (folders and Parquet need `shape` for
    /// their size); `None` otherwise (LEAF).
    pub fn extent(&self, base: &Path, shape: Option<ImageShape>) -> Option<Extent> {
        let shaped = |side: usize, channels: usize, train: usize, test: usize| {
            let (side, channels) = shape.map_or((side, channels), |s| (s.side, s.channels));
            Extent {
                train,
                test,
                side,
                channels,
            }
        };
        match self {
            DataSource::Idx { dir } => {
                let dims = |name: &str| {
                    read_idx_dims(&idx_file(
                        &base.join(dir),
                        &format!("{name}-images-idx3-ubyte"),
                    ))
                    .ok()
                };
                let (train, test) = (dims("train")?, dims("t10k")?);
                let [n_train, side, _] = train[..] else {
                    return None;
                };
                Some(shaped(side, 1, n_train, *test.first()?))
            }
            DataSource::Cifar10 { .. } | DataSource::Cifar100 { .. } => {
                let (dir, record, train, test) = match self {
                    DataSource::Cifar10 { dir } => {
                        (dir, 3073, cifar::TRAIN_10.to_vec(), cifar::TEST_10)
                    }
                    DataSource::Cifar100 { dir, .. } => (dir, 3074, vec!["train.bin"], "test.bin"),
                    _ => unreachable!("matched above"),
                };
                let count = |f: &str| {
                    std::fs::metadata(base.join(dir).join(f))
                        .ok()
                        .map(|m| m.len() as usize / record)
                };
                let n_train = train.iter().map(|f| count(f)).sum::<Option<usize>>()?;
                Some(shaped(32, 3, n_train, count(test)?))
            }
            DataSource::Domains(parts) => {
                let extents: Vec<Extent> = parts
                    .iter()
                    .map(|p| p.source.extent(base, shape))
                    .collect::<Option<_>>()?;
                let first = *extents.first()?;
                Some(Extent {
                    train: extents.iter().map(|e| e.train).sum(),
                    test: extents.iter().map(|e| e.test).sum(),
                    ..first
                })
            }
            DataSource::Csv {
                file,
                width,
                height,
                test_fraction,
                ..
            } => {
                let text = read_maybe_gz(&base.join(file)).ok()?;
                let lines = text
                    .split(|&b| b == b'\n')
                    .filter(|l| !l.trim_ascii().is_empty())
                    .count();
                let test = (0..lines).filter(|&i| held_out(i, *test_fraction)).count();
                let side = (width == height)
                    .then_some(*width)
                    .or(shape.map(|s| s.side))?;
                Some(shaped(side, 1, lines - test, test))
            }
            DataSource::ImageFolder {
                dir, test_fraction, ..
            } => {
                let shape = shape?;
                let images = folder::count(&base.join(dir))?;
                let test = (images as f64 * test_fraction).ceil() as usize;
                Some(shaped(
                    shape.side,
                    shape.channels,
                    images - test.min(images),
                    test,
                ))
            }
            DataSource::Parquet {
                dir,
                files,
                test_fraction,
                ..
            } => {
                let shape = shape?;
                let (train, test) = parquet::rows(&base.join(dir), files)?;
                let (train, test) = if test == 0 {
                    let held = (train as f64 * test_fraction).ceil() as usize;
                    (train - held.min(train), held)
                } else {
                    (train, test)
                };
                Some(shaped(shape.side, shape.channels, train, test))
            }
            DataSource::Leaf { .. } => None,
        }
    }
}

/// Loads an IDX directory (see [`DataSource::Idx`]) in its own shape, normalised.
pub fn load_idx_dir(dir: &Path) -> Result<DataSplit, DataError> {
    idx::load_dir(dir, None)?.into_split()
}

/// Loads every part and puts them side by side, one group per part.
fn domains(
    parts: &[NamedSource],
    base: &Path,
    shape: Option<ImageShape>,
    cache: Option<&Path>,
) -> Result<Loaded, DataError> {
    let mut out: Option<Loaded> = None;
    for (g, part) in parts.iter().enumerate() {
        let mut loaded = part.source.load_cached(base, shape, cache)?;
        for set in [&mut loaded.train, &mut loaded.test] {
            set.groups.iter_mut().for_each(|x| *x = g as u32);
        }
        match &mut out {
            None => {
                loaded.groups = vec![part.name.clone()];
                out = Some(loaded);
            }
            Some(all) => {
                if (all.train.side, all.train.channels)
                    != (loaded.train.side, loaded.train.channels)
                {
                    return Err(DataError::Mismatch(format!(
                        "domain \"{}\" holds {2}x{2}x{3} images but \"{}\" {4}x{4}x{5}: give \
                         data.image to bring them to one shape",
                        part.name,
                        parts[0].name,
                        loaded.train.side,
                        loaded.train.channels,
                        all.train.side,
                        all.train.channels
                    )));
                }
                for (to, from) in [(&mut all.train, loaded.train), (&mut all.test, loaded.test)] {
                    to.pixels.extend(from.pixels);
                    to.labels.extend(from.labels);
                    to.groups.extend(from.groups);
                }
                all.groups.push(part.name.clone());
            }
        }
    }
    out.ok_or(DataError::Empty { split: "training" })
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

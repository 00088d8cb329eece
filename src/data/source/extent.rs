//! What a source holds, counted without decoding an image: for the memory estimate and
//! for checks that need the image side before anything is loaded.

use std::path::Path;

use super::idx::{idx_file, read_idx_dims};
use super::{DataSource, ImageShape, cifar, folder, held_out, parquet, read_maybe_gz};

/// What a source holds, read from headers and file sizes without decoding any image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Extent {
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
    pub(crate) fn extent(&self, base: &Path, shape: Option<ImageShape>) -> Option<Extent> {
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

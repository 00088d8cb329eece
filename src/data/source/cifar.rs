//! CIFAR-10 and CIFAR-100, binary version: fixed-size records of a label byte (two for
//! CIFAR-100: coarse, then fine) and 3,072 pixel bytes, the red, green and blue 32x32
//! planes one after another.

use std::io::Read;
use std::path::Path;

use super::{CifarLabels, ImageShape, Images, SourceImages, store_shape};
use crate::data::DataError;

/// CIFAR-10's training batches.
pub(super) const TRAIN_10: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// CIFAR-10's test batch.
pub(super) const TEST_10: &str = "test_batch.bin";

const SIDE: usize = 32;
const PLANE: usize = SIDE * SIDE;

/// Loads CIFAR-10 (`labels` is `None`) or CIFAR-100 from `dir`; one group.
pub(super) fn load(
    dir: &Path,
    labels: Option<CifarLabels>,
    shape: Option<ImageShape>,
) -> Result<SourceImages, DataError> {
    let (train_files, test_file): (&[&str], &str) = match labels {
        None => (&TRAIN_10, TEST_10),
        Some(_) => (&["train.bin"], "test.bin"),
    };
    let (side, channels) = store_shape(dir, (SIDE, SIDE, 3), shape)?;
    // Sized once from the files' lengths: growing by doubling would hold two copies.
    let record = if labels.is_some() { 3074 } else { 3073 };
    let sized = |files: &[&str]| {
        let images: usize = files
            .iter()
            .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
            .map(|m| m.len() as usize / record)
            .sum();
        Images::with_capacity(side, channels, images)
    };
    let mut train = sized(train_files);
    for file in train_files {
        read_batch(&dir.join(file), labels, &mut train)?;
    }
    let mut test = sized(&[test_file]);
    read_batch(&dir.join(test_file), labels, &mut test)?;
    let name = match labels {
        None => "cifar10",
        Some(_) => "cifar100",
    };
    Ok(SourceImages {
        train,
        test,
        groups: vec![name.into()],
    })
}

/// Appends every record of one batch file to `out`.
fn read_batch(path: &Path, labels: Option<CifarLabels>, out: &mut Images) -> Result<(), DataError> {
    let label_bytes = if labels.is_some() { 2 } else { 1 };
    let record = label_bytes + 3 * PLANE;
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len() as usize;
    let malformed = |at: String, problem: String| DataError::Malformed {
        path: path.to_path_buf(),
        at,
        problem,
    };
    if size == 0 || !size.is_multiple_of(record) {
        return Err(malformed(
            format!("record {}", size / record),
            format!("cut short: {size} bytes are not a whole number of {record}-byte records"),
        ));
    }
    // Record by record: the file is never held whole beside the store.
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    out.pixels
        .reserve(size / record * out.side * out.side * out.channels);
    let classes = match labels {
        None => 10,
        Some(CifarLabels::Fine) => 100,
        Some(CifarLabels::Coarse) => 20,
    };
    let mut hwc = vec![0u8; 3 * PLANE];
    let mut rec = vec![0u8; record];
    for r in 0..size / record {
        reader.read_exact(&mut rec).map_err(io)?;
        let label = match labels {
            Some(CifarLabels::Fine) => rec[1],
            _ => rec[0],
        };
        if label as usize >= classes {
            return Err(malformed(
                format!("record {r}"),
                format!("label {label} is outside the {classes} classes"),
            ));
        }
        let planes = &rec[label_bytes..];
        for (i, px) in hwc.chunks_exact_mut(3).enumerate() {
            px.copy_from_slice(&[planes[i], planes[PLANE + i], planes[2 * PLANE + i]]);
        }
        out.push_resized(&hwc, (SIDE, SIDE, 3), label, 0);
    }
    Ok(())
}

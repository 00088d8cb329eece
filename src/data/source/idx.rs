//! The IDX format of MNIST, Fashion-MNIST, KMNIST and EMNIST, gzip-compressed or not.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use super::{ImageShape, Images, SourceImages, name_of, store_shape};
use crate::data::DataError;

/// Why an IDX file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum IdxError {
    /// The file cannot be read.
    #[error("{path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
    /// The file declares more values than flotilla reads.
    #[error("{path}: declares more than {} GiB of values", MAX_IDX_BYTES >> 30)]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The bytes are not an IDX tensor of unsigned bytes.
    #[error("{path}: not an IDX file of unsigned bytes")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with its bytes.
        source: IdxFormatError,
    },
}

/// Bytes that are not an IDX tensor of unsigned bytes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IdxFormatError {
    /// The first two bytes are not zero.
    #[error("bad magic number")]
    Magic,
    /// Elements of another type than u8.
    #[error("element type 0x{0:02x}, expected 0x08 (u8)")]
    ElementType(u8),
    /// Fewer bytes than the header announces.
    #[error("truncated header")]
    TruncatedHeader,
    /// More or fewer values than the dimensions call for.
    #[error("{found} data bytes for dims {dims:?}, expected {expected}")]
    Length {
        /// The dimensions in the header.
        dims: Vec<usize>,
        /// Bytes the dimensions call for.
        expected: usize,
        /// Bytes there are.
        found: usize,
    },
}

/// The path of `name` in `dir`, preferring the gzip-compressed file.
pub(crate) fn idx_file(dir: &Path, name: &str) -> PathBuf {
    let gz = dir.join(format!("{name}.gz"));
    if gz.exists() { gz } else { dir.join(name) }
}

/// Loads an IDX data set directory: `train-images-idx3-ubyte[.gz]`,
/// `train-labels-idx1-ubyte[.gz]`, `t10k-images-idx3-ubyte[.gz]`,
/// `t10k-labels-idx1-ubyte[.gz]`; one group, named after the directory.
pub(super) fn load_dir(dir: &Path, shape: Option<ImageShape>) -> Result<SourceImages, DataError> {
    let name = name_of(dir, "idx");
    Ok(SourceImages {
        train: load_pair(dir, "train", shape)?,
        test: load_pair(dir, "t10k", shape)?,
        groups: vec![name],
    })
}

fn load_pair(dir: &Path, prefix: &str, shape: Option<ImageShape>) -> Result<Images, DataError> {
    let images = read_idx(&idx_file(dir, &format!("{prefix}-images-idx3-ubyte")))?;
    let labels = read_idx(&idx_file(dir, &format!("{prefix}-labels-idx1-ubyte")))?;
    let shape_error = |problem: String| DataError::Shape {
        split: prefix.to_string(),
        problem,
    };
    let [n, h, w] = images.dims[..] else {
        return Err(shape_error(format!(
            "images have dims {:?}, expected 3",
            images.dims
        )));
    };
    if h != w && shape.is_none() {
        return Err(shape_error(format!("images are {h}x{w}, expected square")));
    }
    if n == 0 || h == 0 || w == 0 {
        return Err(shape_error(format!(
            "{n} images of {h}x{w}: there is nothing to learn from"
        )));
    }
    if labels.dims != [n] {
        return Err(shape_error(format!(
            "{n} images but labels have dims {:?}",
            labels.dims
        )));
    }
    let path = idx_file(dir, &format!("{prefix}-images-idx3-ubyte"));
    let (side, channels) = store_shape(&path, (w, h, 1), shape)?;
    if (side, channels) == (w, 1) && h == w {
        return Ok(Images {
            pixels: images.data,
            labels: labels.data,
            groups: vec![0; n],
            side,
            channels,
        });
    }
    let mut out = Images::new(side, channels);
    for (img, &label) in images.data.chunks_exact(h * w).zip(&labels.data) {
        out.push_resized(img, (w, h, 1), label, 0);
    }
    Ok(out)
}

/// An IDX tensor of unsigned bytes: its dimensions and values.
#[derive(Debug)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// The largest IDX file read (after decompression): 4 GiB of images.
const MAX_IDX_BYTES: u64 = 4 << 30;

/// Reads an IDX file; a `.gz` name (or gzip magic) is decompressed. The header is read
/// first, and no more bytes than it declares (plus one, to notice extra ones) are read
/// after it: a small file that would inflate without end, or a header that declares more
/// than 4 GiB, is refused before the memory is taken.
pub fn read_idx(path: &Path) -> Result<IdxArray, IdxError> {
    let dims = read_idx_dims(path)?;
    let header = 4 + 4 * dims.len() as u64;
    let declared = dims.iter().map(|&d| d as u64).product::<u64>();
    let mut bytes = Vec::new();
    open(path)?
        .take(header + declared + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| IdxError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    parse_idx(&bytes).map_err(|source| IdxError::Format {
        path: path.to_path_buf(),
        source,
    })
}

/// The dimensions an IDX file declares, read from its header alone; a header that
/// declares more than 4 GiB of values is refused.
pub(crate) fn read_idx_dims(path: &Path) -> Result<Vec<usize>, IdxError> {
    let mut head = Vec::with_capacity(4 + 4 * 255);
    let mut reader = open(path)?;
    let io = |source| IdxError::Io {
        path: path.to_path_buf(),
        source,
    };
    reader.by_ref().take(4).read_to_end(&mut head).map_err(io)?;
    let ndim = head.get(3).copied().unwrap_or(0) as u64;
    reader.take(4 * ndim).read_to_end(&mut head).map_err(io)?;
    let dims = header_dims(&head).map_err(|source| IdxError::Format {
        path: path.to_path_buf(),
        source,
    })?;
    dims.iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d as u64))
        .filter(|&n| n <= MAX_IDX_BYTES)
        .ok_or_else(|| IdxError::TooLarge {
            path: path.to_path_buf(),
        })?;
    Ok(dims)
}

/// The file's bytes, decompressed when it starts with gzip's magic.
fn open(path: &Path) -> Result<Box<dyn Read>, IdxError> {
    let io = |source| IdxError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::io::BufReader::new(std::fs::File::open(path).map_err(io)?);
    let mut start = Vec::with_capacity(2);
    file.by_ref().take(2).read_to_end(&mut start).map_err(io)?;
    let whole = std::io::Cursor::new(start.clone()).chain(file);
    Ok(if start == [0x1f, 0x8b] {
        Box::new(GzDecoder::new(whole))
    } else {
        Box::new(whole)
    })
}

/// The dimensions in an IDX header (magic `0 0 0x08 ndim`, big-endian u32 dims).
fn header_dims(bytes: &[u8]) -> Result<Vec<usize>, IdxFormatError> {
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(IdxFormatError::Magic);
    }
    if bytes[2] != 0x08 {
        return Err(IdxFormatError::ElementType(bytes[2]));
    }
    let ndim = bytes[3] as usize;
    if bytes.len() < 4 + 4 * ndim {
        return Err(IdxFormatError::TruncatedHeader);
    }
    Ok((0..ndim)
        .map(|i| {
            let b = &bytes[4 + 4 * i..8 + 4 * i];
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
        })
        .collect())
}

/// Parses IDX bytes: magic `0 0 0x08 ndim`, big-endian u32 dims, then the values.
pub(crate) fn parse_idx(bytes: &[u8]) -> Result<IdxArray, IdxFormatError> {
    let dims = header_dims(bytes)?;
    let header = 4 + 4 * dims.len();
    let len = dims
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .unwrap_or(usize::MAX);
    if bytes.len() - header != len {
        return Err(IdxFormatError::Length {
            dims,
            expected: len,
            found: bytes.len() - header,
        });
    }
    Ok(IdxArray {
        dims,
        data: bytes[header..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_header_and_rejects_mismatch() {
        let mut b = vec![0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3];
        b.extend([1, 2, 3, 4, 5, 6]);
        let a = parse_idx(&b).unwrap();
        assert_eq!(a.dims, vec![2, 3]);
        assert_eq!(a.data, vec![1, 2, 3, 4, 5, 6]);
        b.pop();
        assert!(
            parse_idx(&b)
                .unwrap_err()
                .to_string()
                .contains("expected 6")
        );
        assert!(matches!(
            parse_idx(&[0, 0, 0x0d, 1]),
            Err(IdxFormatError::ElementType(0x0d))
        ));
    }
}

//! The IDX format of MNIST, Fashion-MNIST, KMNIST and EMNIST, gzip-compressed or not.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

/// Why an IDX file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum IdxError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
    /// The bytes are not an IDX tensor of unsigned bytes.
    #[error("{path}: not an IDX file of unsigned bytes ({source})")]
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

/// An IDX tensor of unsigned bytes: its dimensions and values.
#[derive(Debug)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Reads an IDX file; a `.gz` name (or gzip magic) is decompressed.
pub fn read_idx(path: &Path) -> Result<IdxArray, IdxError> {
    let io = |source| IdxError::Io {
        path: path.to_path_buf(),
        source,
    };
    let raw = std::fs::read(path).map_err(io)?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(io)?;
        out
    } else {
        raw
    };
    parse_idx(&bytes).map_err(|source| IdxError::Format {
        path: path.to_path_buf(),
        source,
    })
}

/// Parses IDX bytes: magic `0 0 0x08 ndim`, big-endian u32 dims, then the values.
pub fn parse_idx(bytes: &[u8]) -> Result<IdxArray, IdxFormatError> {
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(IdxFormatError::Magic);
    }
    if bytes[2] != 0x08 {
        return Err(IdxFormatError::ElementType(bytes[2]));
    }
    let ndim = bytes[3] as usize;
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err(IdxFormatError::TruncatedHeader);
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|i| {
            let b = &bytes[4 + 4 * i..8 + 4 * i];
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
        })
        .collect();
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

//! The IDX format of MNIST, Fashion-MNIST, KMNIST and EMNIST, gzip-compressed or not.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

/// Why an IDX file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum IdxError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not an IDX file of unsigned bytes ({reason})")]
    Format { path: PathBuf, reason: String },
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
    parse_idx(&bytes).map_err(|reason| IdxError::Format {
        path: path.to_path_buf(),
        reason,
    })
}

/// Parses IDX bytes: magic `0 0 0x08 ndim`, big-endian u32 dims, then the values.
pub fn parse_idx(bytes: &[u8]) -> Result<IdxArray, String> {
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err("bad magic number".into());
    }
    if bytes[2] != 0x08 {
        return Err(format!(
            "element type 0x{:02x}, expected 0x08 (u8)",
            bytes[2]
        ));
    }
    let ndim = bytes[3] as usize;
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err("truncated header".into());
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|i| {
            let b = &bytes[4 + 4 * i..8 + 4 * i];
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
        })
        .collect();
    let len: usize = dims.iter().product();
    if bytes.len() != header + len {
        return Err(format!(
            "{} data bytes for dims {dims:?}, expected {len}",
            bytes.len() - header
        ));
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
        assert!(parse_idx(&b).unwrap_err().contains("expected 6"));
        assert!(parse_idx(&[0, 0, 0x0d, 1]).unwrap_err().contains("0x0d"));
    }
}

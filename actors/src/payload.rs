//! Flat parameter vectors and their wire encodings.

use std::sync::Arc;

use half::f16;
use serde::{Deserialize, Serialize};

/// A flat vector of trainable parameters (adapter + head), shared without copying.
pub type Params = Arc<Vec<f32>>;

/// How parameters are encoded on the wire.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireDtype {
    /// 4 bytes per value, lossless.
    F32,
    /// 2 bytes per value, IEEE half precision (round to nearest even).
    F16,
}

/// A payload after encoding: what the receiver decodes and how many bytes crossed the link.
#[derive(Clone, Debug)]
pub struct Encoded {
    /// The values as the receiver decodes them (with the encoding's rounding error).
    pub values: Params,
    /// The exact size of the encoded payload in bytes.
    pub bytes: u64,
}

impl WireDtype {
    /// Bytes a vector of `len` values occupies on the wire.
    pub fn encoded_bytes(self, len: usize) -> u64 {
        let per_value = match self {
            WireDtype::F32 => 4,
            WireDtype::F16 => 2,
        };
        per_value * len as u64
    }

    /// Encodes `values` and decodes them again, as sender and receiver would.
    pub fn transmit(self, values: &[f32]) -> Encoded {
        let decoded = match self {
            WireDtype::F32 => values.to_vec(),
            WireDtype::F16 => values.iter().map(|&v| f16::from_f32(v).to_f32()).collect(),
        };
        Encoded {
            bytes: self.encoded_bytes(values.len()),
            values: Arc::new(decoded),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_rounding() {
        let v = [1.0f32, 0.1, -3.25, 65504.0];
        let f32w = WireDtype::F32.transmit(&v);
        assert_eq!(f32w.bytes, 16);
        assert_eq!(*f32w.values, v.to_vec());
        let f16w = WireDtype::F16.transmit(&v);
        assert_eq!(f16w.bytes, 8);
        assert_eq!(f16w.values[0], 1.0);
        assert_eq!(f16w.values[2], -3.25);
        assert!((f16w.values[1] - 0.1).abs() < 1e-4 && f16w.values[1] != 0.1);
    }
}

//! The wire: how parameter vectors are encoded between clients and server, and exactly
//! how many bytes each encoding puts on a link.
//!
//! Float formats (`F32`, `F16`, `Bf16`) encode the values themselves. `Int8` and `TopK`
//! compress what a client learned, so on the uplink they encode the update (trained minus
//! received), as QSGD-style quantization and top-k sparsification do; the server adds the
//! decoded update to the model it sent. On the downlink `Int8` quantizes the model itself.

mod encoder;
mod quantize;
mod topk;

pub(crate) use encoder::{Encoded, Encoder, Sender};

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// How Int8 rounds a scaled value to an integer.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rounding {
    /// To the nearest integer: error at most half a step, biased.
    Nearest,
    /// Up with probability equal to the fraction: error under one step, unbiased.
    Stochastic,
}

/// How parameters are encoded on the wire.
#[derive(Copy, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Encoding {
    /// 4 bytes per value, lossless.
    F32,
    /// 2 bytes per value, IEEE half precision (round to nearest even).
    F16,
    /// 2 bytes per value, bfloat16: f32's range with 8 bits of mantissa.
    Bf16,
    /// 1 byte per value plus one f32 scale per tensor: symmetric, `max|x| / 127`.
    Int8(Rounding),
    /// The largest-magnitude `fraction` of the update's entries as (u32 index, f32 value)
    /// pairs; the rest is kept on the client and added to its next update (error
    /// feedback). Uplink only.
    TopK(f64),
}

/// A run's wire: the encodings each way and the tensor layout of the parameter vector.
#[derive(Clone, Debug, PartialEq)]
pub struct Wire {
    /// Updates, client to server.
    pub up: Encoding,
    /// Models, server to client.
    pub down: Encoding,
    /// Lengths of the tensors that make up a parameter vector, in order (per-tensor
    /// scales); empty treats the vector as one tensor.
    pub layout: Arc<[usize]>,
}

impl Wire {
    /// Both ways in `encoding`, the vector as one tensor.
    pub fn uniform(encoding: Encoding) -> Self {
        Self {
            up: encoding,
            down: encoding,
            layout: Arc::from([]),
        }
    }
}

impl Encoding {
    /// Whether the encoding can only send an update relative to a model the receiver has.
    pub fn needs_reference(self) -> bool {
        matches!(self, Encoding::TopK(_))
    }

    /// Whether an update is encoded as its difference from the model the client
    /// received (Int8 and top-k), so that the client must keep that model until then.
    pub(crate) fn encodes_delta(self) -> bool {
        matches!(self, Encoding::Int8(_) | Encoding::TopK(_))
    }

    /// Entries a top-k encoding of `len` values sends.
    pub(super) fn kept(fraction: f64, len: usize) -> usize {
        if len == 0 {
            return 0;
        }
        ((fraction * len as f64).ceil() as usize).clamp(1, len)
    }

    /// Bytes a vector whose tensors have the lengths in `layout` occupies on the wire.
    ///
    /// ```
    /// use flotilla_actors::wire::{Encoding, Rounding};
    /// let layout = [100, 28];
    /// assert_eq!(Encoding::F32.encoded_bytes(&layout), 512);
    /// assert_eq!(Encoding::Bf16.encoded_bytes(&layout), 256);
    /// // One byte per value and a 4-byte scale per tensor.
    /// assert_eq!(Encoding::Int8(Rounding::Nearest).encoded_bytes(&layout), 136);
    /// // ceil(0.1 * 128) = 13 entries of 4 + 4 bytes.
    /// assert_eq!(Encoding::TopK(0.1).encoded_bytes(&layout), 104);
    /// ```
    pub fn encoded_bytes(self, layout: &[usize]) -> u64 {
        let len: usize = layout.iter().sum();
        let len = len as u64;
        match self {
            Encoding::F32 => 4 * len,
            Encoding::F16 | Encoding::Bf16 => 2 * len,
            Encoding::Int8(_) => len + 4 * layout.iter().filter(|&&n| n > 0).count() as u64,
            Encoding::TopK(fraction) => 8 * Self::kept(fraction, len as usize) as u64,
        }
    }
}

//! Flat parameter vectors and their wire encodings.
//!
//! Float formats (`F32`, `F16`, `Bf16`) encode the values themselves. `Int8` and `TopK`
//! compress what a client learned, so on the uplink they encode the update (trained minus
//! received), as QSGD-style quantization and top-k sparsification do; the server adds the
//! decoded update to the model it sent. On the downlink `Int8` quantizes the model itself.

use std::sync::Arc;

use half::{bf16, f16};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::rng::SimRng;

/// A flat vector of trainable parameters (adapter + head), shared without copying.
pub type Params = Arc<Vec<f32>>;

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

/// A payload after encoding: what the receiver decodes and how many bytes crossed the link.
#[derive(Clone, Debug)]
pub struct Encoded {
    /// The values as the receiver decodes them (with the encoding's error).
    pub values: Params,
    /// The exact size of the encoded payload in bytes.
    pub bytes: u64,
}

impl Encoding {
    /// Whether the encoding can only send an update relative to a model the receiver has.
    pub fn needs_reference(self) -> bool {
        matches!(self, Encoding::TopK(_))
    }

    /// Entries a top-k encoding of `len` values sends.
    fn kept(fraction: f64, len: usize) -> usize {
        if len == 0 {
            return 0;
        }
        ((fraction * len as f64).ceil() as usize).clamp(1, len)
    }

    /// Bytes a vector whose tensors have the lengths in `layout` occupies on the wire.
    ///
    /// ```
    /// use flotilla_actors::payload::{Encoding, Rounding};
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

/// A sender's side of the wire: the encoding, the tensor layout of the vectors it sends,
/// the random stream stochastic rounding draws from, and top-k's error feedback.
#[derive(Clone, Debug)]
pub struct Encoder {
    encoding: Encoding,
    layout: Arc<[usize]>,
    rng: SimRng,
    /// Per slot, what earlier top-k updates left unsent.
    residuals: Vec<Vec<f32>>,
}

impl Encoder {
    /// An encoder for vectors made of tensors of the lengths in `layout`.
    pub fn new(encoding: Encoding, layout: Arc<[usize]>, rng: SimRng) -> Self {
        Self {
            encoding,
            layout,
            rng,
            residuals: Vec::new(),
        }
    }

    /// The encoding in use.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// Encodes a model (the downlink): the receiver needs nothing but the message.
    ///
    /// # Panics
    ///
    /// For top-k, which needs a reference model; scenarios reject it on the downlink.
    pub fn encode_model(&mut self, values: &[f32]) -> Encoded {
        assert!(
            !self.encoding.needs_reference(),
            "{:?} cannot encode a model without a reference",
            self.encoding
        );
        let bytes = self.bytes(values.len());
        let values = match self.encoding {
            Encoding::Int8(rounding) => {
                let mut v = values.to_vec();
                quantize_int8(&mut v, &self.layout, rounding, &mut self.rng);
                v
            }
            e => round_float(e, values),
        };
        Encoded {
            values: Arc::new(values),
            bytes,
        }
    }

    /// Encodes slot `slot`'s trained `values`, which started from `base` (the model the
    /// client received): the decoded values are what the server reconstructs.
    pub fn encode_update(&mut self, slot: usize, values: &[f32], base: &[f32]) -> Encoded {
        assert_eq!(values.len(), base.len(), "update and base differ in length");
        let bytes = self.bytes(values.len());
        let mut delta: Vec<f32> = values.iter().zip(base).map(|(v, b)| v - b).collect();
        match self.encoding {
            Encoding::Int8(rounding) => {
                quantize_int8(&mut delta, &self.layout, rounding, &mut self.rng);
            }
            Encoding::TopK(fraction) => {
                if self.residuals.len() <= slot {
                    self.residuals.resize(slot + 1, Vec::new());
                }
                let residual = &mut self.residuals[slot];
                residual.resize(delta.len(), 0.0);
                top_k(&mut delta, residual, Encoding::kept(fraction, values.len()));
            }
            e => {
                return Encoded {
                    values: Arc::new(round_float(e, values)),
                    bytes,
                };
            }
        }
        let decoded = base.iter().zip(&delta).map(|(b, d)| b + d).collect();
        Encoded {
            values: Arc::new(decoded),
            bytes,
        }
    }

    /// What top-k has left unsent for `slot` (empty before its first update).
    pub fn residual(&self, slot: usize) -> &[f32] {
        self.residuals.get(slot).map_or(&[], Vec::as_slice)
    }

    /// The encoded size of a vector of `len` values: the layout's, or one tensor when the
    /// layout does not describe vectors of that length.
    fn bytes(&self, len: usize) -> u64 {
        if self.layout.iter().sum::<usize>() == len {
            self.encoding.encoded_bytes(&self.layout)
        } else {
            self.encoding.encoded_bytes(&[len])
        }
    }
}

/// Float formats: each value rounded to the format and back.
fn round_float(encoding: Encoding, values: &[f32]) -> Vec<f32> {
    match encoding {
        Encoding::F16 => values.iter().map(|&v| f16::from_f32(v).to_f32()).collect(),
        Encoding::Bf16 => values.iter().map(|&v| bf16::from_f32(v).to_f32()).collect(),
        _ => values.to_vec(),
    }
}

/// Replaces `values` with their Int8 decoding, tensor by tensor (`layout` lengths; a
/// layout that does not cover `values` counts as one tensor).
fn quantize_int8(values: &mut [f32], layout: &[usize], rounding: Rounding, rng: &mut SimRng) {
    let whole = [values.len()];
    let layout = if layout.iter().sum::<usize>() == values.len() {
        layout
    } else {
        &whole
    };
    let mut start = 0;
    for &n in layout {
        let tensor = &mut values[start..start + n];
        start += n;
        let max = tensor.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        if max == 0.0 || !max.is_finite() {
            tensor.fill(0.0);
            continue;
        }
        let scale = max / 127.0;
        for v in tensor.iter_mut() {
            let x = *v / scale;
            let q = match rounding {
                Rounding::Nearest => x.round(),
                Rounding::Stochastic => (x + rng.random::<f32>()).floor(),
            };
            *v = q.clamp(-127.0, 127.0) * scale;
        }
    }
}

/// Error-feedback top-k: adds `residual` to `delta`, keeps the `k` largest magnitudes in
/// `delta` (ties to the lower index) and moves everything else into `residual`.
fn top_k(delta: &mut [f32], residual: &mut [f32], k: usize) {
    for (d, r) in delta.iter_mut().zip(residual.iter()) {
        *d += r;
    }
    let mut order: Vec<usize> = (0..delta.len()).collect();
    let by_magnitude =
        |a: &usize, b: &usize| delta[*b].abs().total_cmp(&delta[*a].abs()).then(a.cmp(b));
    if k < order.len() {
        order.select_nth_unstable_by(k, by_magnitude);
    }
    let mut sent = vec![false; delta.len()];
    for &i in &order[..k] {
        sent[i] = true;
    }
    for (i, (d, r)) in delta.iter_mut().zip(residual.iter_mut()).enumerate() {
        if sent[i] {
            *r = 0.0;
        } else {
            *r = *d;
            *d = 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{ActorKey, stream};

    fn encoder(encoding: Encoding, layout: &[usize]) -> Encoder {
        Encoder::new(encoding, layout.into(), stream(7, ActorKey::Server, "wire"))
    }

    #[test]
    fn float_formats_round_as_their_types() {
        let v = [1.0f32, 0.1, -3.25, 65504.0];
        let f32w = encoder(Encoding::F32, &[4]).encode_model(&v);
        assert_eq!(f32w.bytes, 16);
        assert_eq!(*f32w.values, v.to_vec());
        let f16w = encoder(Encoding::F16, &[4]).encode_model(&v);
        assert_eq!(f16w.bytes, 8);
        assert_eq!(f16w.values[2], -3.25);
        assert!((f16w.values[1] - 0.1).abs() < 1e-4 && f16w.values[1] != 0.1);
        // bfloat16 keeps 8 significant bits: relative error at most 2^-9.
        let bf = encoder(Encoding::Bf16, &[4]).encode_model(&v);
        assert_eq!(bf.bytes, 8);
        for (d, x) in bf.values.iter().zip(v) {
            assert!((d - x).abs() <= x.abs() / 512.0, "{d} vs {x}");
        }
        assert_ne!(bf.values[1], 0.1);
    }

    #[test]
    fn int8_scales_each_tensor() {
        // Two tensors with very different ranges keep their own steps.
        let v = [1.27f32, -0.5, 0.004, 0.001, -0.002, 0.0005];
        let e = encoder(Encoding::Int8(Rounding::Nearest), &[3, 3]).encode_model(&v);
        assert_eq!(e.bytes, 6 + 8);
        assert_eq!(e.values[0], 1.27);
        assert!((e.values[1] + 0.5).abs() <= 0.005 + 1e-6);
        let step = 0.002 / 127.0;
        for (d, x) in e.values[3..].iter().zip(&v[3..]) {
            assert!((d - x).abs() <= step / 2.0 + 1e-9, "{d} vs {x}");
        }
    }

    #[test]
    fn stochastic_rounding_is_unbiased() {
        // 0.3 steps: nearest rounding always gives 0, stochastic gives 1 about 30% of the time.
        let n = 20_000;
        let mut v = vec![0.3f32; n];
        v[0] = 127.0;
        let e = encoder(Encoding::Int8(Rounding::Stochastic), &[n]).encode_model(&v);
        let mean = e.values[1..].iter().sum::<f32>() / (n - 1) as f32;
        assert!((mean - 0.3).abs() < 0.01, "mean {mean}");
        assert!(e.values[1..].iter().all(|&d| d == 0.0 || d == 1.0));
    }

    #[test]
    fn top_k_sends_the_largest_and_feeds_back_the_rest() {
        let base = [1.0f32; 5];
        let trained = [1.5f32, 0.9, 1.0, 3.0, 1.2];
        let mut enc = encoder(Encoding::TopK(0.4), &[5]);
        let e = enc.encode_update(0, &trained, &base);
        assert_eq!(e.bytes, 16);
        // Deltas 0.5, -0.1, 0, 2.0, 0.2: the two largest go, the rest waits.
        assert_eq!(*e.values, vec![1.5, 1.0, 1.0, 3.0, 1.0]);
        let r = enc.residual(0).to_vec();
        assert!((r[1] + 0.1).abs() < 1e-6 && r[2] == 0.0 && (r[4] - 0.2).abs() < 1e-6);
        assert_eq!((r[0], r[3]), (0.0, 0.0));
        // Next round the residual joins the new delta: 0.2 + 0.2 now beats the others.
        let e = enc.encode_update(0, &[1.0, 1.0, 1.0, 1.0, 1.2], &base);
        assert!((e.values[4] - 1.4).abs() < 1e-6);
    }
}

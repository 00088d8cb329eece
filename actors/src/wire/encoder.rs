//! A sender's side of the wire: encodes models and updates, keeps top-k's residuals.

use std::sync::Arc;

use super::Encoding;
use super::quantize::{quantize_int8, round_float};
use super::topk::top_k;
use crate::learner::Params;
use crate::rng::SimRng;

/// A payload after encoding: what the receiver decodes and how many bytes crossed the link.
#[derive(Clone, Debug)]
pub(crate) struct Encoded {
    /// The values as the receiver decodes them (with the encoding's error).
    pub values: Params,
    /// The exact size of the encoded payload in bytes.
    pub bytes: u64,
}

/// A sender's side of the wire: the encoding, the tensor layout of the vectors it sends,
/// the random stream stochastic rounding draws from, and top-k's error feedback.
#[derive(Clone, Debug)]
pub(crate) struct Encoder {
    encoding: Encoding,
    layout: Arc<[usize]>,
    rng: SimRng,
    /// Per slot, what earlier top-k updates left unsent.
    residuals: Vec<Vec<f32>>,
}

impl Encoder {
    /// An encoder for vectors made of tensors of the lengths in `layout`.
    pub(crate) fn new(encoding: Encoding, layout: Arc<[usize]>, rng: SimRng) -> Self {
        Self {
            encoding,
            layout,
            rng,
            residuals: Vec::new(),
        }
    }

    /// Encodes a model (the downlink): the receiver needs nothing but the message.
    ///
    /// # Panics
    ///
    /// For top-k, which needs a reference model; scenarios reject it on the downlink.
    pub(crate) fn encode_model(&mut self, values: &[f32]) -> Encoded {
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
    pub(crate) fn encode_update(&mut self, slot: usize, values: &[f32], base: &[f32]) -> Encoded {
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
    #[cfg(test)]
    fn residual(&self, slot: usize) -> &[f32] {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{ActorKey, stream};
    use crate::wire::Rounding;

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

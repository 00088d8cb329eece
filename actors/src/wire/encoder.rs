//! A sender's side of the wire: encodes models and updates, keeps top-k's residuals.

use std::sync::Arc;

use super::Encoding;
use super::quantize::{quantize_int8, round_float};
use super::topk::top_k;
use crate::learner::Params;
use crate::rng::Stream;

/// A payload after encoding: what the receiver decodes and how many bytes crossed the link.
#[derive(Clone, Debug)]
pub(crate) struct Encoded {
    /// The values as the receiver decodes them (with the encoding's error).
    pub values: Params,
    /// The exact size of the encoded payload in bytes.
    pub bytes: u64,
}

/// One way of the wire: the encoding and the tensor layout of the vectors it carries,
/// shared by every sender that way.
#[derive(Clone, Debug)]
pub(crate) struct Encoder {
    encoding: Encoding,
    layout: Arc<[usize]>,
}

/// What a sender keeps between messages: the random stream stochastic rounding draws
/// from, and top-k's error feedback (empty for every other encoding).
#[derive(Clone, Debug)]
pub(crate) struct Sender {
    rng: Stream,
    /// Per slot, what earlier top-k updates left unsent.
    residuals: Vec<Vec<f32>>,
}

impl Sender {
    /// A sender drawing from `rng`.
    pub(crate) fn new(rng: Stream) -> Self {
        Self {
            rng,
            residuals: Vec::new(),
        }
    }

    /// What top-k has left unsent for `slot` (empty before its first update).
    #[cfg(test)]
    fn residual(&self, slot: usize) -> &[f32] {
        self.residuals.get(slot).map_or(&[], Vec::as_slice)
    }
}

impl Encoder {
    /// An encoder for vectors made of tensors of the lengths in `layout`.
    pub(crate) fn new(encoding: Encoding, layout: Arc<[usize]>) -> Self {
        Self { encoding, layout }
    }

    /// Whether updates are encoded against the model the sender received.
    pub(crate) fn encodes_delta(&self) -> bool {
        self.encoding.encodes_delta()
    }

    /// Encodes a model (the downlink): the receiver needs nothing but the message.
    ///
    /// # Panics
    ///
    /// For top-k, which needs a reference model; scenarios reject it on the downlink.
    pub(crate) fn encode_model(&self, sender: &mut Sender, values: &Params) -> Encoded {
        assert!(
            !self.encoding.needs_reference(),
            "{:?} cannot encode a model without a reference",
            self.encoding
        );
        let bytes = self.bytes(values.len());
        if self.encoding == Encoding::F32 {
            // Lossless: the receiver gets the very values, shared.
            return Encoded {
                values: values.clone(),
                bytes,
            };
        }
        let mut v = values.to_vec();
        match self.encoding {
            Encoding::Int8(rounding) => {
                sender
                    .rng
                    .draw(|rng| quantize_int8(&mut v, &self.layout, rounding, rng));
            }
            e => round_float(e, &mut v),
        }
        Encoded {
            values: Arc::new(v),
            bytes,
        }
    }

    /// Encodes slot `slot`'s trained `values`, which started from `base` (the model the
    /// client received, which only delta encodings read): the decoded values are what
    /// the server reconstructs.
    pub(crate) fn encode_update(
        &self,
        sender: &mut Sender,
        slot: usize,
        mut values: Vec<f32>,
        base: Option<&[f32]>,
    ) -> Encoded {
        let bytes = self.bytes(values.len());
        let Some(base) = base.filter(|_| self.encoding.encodes_delta()) else {
            round_float(self.encoding, &mut values);
            return Encoded {
                values: Arc::new(values),
                bytes,
            };
        };
        assert_eq!(values.len(), base.len(), "update and base differ in length");
        let mut delta: Vec<f32> = values.iter().zip(base).map(|(v, b)| v - b).collect();
        match self.encoding {
            Encoding::Int8(rounding) => {
                sender
                    .rng
                    .draw(|rng| quantize_int8(&mut delta, &self.layout, rounding, rng));
            }
            Encoding::TopK(fraction) => {
                if sender.residuals.len() <= slot {
                    sender.residuals.resize(slot + 1, Vec::new());
                }
                let residual = &mut sender.residuals[slot];
                residual.resize(delta.len(), 0.0);
                top_k(&mut delta, residual, Encoding::kept(fraction, values.len()));
            }
            e => unreachable!("{e:?} encodes values, not deltas"),
        }
        let decoded = base.iter().zip(&delta).map(|(b, d)| b + d).collect();
        Encoded {
            values: Arc::new(decoded),
            bytes,
        }
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
    use crate::rng::ActorKey;
    use crate::wire::Rounding;

    /// An encoder and a sender that encodes models with it.
    struct Wire(Encoder, Sender);

    impl Wire {
        fn encode_model(&mut self, v: &[f32]) -> Encoded {
            self.0.encode_model(&mut self.1, &Arc::new(v.to_vec()))
        }

        fn encode_update(&mut self, slot: usize, v: &[f32], base: &[f32]) -> Encoded {
            self.0
                .encode_update(&mut self.1, slot, v.to_vec(), Some(base))
        }

        fn residual(&self, slot: usize) -> &[f32] {
            self.1.residual(slot)
        }
    }

    fn encoder(encoding: Encoding, layout: &[usize]) -> Wire {
        Wire(
            Encoder::new(encoding, layout.into()),
            Sender::new(Stream::new(7, ActorKey::Server, "wire")),
        )
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

//! Pixel storage: decoded images stay one byte per channel and are normalised as they are
//! read, so a data set costs its raw size in memory; images a domain shift produced are
//! floats already.

use std::borrow::Cow;

use super::{MEAN, STD};

/// The pixels of a data set, channel-interleaved, image after image.
#[derive(Clone, Debug, PartialEq)]
pub enum Pixels {
    /// Raw bytes, normalised on read: `(b / 255 - MEAN) / STD`.
    Bytes(Vec<u8>),
    /// Values normalised already.
    Floats(Vec<f32>),
}

/// The normalised value of a raw byte.
pub(super) fn normalise(b: u8) -> f32 {
    (b as f32 / 255.0 - MEAN) / STD
}

impl Pixels {
    /// Number of values (images x side x side x channels).
    pub fn len(&self) -> usize {
        match self {
            Pixels::Bytes(b) => b.len(),
            Pixels::Floats(f) => f.len(),
        }
    }

    /// Whether there is no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The normalised values `range`, borrowed when they are floats already.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Cow<'_, [f32]> {
        match self {
            Pixels::Bytes(b) => Cow::Owned(b[range].iter().map(|&v| normalise(v)).collect()),
            Pixels::Floats(f) => Cow::Borrowed(&f[range]),
        }
    }

    /// Appends the normalised values `range` to `out`, with no copy in between (the
    /// training batches' hot path).
    pub(crate) fn extend_normalised(&self, out: &mut Vec<f32>, range: std::ops::Range<usize>) {
        match self {
            Pixels::Bytes(b) => out.extend(b[range].iter().map(|&v| normalise(v))),
            Pixels::Floats(f) => out.extend_from_slice(&f[range]),
        }
    }

    /// Every normalised value, in order.
    pub fn values(&self) -> impl Iterator<Item = f32> + '_ {
        let (bytes, floats) = match self {
            Pixels::Bytes(b) => (&b[..], &[][..]),
            Pixels::Floats(f) => (&[][..], &f[..]),
        };
        bytes
            .iter()
            .map(|&v| normalise(v))
            .chain(floats.iter().copied())
    }

    /// The values of the images `indices` (each `len` values), in that order.
    pub(super) fn gather(&self, indices: &[u32], len: usize) -> Pixels {
        let take = |i: &u32| *i as usize * len..(*i as usize + 1) * len;
        match self {
            Pixels::Bytes(b) => {
                Pixels::Bytes(indices.iter().flat_map(|i| &b[take(i)]).copied().collect())
            }
            Pixels::Floats(f) => {
                Pixels::Floats(indices.iter().flat_map(|i| &f[take(i)]).copied().collect())
            }
        }
    }

    /// `parts` one after another: bytes while every part is bytes, else floats.
    pub(super) fn concat(parts: Vec<Pixels>) -> Pixels {
        if parts.iter().all(|p| matches!(p, Pixels::Bytes(_))) {
            Pixels::Bytes(
                parts
                    .into_iter()
                    .flat_map(|p| match p {
                        Pixels::Bytes(b) => b,
                        Pixels::Floats(_) => unreachable!("all bytes"),
                    })
                    .collect(),
            )
        } else {
            let mut out = Vec::with_capacity(parts.iter().map(Pixels::len).sum());
            for p in &parts {
                out.extend(p.values());
            }
            Pixels::Floats(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_as_their_normalised_values() {
        let bytes = Pixels::Bytes(vec![0, 128, 255]);
        let want: Vec<f32> = [0u8, 128, 255]
            .iter()
            .map(|&b| (b as f32 / 255.0 - MEAN) / STD)
            .collect();
        assert_eq!(bytes.values().collect::<Vec<_>>(), want);
        assert_eq!(&*bytes.slice(1..3), &want[1..]);
        let mut out = vec![7.0];
        bytes.extend_normalised(&mut out, 1..3);
        assert_eq!(out, [&[7.0], &want[1..]].concat());
        let mixed = Pixels::concat(vec![bytes.clone(), Pixels::Floats(vec![9.0])]);
        assert_eq!(mixed, Pixels::Floats([&want[..], &[9.0]].concat()));
        assert_eq!(
            Pixels::concat(vec![bytes.clone(), bytes]),
            Pixels::Bytes(vec![0, 128, 255, 0, 128, 255])
        );
    }
}

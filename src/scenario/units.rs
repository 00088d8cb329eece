//! Quantities written with their units: durations ("250ms"), rates ("20Mbit/s") and
//! device speeds ("150 samples/s", "2.5 GFLOP/s"). Each keeps the text it was written as, so a resolved
//! scenario reads back exactly as the user wrote it.

use std::fmt;
use std::marker::PhantomData;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A kind of quantity: its base unit and the unit suffixes it accepts.
pub trait Unit {
    /// What the quantity is, for error messages.
    const WHAT: &'static str;
    /// Accepted suffixes and their factor to the base unit.
    const UNITS: &'static [(&'static str, f64)];
    /// A value as a user would write one, for error messages.
    const EXAMPLE: &'static str;
}

/// Seconds.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Secs;
impl Unit for Secs {
    const WHAT: &'static str = "a duration";
    const EXAMPLE: &'static str = "250ms";
    const UNITS: &'static [(&'static str, f64)] = &[
        ("us", 1e-6),
        ("µs", 1e-6),
        ("ms", 1e-3),
        ("s", 1.0),
        ("m", 60.0),
        ("min", 60.0),
        ("h", 3600.0),
        ("d", 86400.0),
    ];
}

/// Bits per second.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct BitRate;
impl Unit for BitRate {
    const WHAT: &'static str = "a rate";
    const EXAMPLE: &'static str = "20Mbit/s";
    const UNITS: &'static [(&'static str, f64)] = &[
        ("bit/s", 1.0),
        ("kbit/s", 1e3),
        ("Mbit/s", 1e6),
        ("Gbit/s", 1e9),
        ("B/s", 8.0),
        ("kB/s", 8e3),
        ("MB/s", 8e6),
        ("GB/s", 8e9),
    ];
}

/// A device's training throughput: samples of the scenario's model per second, or
/// floating-point operations per second (see [`Quantity::counts_flops`]).
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Throughput;
impl Unit for Throughput {
    const WHAT: &'static str = "a speed";
    const EXAMPLE: &'static str = "150 samples/s";
    const UNITS: &'static [(&'static str, f64)] = &[
        ("samples/s", 1.0),
        ("FLOP/s", 1.0),
        ("kFLOP/s", 1e3),
        ("MFLOP/s", 1e6),
        ("GFLOP/s", 1e9),
        ("TFLOP/s", 1e12),
    ];
}

/// Floating-point operations (an amount of work, as `"0.6 GFLOP"`).
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Flop;
impl Unit for Flop {
    const WHAT: &'static str = "an amount of work";
    const EXAMPLE: &'static str = "0.6 GFLOP";
    const UNITS: &'static [(&'static str, f64)] = &[
        ("FLOP", 1.0),
        ("kFLOP", 1e3),
        ("MFLOP", 1e6),
        ("GFLOP", 1e9),
        ("TFLOP", 1e12),
    ];
}

/// Bytes of memory.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Bytes;
impl Unit for Bytes {
    const WHAT: &'static str = "a size";
    const EXAMPLE: &'static str = "20MB";
    const UNITS: &'static [(&'static str, f64)] = &[
        ("B", 1.0),
        ("kB", 1e3),
        ("MB", 1e6),
        ("GB", 1e9),
        ("KiB", 1024.0),
        ("MiB", 1048576.0),
        ("GiB", 1073741824.0),
    ];
}

/// A non-negative quantity of unit `U`, in base units, with its original text.
#[derive(Clone, Debug, PartialEq)]
pub struct Quantity<U> {
    value: f64,
    text: String,
    unit: PhantomData<U>,
}

/// A duration such as `"250ms"` or `"2h"`.
pub type Duration = Quantity<Secs>;
/// A bandwidth or capacity such as `"20Mbit/s"`.
pub type Bandwidth = Quantity<BitRate>;
/// A memory size such as `"512MB"`.
pub type Size = Quantity<Bytes>;
/// An amount of floating-point work such as `"0.6 GFLOP"`.
pub type FlopCount = Quantity<Flop>;
/// A device speed such as `"150 samples/s"` or `"2.5 GFLOP/s"`.
pub type Speed = Quantity<Throughput>;

impl Speed {
    /// Whether the speed counts floating-point operations rather than samples.
    pub fn counts_flops(&self) -> bool {
        self.text.trim_end().ends_with("FLOP/s")
    }
}

impl<U: Unit> Quantity<U> {
    /// The value in the base unit (seconds, bits/s, samples/s or FLOP/s).
    pub fn value(&self) -> f64 {
        self.value
    }

    /// Parses `"<number><unit>"`; spaces between number and unit are allowed.
    pub fn parse(text: &str) -> Result<Self, UnitError> {
        let t = text.trim();
        let split = t
            .find(|c: char| {
                !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E')
            })
            .unwrap_or(t.len());
        // "e" may also start no unit we know; back off if the number does not parse.
        let (num, unit) = t.split_at(split);
        let unit = unit.trim();
        let expected = || UnitError::Expected {
            what: U::WHAT,
            example: U::EXAMPLE.to_string(),
            units: U::UNITS
                .iter()
                .map(|(u, _)| *u)
                .collect::<Vec<_>>()
                .join(", "),
            text: text.to_string(),
        };
        let number: f64 = num.parse().map_err(|_| expected())?;
        let factor = U::UNITS
            .iter()
            .find(|(u, _)| *u == unit)
            .map(|(_, f)| *f)
            .ok_or_else(expected)?;
        if !(number * factor).is_finite() {
            return Err(expected());
        }
        if number < 0.0 {
            return Err(UnitError::Negative {
                what: U::WHAT,
                text: text.to_string(),
            });
        }
        Ok(Self {
            value: number * factor,
            text: text.to_string(),
            unit: PhantomData,
        })
    }
}

/// Why a quantity's text does not parse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UnitError {
    /// Not a number followed by a known unit.
    #[error("expected {what} like \"{example}\" (units: {units}), got \"{text}\"")]
    Expected {
        /// What kind of quantity, e.g. "a duration".
        what: &'static str,
        /// A valid example.
        example: String,
        /// The accepted units.
        units: String,
        /// The text as written.
        text: String,
    },
    /// A negative amount.
    #[error("{what} must not be negative, got \"{text}\"")]
    Negative {
        /// What kind of quantity.
        what: &'static str,
        /// The text as written.
        text: String,
    },
}

impl<U> fmt::Display for Quantity<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl<U> Serialize for Quantity<U> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de, U: Unit> Deserialize<'de> for Quantity<U> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<U>(PhantomData<U>);
        impl<U: Unit> de::Visitor<'_> for V<U> {
            type Value = Quantity<U>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{} as a string with its unit", U::WHAT)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Quantity<U>, E> {
                Quantity::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(Duration::parse("250ms").unwrap().value(), 0.25);
        assert_eq!(Duration::parse("2h").unwrap().value(), 7200.0);
        assert_eq!(Duration::parse("1.5 s").unwrap().value(), 1.5);
        assert_eq!(Bandwidth::parse("20Mbit/s").unwrap().value(), 20e6);
        assert_eq!(Bandwidth::parse("1 MB/s").unwrap().value(), 8e6);
        assert_eq!(Speed::parse("150 samples/s").unwrap().value(), 150.0);
        let flops = Speed::parse("2.5 GFLOP/s").unwrap();
        assert_eq!(flops.value(), 2.5e9);
        assert!(flops.counts_flops());
        assert!(!Speed::parse("150 samples/s").unwrap().counts_flops());
    }

    #[test]
    fn rejects_bad_text() {
        assert!(
            Duration::parse("250")
                .unwrap_err()
                .to_string()
                .contains("units: us")
        );
        assert!(
            Bandwidth::parse("20 Mbps")
                .unwrap_err()
                .to_string()
                .contains("Mbit/s")
        );
        assert!(
            Duration::parse("-1s")
                .unwrap_err()
                .to_string()
                .contains("negative")
        );
        assert!(Speed::parse("fast").is_err());
    }
}

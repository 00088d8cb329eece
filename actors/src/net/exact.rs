//! Sums that do not drift: double-double accumulation of many f64 terms.

use std::cmp::Ordering;

/// A running sum kept as the rounded sum and its rounding error (a double-double: about
/// 106 bits of precision), so that millions of additions and subtractions keep it exact
/// to far below a bit, and differences of two such sums are taken at full precision.
#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub(crate) struct Exact {
    hi: f64,
    lo: f64,
}

impl Exact {
    /// A sum holding `value`.
    #[cfg(test)]
    fn of(value: f64) -> Self {
        Self { hi: value, lo: 0.0 }
    }

    /// Adds `x`.
    pub(crate) fn add(&mut self, x: f64) {
        let (s, e) = two_sum(self.hi, x);
        let (hi, lo) = fast_two_sum(s, self.lo + e);
        *self = Self { hi, lo };
    }

    /// `self + x`.
    pub(crate) fn plus(mut self, x: f64) -> Self {
        self.add(x);
        self
    }

    /// `self - other`, rounded once to f64.
    pub(crate) fn minus(self, other: Exact) -> f64 {
        let (s, e) = two_sum(self.hi, -other.hi);
        s + (e + (self.lo - other.lo))
    }

    /// The sum, rounded to f64.
    pub(crate) fn value(self) -> f64 {
        self.hi + self.lo
    }
}

impl PartialOrd for Exact {
    /// Normalised sums compare as their high parts, then their low parts.
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match self.hi.partial_cmp(&other.hi)? {
            Ordering::Equal => self.lo.partial_cmp(&other.lo),
            o => Some(o),
        }
    }
}

/// `a + b` and its rounding error, exactly (Knuth).
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
}

/// `a + b` and its rounding error, exactly, when `|a| >= |b|` (Dekker).
fn fast_two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    (s, b - (s - a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_small_terms_on_a_large_sum_do_not_drift() {
        // A million additions of 0.1 onto 1e12, then their removal: plain f64 loses the
        // small terms entirely; the exact sum gets back to 1e12 and knows their total.
        let mut exact = Exact::of(1e12);
        let mut plain = 1e12f64;
        let start = exact;
        for _ in 0..1_000_000 {
            exact.add(0.1);
            plain += 0.1;
        }
        assert!((exact.minus(start) - 100_000.0).abs() < 1e-6);
        assert!((plain - 1e12 - 100_000.0).abs() > 1e-3);
        for _ in 0..1_000_000 {
            exact.add(-0.1);
        }
        assert!(exact.minus(start).abs() < 1e-9);
        assert!(start < exact.plus(1e-3) && exact.plus(-1e-3) < start);
    }
}

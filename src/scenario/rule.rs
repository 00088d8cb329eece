//! What a number in a scenario must be, said once: each rule checks a value and words
//! its own message, so that every field breaking the same rule reads the same.

/// A rule a numeric field must follow.
#[derive(Copy, Clone, Debug, PartialEq)]
pub(crate) enum Rule {
    /// A count of at least 1.
    AtLeastOne,
    /// A count in `1..=max`.
    UpTo(usize),
    /// A finite number above zero.
    Positive,
    /// A finite number not below zero.
    NonNegative,
    /// In `(0, 1]`: a share that cannot be nothing.
    Share,
    /// In `[0, 1)`: a fraction that cannot be everything.
    Fraction,
    /// In `(0, 1)`: some, but not all.
    Part,
}

impl Rule {
    /// Whether `value` follows the rule (NaN follows none).
    pub(crate) fn holds(self, value: f64) -> bool {
        match self {
            Rule::AtLeastOne => value >= 1.0,
            Rule::UpTo(max) => value >= 1.0 && value <= max as f64,
            Rule::Positive => value.is_finite() && value > 0.0,
            Rule::NonNegative => value.is_finite() && value >= 0.0,
            Rule::Share => value > 0.0 && value <= 1.0,
            Rule::Fraction => (0.0..1.0).contains(&value),
            Rule::Part => value > 0.0 && value < 1.0,
        }
    }

    /// What the rule asks, for a field that holds `value`.
    pub(crate) fn message(self, value: f64) -> String {
        match self {
            Rule::AtLeastOne => "must be at least 1".into(),
            Rule::UpTo(max) => format!("must be in 1..={max}, got {value}"),
            Rule::Positive => format!("must be > 0, got {value}"),
            Rule::NonNegative => format!("must be >= 0, got {value}"),
            Rule::Share => format!("must be in (0, 1], got {value}"),
            Rule::Fraction => format!("must be in [0, 1), got {value}"),
            Rule::Part => format!("must be in (0, 1), got {value}"),
        }
    }
}

/// A number a rule can judge: counts and floats alike.
pub(crate) trait Number: Copy {
    /// The value as a float (exact for every count a scenario can hold).
    fn as_f64(self) -> f64;
}

impl Number for usize {
    fn as_f64(self) -> f64 {
        self as f64
    }
}

impl Number for u32 {
    fn as_f64(self) -> f64 {
        self as f64
    }
}

impl Number for f64 {
    fn as_f64(self) -> f64 {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_word_their_bounds() {
        assert!(Rule::Positive.holds(1e-9) && !Rule::Positive.holds(0.0));
        assert!(!Rule::Positive.holds(f64::INFINITY) && !Rule::Positive.holds(f64::NAN));
        assert!(Rule::Fraction.holds(0.0) && !Rule::Fraction.holds(1.0));
        assert!(Rule::Share.holds(1.0) && !Rule::Share.holds(0.0));
        assert!(Rule::UpTo(4).holds(4.0) && !Rule::UpTo(4).holds(0.0));
        assert_eq!(Rule::Share.message(1.5), "must be in (0, 1], got 1.5");
        assert_eq!(Rule::Positive.message(-1.0), "must be > 0, got -1");
        assert_eq!(Rule::UpTo(4).message(5.0), "must be in 1..=4, got 5");
        assert_eq!(Rule::AtLeastOne.message(0.0), "must be at least 1");
    }
}

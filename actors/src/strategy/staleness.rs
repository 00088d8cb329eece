//! Staleness weighting for asynchronous aggregation (Xie et al. 2019, section 5.2).

use serde::{Deserialize, Serialize};

/// `s(τ)`: how much an update that is `τ` versions old still counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Staleness {
    /// `s(τ) = 1`.
    Constant,
    /// `s(τ) = (1 + τ)^-exponent`.
    Polynomial {
        /// How fast the weight decays.
        exponent: f64,
    },
    /// `s(τ) = 1` for `τ <= b`, else `1 / (a (τ - b) + 1)`.
    Hinge {
        /// Slope of the decay past `b`.
        a: f64,
        /// Staleness up to which updates count fully.
        b: f64,
    },
}

impl Staleness {
    /// The weight of an update `tau` versions old.
    ///
    /// ```
    /// use flotilla_actors::strategy::Staleness;
    /// assert_eq!(Staleness::Polynomial { exponent: 0.5 }.weight(3), 0.5);
    /// assert_eq!(Staleness::Hinge { a: 2.0, b: 1.0 }.weight(1), 1.0);
    /// assert_eq!(Staleness::Hinge { a: 2.0, b: 1.0 }.weight(3), 0.2);
    /// ```
    pub fn weight(&self, tau: u64) -> f64 {
        let t = tau as f64;
        match *self {
            Staleness::Constant => 1.0,
            Staleness::Polynomial { exponent } => (1.0 + t).powf(-exponent),
            Staleness::Hinge { a, b } => {
                if t <= b {
                    1.0
                } else {
                    1.0 / (a * (t - b) + 1.0)
                }
            }
        }
    }
}

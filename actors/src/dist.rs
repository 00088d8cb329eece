//! Parameter distributions for devices and links, sampled from named streams.

use rand::Rng;
use rand_distr::{Distribution, Exp, LogNormal, Normal};
use serde::{Deserialize, Serialize};

/// A distribution of a positive quantity (seconds, bits per second, samples per second).
///
/// Draws are clamped into the range the caller gives, so a Normal latency never goes
/// negative and a bandwidth never reaches zero.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Dist {
    /// Always `value`.
    Const(f64),
    /// Uniform on `[low, high]`.
    Uniform {
        /// Smallest value.
        low: f64,
        /// Largest value.
        high: f64,
    },
    /// Gaussian with `mean` and standard deviation `std`.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        std: f64,
    },
    /// Log-normal with the given median (`exp(mu)`) and log-space standard deviation.
    LogNormal {
        /// Median, `exp(mu)`.
        median: f64,
        /// Standard deviation of the logarithm.
        sigma: f64,
    },
    /// Exponential with the given mean.
    Exponential {
        /// Mean.
        mean: f64,
    },
    /// Pareto (type I) with minimum `scale` and tail index `shape`: heavy-tailed stragglers.
    Pareto {
        /// Smallest value.
        scale: f64,
        /// Tail index: the smaller, the heavier the tail.
        shape: f64,
    },
}

/// Why a distribution's parameters are invalid.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DistError {
    /// A parameter is infinite or not a number.
    #[error("{name} must be a finite number, got {value}")]
    NotFinite {
        /// The parameter.
        name: &'static str,
        /// Its value.
        value: f64,
    },
    /// A parameter that must not be negative is.
    #[error("{name} must be >= 0, got {value}")]
    Negative {
        /// The parameter.
        name: &'static str,
        /// Its value.
        value: f64,
    },
    /// A parameter that must be positive is not.
    #[error("{name} must be > 0, got {value}")]
    NotPositive {
        /// The parameter.
        name: &'static str,
        /// Its value.
        value: f64,
    },
    /// A uniform range whose bounds are the wrong way round.
    #[error("low ({low}) must not exceed high ({high})")]
    EmptyRange {
        /// The lower bound.
        low: f64,
        /// The upper bound.
        high: f64,
    },
}

impl Dist {
    /// Checks the parameters, so that sampling can never fail later.
    pub fn validate(&self) -> Result<(), DistError> {
        fn finite(name: &'static str, value: f64) -> Result<f64, DistError> {
            if value.is_finite() {
                Ok(value)
            } else {
                Err(DistError::NotFinite { name, value })
            }
        }
        fn positive(name: &'static str, value: f64) -> Result<(), DistError> {
            if finite(name, value)? > 0.0 {
                Ok(())
            } else {
                Err(DistError::NotPositive { name, value })
            }
        }
        match *self {
            Dist::Const(v) => {
                finite("value", v)?;
            }
            Dist::Uniform { low, high } => {
                finite("low", low)?;
                finite("high", high)?;
                if low > high {
                    return Err(DistError::EmptyRange { low, high });
                }
            }
            Dist::Normal { mean, std } => {
                finite("mean", mean)?;
                if finite("std", std)? < 0.0 {
                    return Err(DistError::Negative {
                        name: "std",
                        value: std,
                    });
                }
            }
            Dist::LogNormal { median, sigma } => {
                positive("median", median)?;
                positive("sigma", sigma)?;
            }
            Dist::Exponential { mean } => positive("mean", mean)?,
            Dist::Pareto { scale, shape } => {
                positive("scale", scale)?;
                positive("shape", shape)?;
            }
        }
        Ok(())
    }

    /// One draw, clamped into `[min, max]`.
    ///
    /// Panics only if the distribution was not [validated](Dist::validate).
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R, min: f64, max: f64) -> f64 {
        let raw = match *self {
            Dist::Const(v) => v,
            Dist::Uniform { low, high } => {
                if low == high {
                    low
                } else {
                    rng.random_range(low..=high)
                }
            }
            Dist::Normal { mean, std } => Normal::new(mean, std).expect("validated").sample(rng),
            Dist::LogNormal { median, sigma } => LogNormal::new(median.ln(), sigma)
                .expect("validated")
                .sample(rng),
            Dist::Exponential { mean } => Exp::new(1.0 / mean).expect("validated").sample(rng),
            Dist::Pareto { scale, shape } => rand_distr::Pareto::new(scale, shape)
                .expect("validated")
                .sample(rng),
        };
        raw.clamp(min, max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{ActorKey, stream};

    #[test]
    fn invalid_parameters_are_rejected() {
        assert!(
            Dist::Normal {
                mean: 1.0,
                std: -0.1
            }
            .validate()
            .is_err()
        );
        assert!(
            Dist::LogNormal {
                median: 1.0,
                sigma: 0.0
            }
            .validate()
            .is_err()
        );
        assert!(
            Dist::Uniform {
                low: 2.0,
                high: 1.0
            }
            .validate()
            .is_err()
        );
        assert!(Dist::Exponential { mean: 0.0 }.validate().is_err());
        assert!(Dist::Const(f64::NAN).validate().is_err());
        assert!(
            Dist::Normal {
                mean: 1.0,
                std: 0.0
            }
            .validate()
            .is_ok()
        );
    }

    #[test]
    fn draws_are_clamped_and_centred() {
        let mut rng = stream(1, ActorKey::Server, "t");
        let d = Dist::Normal {
            mean: 0.0,
            std: 1.0,
        };
        let xs: Vec<f64> = (0..10_000).map(|_| d.sample(&mut rng, 0.0, 10.0)).collect();
        assert!(xs.iter().all(|&x| x >= 0.0));
        let ln = Dist::LogNormal {
            median: 5.0,
            sigma: 0.5,
        };
        let mut ys: Vec<f64> = (0..10_001)
            .map(|_| ln.sample(&mut rng, 0.0, f64::MAX))
            .collect();
        ys.sort_by(f64::total_cmp);
        assert!((ys[5000] - 5.0).abs() < 0.15, "median {}", ys[5000]);
    }
}

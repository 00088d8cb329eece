//! Values that follow simulated time: piecewise-constant steps, and rates built on them.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::time::SimTime;

/// A piecewise-constant value of simulated time: each point's value holds from its time
/// until the next point's; the first value also holds before its time.
///
/// ```
/// use flotilla_actors::net::Steps;
/// use flotilla_actors::SimTime;
/// let s = Steps::new(vec![(SimTime(0), 50e6), (SimTime(60_000_000), 2e6)]).unwrap();
/// assert_eq!(s.at(SimTime(59_999_999)), 50e6);
/// assert_eq!(s.at(SimTime(60_000_000)), 2e6);
/// assert_eq!(s.next_change_after(SimTime(1)), Some(SimTime(60_000_000)));
/// assert_eq!(s.next_change_after(SimTime(60_000_000)), None);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Steps(Arc<[(SimTime, f64)]>);

/// Why points cannot make [`Steps`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StepsError {
    /// No point at all.
    #[error("needs at least one (time, value) point")]
    Empty,
    /// A point that is not after the one before it.
    #[error("times must increase: {later} is not after {earlier}")]
    Unordered {
        /// The earlier point's time.
        earlier: SimTime,
        /// The point that should come after it.
        later: SimTime,
    },
}

impl Steps {
    /// Steps through `points`, which must be non-empty with strictly increasing times.
    pub fn new(points: Vec<(SimTime, f64)>) -> Result<Self, StepsError> {
        if points.is_empty() {
            return Err(StepsError::Empty);
        }
        if let Some(w) = points.windows(2).find(|w| w[1].0 <= w[0].0) {
            return Err(StepsError::Unordered {
                earlier: w[0].0,
                later: w[1].0,
            });
        }
        Ok(Self(points.into()))
    }

    /// The value at `t`.
    pub fn at(&self, t: SimTime) -> f64 {
        let i = self.0.partition_point(|(time, _)| *time <= t);
        self.0[i.saturating_sub(1)].1
    }

    /// The first time after `t` at which the value changes.
    pub fn next_change_after(&self, t: SimTime) -> Option<SimTime> {
        let i = self.0.partition_point(|(time, _)| *time <= t);
        self.0.get(i).map(|(time, _)| *time)
    }

    /// The points, in order.
    pub fn points(&self) -> &[(SimTime, f64)] {
        &self.0
    }
}

/// A rate over time: fixed, or following steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Rate {
    /// The same rate at all times.
    Fixed(f64),
    /// A rate that follows its steps.
    Steps(Steps),
}

impl Rate {
    /// The rate at `t`.
    pub fn at(&self, t: SimTime) -> f64 {
        match self {
            Rate::Fixed(v) => *v,
            Rate::Steps(s) => s.at(t),
        }
    }

    /// When the rate next changes after `t`.
    pub fn next_change_after(&self, t: SimTime) -> Option<SimTime> {
        match self {
            Rate::Fixed(_) => None,
            Rate::Steps(s) => s.next_change_after(t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_reject_unordered_times() {
        assert_eq!(Steps::new(vec![]), Err(StepsError::Empty));
        assert!(matches!(
            Steps::new(vec![(SimTime(5), 1.0), (SimTime(5), 2.0)]),
            Err(StepsError::Unordered { .. })
        ));
    }
}

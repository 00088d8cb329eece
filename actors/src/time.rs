//! Simulated time: integer microseconds, so that event order and durations are exact.

use std::fmt;
use std::ops::{Add, AddAssign, Sub};

use serde::{Deserialize, Serialize};

/// A point in (or span of) simulated time, in whole microseconds.
///
/// Integer time keeps the event order exact and reproducible: two runs of the same scenario
/// agree on every timestamp to the microsecond.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct SimTime(pub u64);

impl SimTime {
    /// The start of every simulation.
    pub const ZERO: SimTime = SimTime(0);
    /// Later than any event a simulation can schedule.
    pub const MAX: SimTime = SimTime(u64::MAX);

    /// A time from whole microseconds.
    pub const fn from_micros(us: u64) -> Self {
        SimTime(us)
    }

    /// A time from seconds, rounded up to the next microsecond so that no duration
    /// is ever shortened by rounding.
    pub fn from_secs_ceil(secs: f64) -> Self {
        if !secs.is_finite() || secs <= 0.0 {
            return if secs.is_finite() || secs.is_sign_negative() {
                SimTime::ZERO
            } else {
                SimTime::MAX
            };
        }
        // Guard against values like 2.0000000000000004 µs caused by float noise.
        let us = secs * 1e6;
        let rounded = us.round();
        let us = if (us - rounded).abs() < 1e-6 {
            rounded
        } else {
            us.ceil()
        };
        if us >= u64::MAX as f64 {
            SimTime::MAX
        } else {
            SimTime(us as u64)
        }
    }

    /// Whole microseconds.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Seconds, as a float (for reports).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }

    /// `self - earlier`, or zero when `earlier` is later.
    pub fn saturating_sub(self, earlier: SimTime) -> SimTime {
        SimTime(self.0.saturating_sub(earlier.0))
    }
}

impl Add for SimTime {
    type Output = SimTime;
    fn add(self, rhs: SimTime) -> SimTime {
        SimTime(self.0.saturating_add(rhs.0))
    }
}

impl AddAssign for SimTime {
    fn add_assign(&mut self, rhs: SimTime) {
        *self = *self + rhs;
    }
}

impl Sub for SimTime {
    type Output = SimTime;
    fn sub(self, rhs: SimTime) -> SimTime {
        self.saturating_sub(rhs)
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.as_secs_f64();
        if s >= 3600.0 {
            write!(
                f,
                "{}h{:02}m{:02}s",
                self.0 / 3_600_000_000,
                (self.0 / 60_000_000) % 60,
                (self.0 / 1_000_000) % 60
            )
        } else if s >= 60.0 {
            write!(
                f,
                "{}m{:02}s",
                self.0 / 60_000_000,
                (self.0 / 1_000_000) % 60
            )
        } else {
            write!(f, "{s:.3}s")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_up_but_not_float_noise() {
        assert_eq!(SimTime::from_secs_ceil(0.25), SimTime(250_000));
        assert_eq!(SimTime::from_secs_ceil(1e-7), SimTime(1));
        assert_eq!(SimTime::from_secs_ceil(0.1 + 0.2), SimTime(300_000));
        assert_eq!(SimTime::from_secs_ceil(-1.0), SimTime::ZERO);
        assert_eq!(SimTime::from_secs_ceil(f64::INFINITY), SimTime::MAX);
    }
}

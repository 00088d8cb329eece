//! Devices: how fast a client computes, how often it drops out, when it is online.

mod availability;

pub use availability::Availability;
pub(crate) use availability::AvailabilityProcess;

use serde::{Deserialize, Serialize};

use crate::dist::Dist;
use crate::time::SimTime;

/// A device class's compute model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceSpec {
    /// Training throughput, drawn once per client, in `unit`.
    pub speed: Dist,
    /// What the speed counts.
    pub unit: SpeedUnit,
    /// Probability that a local-training job fails (the device leaves mid-job).
    pub dropout: f64,
    /// Memory a training job may use (bytes); a client whose job needs more is never
    /// selected. `None`: any job fits.
    pub memory: Option<u64>,
}

/// What a device's speed counts per second.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SpeedUnit {
    /// Training samples of the scenario's own model.
    #[default]
    Samples,
    /// Floating-point operations of training (the device's effective throughput).
    Flops,
}

/// What one local-training job asks of a device (see [`Learner::train_work`]).
///
/// [`Learner::train_work`]: crate::Learner::train_work
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Work {
    /// Samples processed (train samples x epochs, over all the client's slots).
    pub samples: u64,
    /// Floating-point operations of the job, once the device holds what it keeps
    /// between jobs.
    pub flops: u64,
    /// Floating-point operations the client's first job does on top of `flops`: what the
    /// device computes once and keeps (its samples' frozen-prefix activations).
    pub first_flops: u64,
    /// Bytes the job needs on the device.
    pub memory: u64,
}

impl Work {
    /// A job of `samples` samples, with no FLOP count and no memory need.
    pub fn samples(samples: u64) -> Self {
        Self {
            samples,
            ..Self::default()
        }
    }

    /// Simulated time of a job at `speed` in `unit`: of every job after the client's
    /// first, and of its first.
    ///
    /// ```
    /// use flotilla_actors::{SimTime, SpeedUnit, Work};
    /// let work = Work { samples: 300, flops: 6_000_000, first_flops: 1_500_000, memory: 0 };
    /// assert_eq!(work.durations(150.0, SpeedUnit::Samples), (SimTime(2_000_000), SimTime(2_000_000)));
    /// // 6 MFLOP at 4 MFLOP/s: 1.5 s, and 1.875 s with the first job's extra work.
    /// assert_eq!(work.durations(4e6, SpeedUnit::Flops), (SimTime(1_500_000), SimTime(1_875_000)));
    /// ```
    pub fn durations(&self, speed: f64, unit: SpeedUnit) -> (SimTime, SimTime) {
        let at = |amount: u64| SimTime::from_secs_ceil(amount as f64 / speed);
        match unit {
            SpeedUnit::Samples => (at(self.samples), at(self.samples)),
            SpeedUnit::Flops => (at(self.flops), at(self.flops + self.first_flops)),
        }
    }
}

/// Slowest speed a draw is clamped to, so no job takes forever.
pub(crate) const MIN_SPEED: f64 = 1e-3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compute_time_is_work_over_speed() {
        let work = Work::samples(300);
        assert_eq!(
            work.durations(150.0, SpeedUnit::Samples).0,
            SimTime(2_000_000)
        );
        // Rounded up to the next microsecond.
        let work = Work {
            flops: 1_000_001,
            ..Work::default()
        };
        assert_eq!(work.durations(1e6, SpeedUnit::Flops).0, SimTime(1_000_001));
    }
}

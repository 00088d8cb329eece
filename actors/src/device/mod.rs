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
    /// Training throughput in samples per second, drawn once per client.
    pub speed: Dist,
    /// Probability that a local-training job fails (the device leaves mid-job).
    pub dropout: f64,
}

/// Slowest speed a draw is clamped to, so no job takes forever.
pub(crate) const MIN_SPEED: f64 = 1e-3;

/// Simulated time to process `work` samples at `speed` samples per second.
pub(crate) fn compute_time(work: u64, speed: f64) -> SimTime {
    SimTime::from_secs_ceil(work as f64 / speed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compute_time_is_work_over_speed() {
        assert_eq!(compute_time(300, 150.0), SimTime(2_000_000));
    }
}

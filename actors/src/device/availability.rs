//! When a device is online: always, alternating exponential periods, or a trace.

use serde::{Deserialize, Serialize};

use crate::time::SimTime;

/// When a device is online.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Availability {
    /// Always online.
    Always,
    /// Alternating online and offline periods, exponentially distributed with these means
    /// (seconds); the first state is drawn from the stationary distribution.
    Markov {
        /// Mean online period (seconds).
        mean_on: f64,
        /// Mean offline period (seconds).
        mean_off: f64,
    },
    /// Online exactly during these `[start, end)` intervals (sorted, disjoint).
    Trace(Vec<(SimTime, SimTime)>),
}

/// A device's availability process, stepped by its client actor: whether it is online,
/// and how far through its trace it is. The plan it follows is passed to every step, so
/// that devices of one class share theirs.
#[derive(Copy, Clone, Debug)]
pub(crate) struct AvailabilityProcess {
    online: bool,
    /// Index of the next trace interval boundary to reach.
    next_interval: u32,
}

impl AvailabilityProcess {
    /// The process at time zero under `plan`: whether the device starts online, and when
    /// it first changes state (`None`: never).
    pub(crate) fn start<R: rand::Rng + ?Sized>(
        plan: &Availability,
        rng: &mut R,
    ) -> (Self, Option<SimTime>) {
        let mut p = AvailabilityProcess {
            online: true,
            next_interval: 0,
        };
        let first = match plan {
            Availability::Always => None,
            &Availability::Markov { mean_on, mean_off } => {
                p.online = rng.random::<f64>() < mean_on / (mean_on + mean_off);
                Some(p.period(plan, rng))
            }
            Availability::Trace(intervals) => match intervals.first() {
                Some(&(start, end)) if start == SimTime::ZERO => {
                    p.online = true;
                    p.next_interval = 1;
                    Some(end)
                }
                Some(&(start, _)) => {
                    p.online = false;
                    Some(start)
                }
                None => {
                    p.online = false;
                    None
                }
            },
        };
        (p, first)
    }

    /// Whether the device is online now.
    pub(crate) fn online(&self) -> bool {
        self.online
    }

    /// Flips the state at `now`; returns when it flips next under `plan` (`None`: never).
    pub(crate) fn flip<R: rand::Rng + ?Sized>(
        &mut self,
        plan: &Availability,
        now: SimTime,
        rng: &mut R,
    ) -> Option<SimTime> {
        self.online = !self.online;
        match plan {
            Availability::Always => None,
            Availability::Markov { .. } => Some(now + self.period(plan, rng)),
            Availability::Trace(intervals) => {
                if self.online {
                    // Now inside an interval: it ends at its end.
                    let i = intervals.iter().position(|&(s, _)| s == now)?;
                    self.next_interval = u32::try_from(i + 1).unwrap_or(u32::MAX);
                    Some(intervals[i].1)
                } else {
                    intervals.get(self.next_interval as usize).map(|&(s, _)| s)
                }
            }
        }
    }

    fn period<R: rand::Rng + ?Sized>(&self, plan: &Availability, rng: &mut R) -> SimTime {
        let &Availability::Markov { mean_on, mean_off } = plan else {
            return SimTime::MAX;
        };
        let mean = if self.online { mean_on } else { mean_off };
        let draw = rand_distr::Exp::new(1.0 / mean).expect("validated mean > 0");
        // At least one microsecond, so that time always moves.
        SimTime::from_secs_ceil(rand_distr::Distribution::sample(&draw, rng)).max(SimTime(1))
    }
}

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
    /// Online during these `[start, end)` intervals of every period (sorted, disjoint,
    /// within `[0, period]`): a trace that repeats, as FedScale's behaviour traces do.
    Periodic {
        /// The online intervals of one period.
        on: Vec<(SimTime, SimTime)>,
        /// The period's length (> 0).
        period: SimTime,
    },
}

/// A device's availability process, stepped by its client actor: whether it is online,
/// and how far through its trace it is. The plan it follows is passed to every step, so
/// that devices of one class share theirs.
#[derive(Copy, Clone, Debug)]
pub(crate) struct AvailabilityProcess {
    online: bool,
    /// Index of the next trace interval boundary to reach (counting over every period
    /// of a periodic plan).
    next_interval: u32,
}

/// The `k`-th online interval of a periodic plan, counting over every period; `None`
/// without intervals or past the end of time.
fn periodic(on: &[(SimTime, SimTime)], period: SimTime, k: u64) -> Option<(SimTime, SimTime)> {
    let n = on.len() as u64;
    let &(start, end) = on.get(usize::try_from(k.checked_rem(n)?).ok()?)?;
    let offset = period.0.checked_mul(k / n)?;
    Some((
        SimTime(offset.checked_add(start.0)?),
        SimTime(offset.checked_add(end.0)?),
    ))
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
            Availability::Periodic { on, period } => {
                // Skip intervals of no length at time zero.
                let k = on
                    .iter()
                    .take_while(|&&(_, end)| end == SimTime::ZERO)
                    .count();
                match periodic(on, *period, k as u64) {
                    Some((start, end)) if start == SimTime::ZERO => {
                        p.online = true;
                        p.next_interval = k as u32;
                        Some(end)
                    }
                    Some((start, _)) => {
                        p.online = false;
                        p.next_interval = k as u32;
                        Some(start)
                    }
                    None => {
                        p.online = false;
                        None
                    }
                }
            }
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
            Availability::Periodic { on, period } => {
                if self.online {
                    periodic(on, *period, u64::from(self.next_interval)).map(|(_, end)| end)
                } else {
                    // The interval that just ended is passed; an interval touching the
                    // next (or the period's end meeting the next period's start) starts
                    // again at once.
                    self.next_interval = self.next_interval.checked_add(1)?;
                    periodic(on, *period, u64::from(self.next_interval)).map(|(start, _)| start)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every change of state up to `until`: `(time, online after it)`.
    fn changes(plan: &Availability, until: SimTime) -> (bool, Vec<(SimTime, bool)>) {
        let mut rng = <crate::rng::SimRng as rand::SeedableRng>::seed_from_u64(0);
        let (mut p, mut next) = AvailabilityProcess::start(plan, &mut rng);
        let initial = p.online();
        let mut seen = Vec::new();
        while let Some(at) = next.filter(|&t| t <= until) {
            next = p.flip(plan, at, &mut rng);
            seen.push((at, p.online()));
        }
        (initial, seen)
    }

    #[test]
    fn a_periodic_plan_repeats_its_intervals_every_period() {
        let s = SimTime::from_secs_ceil;
        let plan = Availability::Periodic {
            on: vec![(s(10.0), s(20.0)), (s(50.0), s(100.0))],
            period: s(100.0),
        };
        let (initial, seen) = changes(&plan, s(260.0));
        assert!(!initial);
        let expected = [
            (10.0, true),
            (20.0, false),
            (50.0, true),
            (100.0, false),
            (110.0, true),
            (120.0, false),
            (150.0, true),
            (200.0, false),
            (210.0, true),
            (220.0, false),
            (250.0, true),
        ];
        let expected: Vec<(SimTime, bool)> = expected.iter().map(|&(t, o)| (s(t), o)).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn a_periodic_plan_online_at_zero_starts_online() {
        let s = SimTime::from_secs_ceil;
        let plan = Availability::Periodic {
            on: vec![(SimTime::ZERO, s(5.0))],
            period: s(8.0),
        };
        let (initial, seen) = changes(&plan, s(16.0));
        assert!(initial);
        let times: Vec<(f64, bool)> = seen.iter().map(|&(t, o)| (t.as_secs_f64(), o)).collect();
        assert_eq!(
            times,
            [(5.0, false), (8.0, true), (13.0, false), (16.0, true)]
        );
    }
}

//! A class's links, planned once and made for each client: shared values, each client's
//! own trace, a per-client draw scaling a shared profile, or the client's FedScale device.

use flotilla_actors::net::{LinkSpec, LinkValue, MAX_LATENCY, MIN_BANDWIDTH, Steps};
use flotilla_actors::{Dist, SimTime, client_rng};

use super::fedscale::Capacity;
use super::units::{BitRate, Secs, Unit};
use super::{DeviceClass, DistSpec, LinkSection, Loaded, ScenarioError, to_dist};
use crate::scenario::Rule;

/// How one link quantity of a class is made for each client.
enum Plan {
    /// The same for every client.
    Shared(LinkValue),
    /// Each client's own steps, by its index in the class.
    PerClient(Vec<Steps>),
    /// A value drawn once per client (from its own stream, `purpose`) times a shared
    /// profile of factors.
    Scaled {
        dist: Dist,
        profile: Steps,
        purpose: String,
        range: (f64, f64),
    },
    /// The bandwidth of the client's FedScale device.
    Device,
}

impl Plan {
    fn value(&self, seed: u64, id: usize, k: usize, device: Option<&Capacity>) -> LinkValue {
        match self {
            Plan::Shared(v) => v.clone(),
            Plan::PerClient(steps) => LinkValue::Steps(steps[k].clone()),
            Plan::Scaled {
                dist,
                profile,
                purpose,
                range,
            } => {
                let drawn = dist.sample(&mut client_rng(seed, id, purpose), range.0, range.1);
                let points = profile.points().iter().map(|&(t, f)| (t, f * drawn));
                LinkValue::Steps(Steps::new(points.collect()).expect("a profile's times"))
            }
            Plan::Device => LinkValue::Draw(Dist::Const(
                device.map_or(MIN_BANDWIDTH, |d| d.communication_kbps * 1e3),
            )),
        }
    }
}

/// One direction's plans.
struct Direction {
    latency: Plan,
    bandwidth: Plan,
    section: LinkSection,
}

/// A class's two links, planned.
pub(super) struct ClassLinks {
    up: Direction,
    down: Direction,
}

impl ClassLinks {
    /// Client `id`'s (`k`-th of its class) uplink and downlink.
    pub(super) fn client(
        &self,
        seed: u64,
        id: usize,
        k: usize,
        device: Option<&Capacity>,
    ) -> (LinkSpec, LinkSpec) {
        let make = |d: &Direction| LinkSpec {
            latency: d.latency.value(seed, id, k, device),
            bandwidth: d.bandwidth.value(seed, id, k, device),
            loss: d.section.loss,
            timeout: SimTime::from_secs_ceil(d.section.timeout.value()),
            retries: d.section.retries,
        };
        (make(&self.up), make(&self.down))
    }
}

impl Loaded {
    /// Plans class `i`'s links, reading every trace file they name once.
    pub(super) fn class_links(
        &self,
        i: usize,
        c: &DeviceClass,
    ) -> Result<ClassLinks, ScenarioError> {
        let direction = |l: &LinkSection, name: &str| -> Result<Direction, ScenarioError> {
            let at = |q: &str| format!("population[{i}].{name}.{q}");
            Ok(Direction {
                latency: self.plan::<Secs>(&l.latency, &at("latency"), c.count, false)?,
                bandwidth: self.plan::<BitRate>(&l.bandwidth, &at("bandwidth"), c.count, true)?,
                section: l.clone(),
            })
        };
        Ok(ClassLinks {
            up: direction(&c.uplink, "uplink")?,
            down: direction(&c.downlink, "downlink")?,
        })
    }

    /// How `d` makes each of `count` clients' values of `field`; a `positive` quantity (a
    /// bandwidth) must stay above zero.
    fn plan<U: Unit>(
        &self,
        d: &DistSpec<U>,
        field: &str,
        count: usize,
        positive: bool,
    ) -> Result<Plan, ScenarioError> {
        let check = |s: &Steps, what: &str| {
            if positive && s.points().iter().any(|p| !Rule::Positive.holds(p.1)) {
                return Err(self.invalid(field, format!("every {what} must be > 0")));
            }
            Ok(())
        };
        Ok(match d {
            DistSpec::Steps(points) => {
                let steps = self.steps(points, field)?;
                check(&steps, "value")?;
                Plan::Shared(LinkValue::Steps(steps))
            }
            DistSpec::Trace(file) => {
                let steps = self.read_steps::<U>(file, field)?;
                check(&steps, "value")?;
                Plan::Shared(LinkValue::Steps(steps))
            }
            DistSpec::ClientTrace(file) => {
                let all = self.read_client_steps::<U>(file, field, count)?;
                for steps in &all {
                    check(steps, "value")?;
                }
                Plan::PerClient(all)
            }
            DistSpec::Scaled(dist, file) => {
                let dist = to_dist(dist).ok_or_else(|| {
                    self.invalid(field, "Scaled draws from a distribution, not steps")
                })?;
                dist.validate().map_err(|e| self.refused(field, e))?;
                let profile = self.read_steps::<U>(file, field)?;
                check(&profile, "factor")?;
                Plan::Scaled {
                    dist,
                    profile,
                    purpose: field.to_string(),
                    range: if positive {
                        (MIN_BANDWIDTH, f64::MAX)
                    } else {
                        (0.0, MAX_LATENCY)
                    },
                }
            }
            DistSpec::Traces if positive => Plan::Device,
            DistSpec::Traces => {
                return Err(self.invalid(
                    field,
                    "FedScale's traces give no latency: give a distribution",
                ));
            }
            d => {
                let dist =
                    to_dist(d).ok_or_else(|| self.invalid(field, "must be a distribution"))?;
                dist.validate().map_err(|e| self.refused(field, e))?;
                Plan::Shared(LinkValue::Draw(dist))
            }
        })
    }
}

//! A validated scenario turned into what runs it: the engine's [`SimConfig`], and the
//! model, training and personalization settings of the ML side.

use std::sync::Arc;

use flotilla_actors::config::{Clustering, FedAsyncConfig, FedAvgConfig, FedBuffConfig};
use flotilla_actors::device::{Availability, DeviceSpec};
use flotilla_actors::net::{Rate, Steps};
use flotilla_actors::{AlgorithmSpec, ClientSpec, Dist, SimConfig, SimTime, StopRule, Wire};
use flotilla_actors::{SpeedUnit, client_rng};
use rand::Rng;

use super::traces::periodic;
use super::units::{Bandwidth, BitRate, Duration, Quantity, Unit};
use super::{
    AlgorithmSection, AvailabilitySection, DistSpec, Loaded, Personalize, ScenarioError, Schedule,
};
use crate::model::{Adaptation, PersonalStep, Personalization};
use crate::scenario::Rule;

/// Clients whose every change of state a run records, for the timeline plot.
pub(super) const TIMELINE_CLIENTS: usize = 20;

impl Loaded {
    /// The adapter, head and number of clients the model is built for.
    pub fn adaptation(&self) -> Adaptation {
        let m = &self.scenario.model;
        Adaptation {
            adapter: m.adapter.clone(),
            head: m.head.clone(),
            clients: self.scenario.data.clients,
        }
    }

    /// How clients personalize the served model before their evaluation.
    pub fn personalization(&self) -> Option<Personalization> {
        self.scenario.eval.personalize.as_ref().map(|p| match *p {
            Personalize::FineTune { steps, lr } => Personalization {
                steps,
                lr,
                head_only: false,
            },
            Personalize::FineTuneHead { steps, lr } => Personalization {
                steps,
                lr,
                head_only: true,
            },
        })
    }

    /// The clients' personalized-FL procedure, for PersA-FL.
    pub(crate) fn personal_step(&self) -> Option<PersonalStep> {
        match &self.scenario.algorithm {
            AlgorithmSection::PersAfl { personal, .. } => Some(personal.clone()),
            _ => None,
        }
    }

    /// Whether clients train one adapter per task they hold (FL-TAC).
    pub(crate) fn separate_slots(&self) -> bool {
        matches!(self.scenario.algorithm, AlgorithmSection::FlTac { .. })
    }

    /// The true task behind each client's slots.
    pub(crate) fn slot_tasks(&self) -> Vec<Vec<Option<usize>>> {
        let d = &self.scenario.data;
        crate::data::slot_tasks(&d.tasks, d.clients, self.separate_slots())
    }

    /// The engine's view of the scenario.
    pub fn sim_config(&self) -> Result<SimConfig, ScenarioError> {
        let s = &self.scenario;
        let mut clients = Vec::with_capacity(s.data.clients);
        let mut slots = self.slot_tasks().into_iter();
        for (i, c) in s.population.iter().enumerate() {
            let traces = self.class_traces(i, c)?;
            let links = self.class_links(i, c)?;
            let class_speed = to_dist(&c.speed);
            let reference = c.traces.as_ref().and_then(|t| t.reference.as_ref());
            let unit = match (&c.speed, reference) {
                (DistSpec::Traces, Some(_)) => SpeedUnit::Flops,
                (DistSpec::Traces, None) => SpeedUnit::Samples,
                (speed, _) => speed.unit().unwrap_or_default(),
            };
            let files = match &c.availability {
                AvailabilitySection::Trace { file } => Some(self.read_trace(i, file, c.count)?),
                _ => None,
            };
            for k in 0..c.count {
                let id = clients.len();
                let pick =
                    |purpose: &str, n: usize| client_rng(s.seed, id, purpose).random_range(0..n);
                let device = traces
                    .capacity
                    .as_ref()
                    .map(|all| all[pick("capacity-trace", all.len())]);
                let speed = match (&class_speed, device) {
                    (Some(d), _) => d.clone(),
                    (None, Some(d)) => Dist::Const(match reference {
                        // FLOP/s: the reference model's forward FLOPs per latency.
                        Some(r) => r.value() / (d.computation_ms / 1e3),
                        // Samples/s: FedScale's three latencies per training sample.
                        None => 1e3 / (3.0 * d.computation_ms),
                    }),
                    (None, None) => {
                        return Err(self
                            .invalid(format!("population[{i}].speed"), "must be a distribution"));
                    }
                };
                let (uplink, downlink) = links.client(s.seed, id, k, device.as_ref());
                let availability = match (&c.availability, &files, &traces.behavior) {
                    (AvailabilitySection::Markov { mean_on, mean_off }, _, _) => {
                        Availability::Markov {
                            mean_on: mean_on.value(),
                            mean_off: mean_off.value(),
                        }
                    }
                    (AvailabilitySection::Trace { .. }, Some(t), _) => {
                        Availability::Trace(t[k].clone())
                    }
                    (AvailabilitySection::Traces, _, Some(all)) => {
                        periodic(&all[pick("behavior-trace", all.len())])
                    }
                    _ => Availability::Always,
                };
                clients.push(ClientSpec {
                    class: c.class.clone(),
                    device: DeviceSpec {
                        speed,
                        unit,
                        dropout: c.dropout,
                        memory: c.memory.as_ref().map(|m| m.value() as u64),
                    },
                    availability,
                    uplink,
                    downlink,
                    slots: slots.next().unwrap_or_default(),
                });
            }
        }
        Ok(SimConfig {
            seed: s.seed,
            clients,
            ingress: self.capacity(&s.server.ingress, &s.server.ingress_schedule, "ingress")?,
            egress: self.capacity(&s.server.egress, &s.server.egress_schedule, "egress")?,
            wire: Wire {
                up: s.wire.up(),
                down: s.wire.down(),
                layout: Arc::from([]),
            },
            algorithm: algorithm_spec(&s.algorithm),
            clustering: match &s.algorithm {
                AlgorithmSection::FlTac {
                    k,
                    iterations,
                    restarts,
                    warm_start,
                    ..
                } => Some(Clustering {
                    k: *k,
                    iterations: *iterations,
                    restarts: *restarts,
                    warm_start: *warm_start,
                }),
                _ => None,
            },
            tasks: s.data.tasks.len().max(1),
            stop: StopRule {
                rounds: s.stop.rounds,
                virtual_time: s.stop.virtual_time.as_ref().map(secs),
                target_accuracy: s.stop.target_accuracy,
            },
            eval_every_rounds: match (s.eval.every_rounds, &s.eval.every) {
                (None, None) => Some(1),
                (rounds, _) => rounds,
            },
            eval_every: s.eval.every.as_ref().map(secs),
            tracked_clients: TIMELINE_CLIENTS,
        })
    }
}

impl Loaded {
    /// The server capacity `name`: fixed, scheduled, or unlimited.
    fn capacity(
        &self,
        fixed: &Option<Bandwidth>,
        schedule: &Option<Schedule<BitRate>>,
        name: &str,
    ) -> Result<Option<Rate>, ScenarioError> {
        let field = format!("server.{name}_schedule");
        let steps = match (fixed, schedule) {
            (Some(_), Some(_)) => {
                return Err(self.invalid(
                    &field,
                    format!("give server.{name} or server.{name}_schedule, not both"),
                ));
            }
            (Some(r), None) if !Rule::Positive.holds(r.value()) => {
                return Err(self.invalid(format!("server.{name}"), "must be > 0"));
            }
            (Some(r), None) => return Ok(Some(Rate::Fixed(r.value()))),
            (None, None) => return Ok(None),
            (None, Some(Schedule::Steps(points))) => self.steps(points, &field)?,
            (None, Some(Schedule::Trace(file))) => self.read_steps::<BitRate>(file, &field)?,
        };
        if steps.points().iter().any(|p| !Rule::Positive.holds(p.1)) {
            return Err(self.invalid(&field, "every capacity must be > 0"));
        }
        Ok(Some(Rate::Steps(steps)))
    }

    /// Steps through points written inline.
    pub(super) fn steps<U: Unit>(
        &self,
        points: &[(Duration, Quantity<U>)],
        field: &str,
    ) -> Result<Steps, ScenarioError> {
        Steps::new(points.iter().map(|(t, v)| (secs(t), v.value())).collect())
            .map_err(|e| self.refused(field, e))
    }
}

/// A duration as simulated time, rounded up to the microsecond.
fn secs(d: &Duration) -> SimTime {
    SimTime::from_secs_ceil(d.value())
}

/// The engine's algorithm for a scenario's (PersA-FL and FL-TAC run their server's).
fn algorithm_spec(algorithm: &AlgorithmSection) -> AlgorithmSpec {
    match algorithm {
        AlgorithmSection::FedAvg {
            clients_per_round,
            over_selection,
            deadline,
        } => AlgorithmSpec::FedAvg(FedAvgConfig {
            clients_per_round: *clients_per_round,
            over_selection: *over_selection,
            deadline: deadline.as_ref().map(secs),
        }),
        AlgorithmSection::FedAsync {
            concurrency,
            alpha,
            staleness,
        } => AlgorithmSpec::FedAsync(FedAsyncConfig {
            concurrency: *concurrency,
            alpha: *alpha,
            staleness: staleness.clone(),
        }),
        AlgorithmSection::FedBuff {
            concurrency,
            buffer,
            server_lr,
            staleness,
            max_staleness,
        } => AlgorithmSpec::FedBuff(FedBuffConfig {
            concurrency: *concurrency,
            buffer: *buffer,
            server_lr: *server_lr,
            staleness: staleness.clone(),
            max_staleness: *max_staleness,
        }),
        AlgorithmSection::PersAfl { server, .. } | AlgorithmSection::FlTac { server, .. } => {
            algorithm_spec(server)
        }
    }
}

/// A distribution with units, in base units; `None` for schedules.
pub(crate) fn to_dist<U: Unit>(d: &DistSpec<U>) -> Option<Dist> {
    Some(match d {
        DistSpec::Const(v) => Dist::Const(v.value()),
        DistSpec::Uniform { low, high } => Dist::Uniform {
            low: low.value(),
            high: high.value(),
        },
        DistSpec::Normal { mean, std } => Dist::Normal {
            mean: mean.value(),
            std: std.value(),
        },
        DistSpec::LogNormal { median, sigma } => Dist::LogNormal {
            median: median.value(),
            sigma: *sigma,
        },
        DistSpec::Exponential { mean } => Dist::Exponential { mean: mean.value() },
        DistSpec::Pareto { scale, shape } => Dist::Pareto {
            scale: scale.value(),
            shape: *shape,
        },
        DistSpec::Steps(_)
        | DistSpec::Trace(_)
        | DistSpec::ClientTrace(_)
        | DistSpec::Scaled(..)
        | DistSpec::Traces => return None,
    })
}

//! The engine alone: a scenario of many clients whose learner trains nothing, and the
//! event loop's wall time.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use flotilla_actors::Work;
use flotilla_actors::learner::SlotOutcome;
use flotilla_actors::{
    EvalJob, EvalOutcome, Learner, Observer, Pending, Records, SimTime, TrainJob, TrainOutcome,
    simulate,
};

use crate::run::RunError;
use crate::scenario::{self, Loaded, ScenarioError};

/// A learner that trains nothing: every job hands back the initial (all-zero)
/// parameters, made only when the clock reaches the job's end, so that a job costs no
/// memory while simulated time runs. It measures the engine alone: every update is still a
/// full vector that the wire encodes, the links carry and the server aggregates.
pub struct NoopLearner {
    /// Length of the parameter vector that travels.
    pub params: usize,
    /// Training samples a job stands for (the device model turns them into time).
    pub samples: u64,
    /// Clients in the population (one accuracy each).
    pub clients: usize,
}

impl Learner for NoopLearner {
    fn initial_params(&self) -> Vec<f32> {
        vec![0.0; self.params]
    }

    fn train_work(&self, _: usize) -> Work {
        Work::samples(self.samples)
    }

    fn train(&self, job: TrainJob) -> Pending<TrainOutcome> {
        let (slots, params, samples) = (job.params.len(), self.params, self.samples);
        Pending::deferred(move || TrainOutcome {
            slots: (0..slots)
                .map(|_| SlotOutcome {
                    params: vec![0.0; params],
                    num_samples: samples,
                })
                .collect(),
            loss: 0.0,
            personal: None,
        })
    }

    fn evaluate(&self, job: EvalJob) -> Pending<EvalOutcome> {
        Pending::ready(EvalOutcome {
            global_accuracy: 0.0,
            global_loss: 0.0,
            task_accuracy: vec![0.0; job.tasks.len()],
            client_accuracy: vec![None; self.clients],
            personalized_accuracy: vec![None; self.clients],
        })
    }
}

/// The scenario of the engine measurement: `clients` clients with varied speeds and
/// links, FedAsync with a tenth of them at work at once, and a server whose capacity
/// grows with them (per client at work, the median of their links: 5 Mbit/s in and
/// 20 Mbit/s out), so that about half the transfers run at their own link's cap and half
/// at the fair share of the server's.
fn engine_scenario(clients: usize, updates: u64, at_work: usize) -> String {
    format!(
        r#"Scenario(
    name: "engine", seed: 1,
    data: (source: Idx(dir: "unused"), partition: Iid, clients: {clients}),
    model: (backbone: Vit(patch: 4, dim: 64, depth: 4, heads: 4, mlp: 128),
            adapter: Lora(rank: 4, alpha: 8.0, targets: [Q, V])),
    training: (epochs: 1, batch_size: 32, optimizer: Sgd(lr: 0.05)),
    algorithm: FedAsync(concurrency: {concurrency}, alpha: 0.5, staleness: Polynomial(exponent: 0.5)),
    population: [
        (class: "phone", count: {clients}, speed: LogNormal(median: "80 samples/s", sigma: 0.6),
         uplink: (latency: Normal(mean: "80ms", std: "20ms"), bandwidth: LogNormal(median: "5Mbit/s", sigma: 0.7), loss: 0.01),
         downlink: (latency: Normal(mean: "80ms", std: "20ms"), bandwidth: LogNormal(median: "20Mbit/s", sigma: 0.7)),
         dropout: 0.02),
    ],
    server: (ingress: "{ingress} Mbit/s", egress: "{egress} Mbit/s"),
    stop: (rounds: {updates}),
    eval: (every_rounds: {updates}),
)"#,
        concurrency = at_work,
        ingress = 5 * at_work,
        egress = 20 * at_work,
    )
}

/// Simulates the engine measurement's scenario with a [`NoopLearner`] of `params` values,
/// a tenth of the clients at work; returns the events dispatched and the event loop's
/// wall time.
pub fn engine(clients: usize, updates: u64, params: usize) -> Result<EngineRun, RunError> {
    engine_at(clients, updates, params, clients / 10)
}

/// [`engine`] with `at_work` clients (at least one) training at once.
pub(crate) fn engine_at(
    clients: usize,
    updates: u64,
    params: usize,
    at_work: usize,
) -> Result<EngineRun, RunError> {
    let text = engine_scenario(clients, updates, at_work.clamp(1, clients.max(1)));
    let scenario =
        scenario::parse(&text).map_err(|e| ScenarioError::syntax(Path::new("engine.ron"), e))?;
    let loaded = Loaded {
        scenario,
        file: "engine.ron".into(),
        base: ".".into(),
    };
    let config = loaded.sim_config()?;
    let learner = Arc::new(NoopLearner {
        params,
        samples: 64,
        clients,
    });
    let timer = LoopTimer::default();
    let outcome = simulate(
        config,
        learner,
        Arc::new(AtomicBool::new(false)),
        Box::new(timer.clone()),
    )?;
    Ok(EngineRun {
        events: outcome.clock.events,
        loop_seconds: timer.seconds(),
    })
}

/// What an engine measurement found.
#[derive(Copy, Clone, Debug)]
pub struct EngineRun {
    /// Events the clock dispatched: a function of the scenario alone.
    pub events: u64,
    /// Wall seconds from the first event to the end of the run.
    pub loop_seconds: f64,
}

/// Times the event loop through the clock's progress reports: the first comes right
/// after the first event, the last at the end of the run.
#[derive(Clone, Default)]
struct LoopTimer(Arc<Mutex<Option<(Instant, Instant)>>>);

impl LoopTimer {
    fn seconds(&self) -> f64 {
        let span = *self.0.lock().expect("loop timer");
        span.map_or(0.0, |(first, last)| (last - first).as_secs_f64())
    }
}

impl Observer for LoopTimer {
    fn progress(&mut self, _: SimTime, _: &Records) {
        let now = Instant::now();
        let mut span = self.0.lock().expect("loop timer");
        let first = span.map_or(now, |(first, _)| first);
        *span = Some((first, now));
    }
}

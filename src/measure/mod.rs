//! The measurements of `flotilla bench`: how fast the engine, the pool and workload W1 run
//! on this machine.
//!
//! `flotilla bench` runs every measurement in a child process of its own (`--item`), so
//! the peak memory it reports is its own and one measurement cannot warm another's caches.
//!
//! One file for the items and their figures: each item's measurement is a few lines that
//! share the setup helpers here; the remote pool's server and workers live in `remote`.

mod cifar;
mod remote;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use flotilla_actors::Work;
use flotilla_actors::learner::SlotOutcome;
use flotilla_actors::{
    EvalJob, EvalOutcome, Learner, Observer, Pending, Records, SimTime, TrainJob, TrainOutcome,
    simulate,
};
use serde::{Deserialize, Serialize};

pub use cifar::write_cifar_fixture;
pub use remote::{LocalNats, NatsError};

use crate::report::peak_rss_bytes;
use crate::run::{Prepared, RunError, prepare};
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

/// One measurement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Item {
    /// The engine with a [`NoopLearner`] of `params` values: `clients` clients under
    /// FedAsync with `at_work` of them (default: a tenth) training at once, until
    /// `updates` updates are applied.
    Engine {
        /// Clients in the population.
        clients: usize,
        /// Updates the run applies before it stops.
        updates: u64,
        /// Values in the parameter vector.
        params: usize,
        /// Clients at work at once; a tenth of them when absent.
        #[serde(default)]
        at_work: Option<usize>,
    },
    /// Local training through the pool: `rounds` rounds of the scenario's clients, 10 at a
    /// time, with the given pool overrides (`path=value`).
    Pool {
        /// Rounds of ten clients.
        rounds: usize,
        /// Overrides of the scenario.
        set: Vec<String>,
    },
    /// Loading the CIFAR-10-format data set in `dir` (the real one, or one that
    /// [`write_cifar_fixture`] wrote before the measuring process started).
    Load {
        /// The directory of `data_batch_*.bin` and `test_batch.bin`.
        dir: PathBuf,
    },
    /// A whole run of the scenario with the given overrides.
    Run {
        /// Overrides of the scenario.
        set: Vec<String>,
    },
    /// A whole run of the scenario with the given overrides on a remote pool: `workers`
    /// local `flotilla worker` processes of one thread each, over a NATS server (from the
    /// `PATH`) started for the measurement.
    Remote {
        /// Worker processes.
        workers: usize,
        /// Overrides of the scenario.
        set: Vec<String>,
    },
}

/// Why a measurement gave no figures.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    /// The measured run failed.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The measurement's NATS server cannot be started or read.
    #[error("the measurement's NATS server")]
    Nats(#[from] NatsError),
    /// This executable cannot be found, to start workers of it.
    #[error("cannot find this executable")]
    Executable(#[source] std::io::Error),
    /// A worker cannot be started.
    #[error("cannot start a worker")]
    Worker(#[source] std::io::Error),
    /// The workers did not connect in time.
    #[error("the workers did not connect in time")]
    WorkersLate,
}

impl From<ScenarioError> for MeasureError {
    fn from(e: ScenarioError) -> Self {
        Self::Run(e.into())
    }
}

impl From<crate::data::DataError> for MeasureError {
    fn from(e: crate::data::DataError) -> Self {
        Self::Run(e.into())
    }
}

/// Messages and bytes through a NATS server, both ways.
#[derive(Copy, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Traffic {
    /// Messages in and out.
    pub messages: u64,
    /// Bytes in and out, payloads and headers.
    pub bytes: u64,
}

/// What a remote-pool measurement found besides the run's figures.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RemoteFigures {
    /// Jobs the run put on the queue.
    pub jobs: u64,
    /// What crossed the server during the run.
    pub traffic: Traffic,
    /// The workers' peak resident memory, summed.
    pub workers_peak_rss_bytes: u64,
}

/// What a measurement found.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Wall seconds of the whole measurement.
    pub wall_seconds: f64,
    /// Events (engine), images (pool) or rounds (run) done.
    pub work: f64,
    /// The measuring process's peak resident memory.
    pub peak_rss_bytes: u64,
    /// The run's final global accuracy (runs only).
    pub accuracy: Option<f64>,
    /// Seconds of the work proper (engine only: the event loop, without building the
    /// actors).
    pub busy_seconds: Option<f64>,
    /// Resident memory when the work proper began (loads only), so that the peak above
    /// it is what the work took.
    #[serde(default)]
    pub start_rss_bytes: Option<u64>,
    /// Jobs, traffic and workers' memory (remote pool only).
    #[serde(default)]
    pub remote: Option<RemoteFigures>,
}

impl Figures {
    /// Work per wall second.
    pub fn rate(&self) -> f64 {
        self.work / self.wall_seconds.max(1e-9)
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

/// Runs one measurement in this process.
pub fn measure(item: &Item, scenario_file: &Path) -> Result<Figures, MeasureError> {
    match item {
        Item::Engine {
            clients,
            updates,
            params,
            at_work,
        } => {
            let started = Instant::now();
            let at_work = at_work.unwrap_or(*clients / 10);
            let run = engine_at(*clients, *updates, *params, at_work)?;
            Ok(Figures {
                wall_seconds: started.elapsed().as_secs_f64(),
                work: run.events as f64,
                peak_rss_bytes: peak_rss_bytes(),
                accuracy: None,
                busy_seconds: Some(run.loop_seconds),
                start_rss_bytes: None,
                remote: None,
            })
        }
        Item::Pool { rounds, set } => {
            let pool = PoolBench::new(scenario_file, set)?;
            let started = Instant::now();
            let mut images = 0u64;
            for round in 0..*rounds {
                images += pool.round(round)?;
            }
            Ok(Figures {
                wall_seconds: started.elapsed().as_secs_f64(),
                work: images as f64,
                peak_rss_bytes: peak_rss_bytes(),
                accuracy: None,
                busy_seconds: None,
                start_rss_bytes: None,
                remote: None,
            })
        }
        Item::Load { dir } => {
            let start_rss_bytes = Some(crate::report::rss_bytes());
            let started = Instant::now();
            let split = crate::data::DataSource::Cifar10 { dir: ".".into() }
                .load(dir, None)?
                .into_split()?;
            let wall_seconds = started.elapsed().as_secs_f64();
            let peak_rss_bytes = peak_rss_bytes();
            Ok(Figures {
                wall_seconds,
                work: (split.train.len() + split.test.len()) as f64,
                peak_rss_bytes,
                accuracy: None,
                busy_seconds: None,
                start_rss_bytes,
                remote: None,
            })
        }
        Item::Run { set } => {
            let (result, wall_seconds) = timed_run(&overridden(scenario_file, set)?)?;
            Ok(Figures {
                wall_seconds,
                work: result.summary.rounds as f64,
                peak_rss_bytes: peak_rss_bytes(),
                accuracy: result.summary.global_accuracy,
                busy_seconds: None,
                start_rss_bytes: None,
                remote: None,
            })
        }
        Item::Remote { workers, set } => remote::measure(*workers, set, scenario_file),
    }
}

/// Rounds of local training through a scenario's pool, outside any simulation.
pub struct PoolBench {
    learner: crate::pool::PoolLearner,
    initial: flotilla_actors::Params,
    clients: usize,
}

impl PoolBench {
    /// The pool of `scenario_file` with the overrides `set` (`path=value`).
    pub fn new(scenario_file: &Path, set: &[String]) -> Result<Self, RunError> {
        let loaded = overridden(scenario_file, set)?;
        let Prepared { learner, tasks, .. } =
            prepare(&loaded, None, None, crate::notice::ignored())?;
        Ok(Self {
            initial: Arc::new(learner.initial_params()),
            clients: tasks.slots.len(),
            learner,
        })
    }

    /// Trains clients `10 r .. 10 r + 10` from the initial model, as one round would
    /// start them; returns the images trained on.
    pub fn round(&self, round: usize) -> Result<u64, RunError> {
        let mut images = 0;
        let pending: Vec<_> = (0..10)
            .map(|i| {
                let client = (round * 10 + i) % self.clients;
                images += self.learner.train_work(client).samples;
                self.learner.train(TrainJob {
                    client,
                    params: vec![self.initial.clone()],
                    personal: None,
                    seed: (round * 10 + i) as u64,
                })
            })
            .collect();
        self.learner.flush();
        for p in pending {
            p.wait()?;
        }
        Ok(images)
    }
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

/// A whole, quiet run of `loaded` into a temporary directory, and its wall seconds.
fn timed_run(loaded: &Loaded) -> Result<(crate::run::RunResult, f64), RunError> {
    let out = std::env::temp_dir().join(format!("flotilla-bench-{}", std::process::id()));
    let started = Instant::now();
    let result = crate::run::run(
        loaded,
        crate::run::RunOptions::quiet(Some(out.clone()), Arc::new(AtomicBool::new(false))),
    );
    let wall_seconds = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&out);
    Ok((result?, wall_seconds))
}

fn overridden(file: &Path, set: &[String]) -> Result<Loaded, RunError> {
    Ok(scenario::load_with(file, set)?)
}

//! The measurements of `flotilla bench`: how fast the engine, the pool and workload W1 run
//! on this machine.
//!
//! `flotilla bench` runs every measurement in a child process of its own (`--item`), so
//! the peak memory it reports is its own and one measurement cannot warm another's caches.
//!
//! One file for the items and their figures: each item's measurement is a few lines that
//! share the setup helpers here; the remote pool's server and workers live in `remote`.

mod backbone;
mod cifar;
mod engine;
mod remote;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use flotilla_actors::{Learner, TrainJob};
use serde::{Deserialize, Serialize};

pub use backbone::{FixtureError, write_vit_small_fixture};
pub use cifar::write_cifar_fixture;
pub use engine::{EngineRun, NoopLearner, engine};
pub use remote::{LocalNats, NatsError};

use engine::engine_at;

use crate::report::{cpu_seconds, peak_rss_bytes};
use crate::run::{Prepared, RunError, prepare};
use crate::scenario::{self, Loaded, ScenarioError};

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
    /// CPU seconds the measuring process used, all threads (whole runs only).
    #[serde(default)]
    pub cpu_seconds: Option<f64>,
}

impl Figures {
    /// Work per wall second.
    pub fn rate(&self) -> f64 {
        self.work / self.wall_seconds.max(1e-9)
    }
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
                cpu_seconds: None,
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
                cpu_seconds: None,
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
                cpu_seconds: None,
            })
        }
        Item::Run { set } => {
            let loaded = overridden(scenario_file, set)?;
            let cpu = cpu_seconds();
            let (result, wall_seconds) = timed_run(&loaded)?;
            Ok(Figures {
                wall_seconds,
                work: result.summary.rounds as f64,
                peak_rss_bytes: peak_rss_bytes(),
                accuracy: result.summary.global_accuracy,
                busy_seconds: None,
                start_rss_bytes: None,
                remote: None,
                cpu_seconds: cpu.zip(cpu_seconds()).map(|(a, b)| b - a),
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

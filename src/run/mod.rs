//! `flotilla run`: scenario file to simulation to run directory.
//!
//! - here: one run, from a loaded scenario to its written directory;
//! - `prepare`: the learner a scenario trains with, shared with remote workers and
//!   benchmarks so that all three build the same pieces;
//! - `worker`: what a remote worker builds for a run, from the context it published;
//! - `progress`: the progress bar and the wall-clock gauges.

mod prepare;
mod progress;
#[cfg(test)]
mod tests;
mod worker;

pub(crate) use prepare::{Prepared, prepare, prepare_on, store_identity};
pub use worker::{Refused, worker_learner};

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use flotilla_actors::{Learner, StopReason, simulate_streaming};

use crate::error::Chain;
pub use crate::monitor::MonitorError;
use crate::notice::Notice;
use crate::pool::remote::{RemoteError, RemoteFailure};
use crate::pool::{CacheUse, JobStore, STORE_FILE, StoreError};
use crate::report::{ReadError, RunData, Streams, Summary, write_report, write_run};
use crate::scenario::{Loaded, ScenarioError};
use progress::{Progress, RunObserver};

/// Why a run could not go ahead or finish. Scenario and monitoring problems are the
/// user's to fix (exit code 2); the others are failures of the run itself.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The scenario cannot be run as written.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The metrics endpoint cannot be served.
    #[error(transparent)]
    Monitor(#[from] MonitorError),
    /// The simulation stopped: an actor stopped.
    #[error("the simulation failed")]
    Simulation(#[from] flotilla_actors::SimError),
    /// A pool job was dropped outside a run (a worker failed).
    #[error(transparent)]
    Learner(#[from] flotilla_actors::LearnerFailed),
    /// The run directory cannot be written.
    #[error("{dir}: cannot write results")]
    Write {
        /// The run directory.
        dir: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
    /// The results were written but cannot be read back for the report.
    #[error("cannot read the results back")]
    ReadBack(#[from] ReadError),
    /// The job store to resume from or share cannot be used.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A data set cannot be read or written (outside a scenario, which names its field).
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// The remote pool cannot be reached or set up.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// The pool failed mid-run: a worker died, or the remote pool stopped answering (a
    /// worker refused the run's jobs, no worker answered in time, or answers disagreed).
    /// Everything recorded until then is written, as after an interruption.
    #[error("the pool failed; the results up to then are in {}", dir.display())]
    PoolFailed {
        /// What went wrong.
        #[source]
        failure: PoolFailure,
        /// The run directory, written.
        dir: PathBuf,
    },
}

/// Why a run's pool stopped answering its jobs.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolFailure {
    /// A worker thread of this process dropped a job (it panicked).
    #[error("a worker of this process dropped a job (it panicked)")]
    InProcess,
    /// The remote pool stopped answering.
    #[error("the remote pool stopped answering")]
    Remote(#[source] RemoteFailure),
}

/// Options of one run.
pub struct RunOptions {
    /// The run directory (default: `runs/<name>-<timestamp>`).
    pub out: Option<PathBuf>,
    /// Draw a progress bar on the terminal.
    pub progress: bool,
    /// Set to stop the run at the current simulated time; everything so far is written.
    pub interrupt: Arc<AtomicBool>,
    /// Serve Prometheus metrics here (overrides the scenario's `monitoring.prometheus`).
    pub metrics_addr: Option<String>,
    /// Continue the run in `out` from its job store: the engine replays from time zero
    /// and every job the store holds is taken from it instead of recomputed.
    pub resume: bool,
    /// Keep job results in this directory's store, shared on purpose with other runs,
    /// instead of the run directory's own.
    pub cache: Option<PathBuf>,
    /// Where the run's news goes: a remote pool waiting for workers, a job store that
    /// stops storing.
    pub notice: Notice,
}

impl RunOptions {
    /// Options for a run in `out` with no progress bar, no metrics, its own store, and
    /// its news dropped.
    pub fn quiet(out: Option<PathBuf>, interrupt: Arc<AtomicBool>) -> Self {
        Self {
            out,
            progress: false,
            interrupt,
            metrics_addr: None,
            resume: false,
            cache: None,
            notice: crate::notice::ignored(),
        }
    }
}

/// The result of a run: where it was written and its summary.
pub struct RunResult {
    /// The run directory.
    pub dir: PathBuf,
    /// Its headline figures.
    pub summary: Summary,
    /// Jobs taken from the job store and jobs computed.
    pub reused: (u64, u64),
    /// What the frozen-prefix cache held and filled in this process (`None` without a
    /// cache, or when the jobs went to remote workers).
    pub cache: Option<CacheUse>,
}

/// Runs a loaded scenario and writes its run directory.
pub fn run(loaded: &Loaded, opts: RunOptions) -> Result<RunResult, RunError> {
    let started = Instant::now();
    let s = &loaded.scenario;
    if let Some(addr) = opts
        .metrics_addr
        .as_ref()
        .or(s.monitoring.prometheus.as_ref())
    {
        let addr = crate::monitor::parse_addr(addr)?;
        crate::monitor::install(addr, &s.name, strategy_name(s))?;
    }
    let dir = opts.out.unwrap_or_else(|| timestamped_dir(&s.name));
    let written = |source| RunError::Write {
        dir: dir.clone(),
        source,
    };
    let identity = store_identity(s);
    let notice = opts.notice.clone();
    let store = match (&opts.cache, opts.resume) {
        (Some(cache), _) => {
            std::fs::create_dir_all(cache).map_err(written)?;
            JobStore::open(&cache.join(STORE_FILE), &identity, true, notice)?
        }
        (None, true) => JobStore::open(&dir.join(STORE_FILE), &identity, false, notice)?,
        (None, false) => {
            std::fs::create_dir_all(&dir).map_err(written)?;
            JobStore::create(&dir.join(STORE_FILE), &identity, notice)?
        }
    };
    let Prepared {
        learner,
        tasks,
        size,
        layout,
        ..
    } = prepare(
        loaded,
        Some(Arc::new(store)),
        Some(opts.cache.as_deref().unwrap_or(&dir)),
        opts.notice.clone(),
    )?;
    let learner = Arc::new(learner);
    let pool = learner.clone();
    let learner: Arc<dyn Learner> = learner;
    let mut config = loaded.sim_config()?;
    config.wire.layout = layout;
    let progress = opts.progress.then(|| {
        Progress::new(
            &config.stop,
            pool.cache().map(|c| c.count()),
            opts.notice.clone(),
        )
    });
    if let Some(bar) = progress.as_ref().map(|p| p.bar.clone()) {
        // A drawn bar says that the run waits for workers; a hidden one leaves it to a
        // line on standard error.
        if !bar.is_hidden() {
            pool.set_remote_notice(Arc::new(move |line: &str| {
                bar.set_message(line.to_string())
            }));
        }
    }
    let observer = RunObserver {
        started,
        sim_speed: metrics::gauge!(crate::monitor::SIM_SPEED),
        wall_seconds: metrics::gauge!(crate::monitor::WALL_SECONDS),
        progress,
    };
    std::fs::create_dir_all(&dir).map_err(written)?;
    let streams = Arc::new(Mutex::new(Streams::create(&dir).map_err(written)?));
    let outcome = simulate_streaming(
        config,
        learner,
        opts.interrupt,
        Box::new(observer),
        Streams::sink(&streams),
    )?;
    streams
        .lock()
        .expect("streams lock")
        .finish()
        .map_err(written)?;
    let failure =
        (outcome.clock.reason == StopReason::PoolFailed).then(|| match pool.remote_failure() {
            Some(why) => PoolFailure::Remote(why),
            None => PoolFailure::InProcess,
        });
    let mut summary = Summary::new(
        s,
        &outcome,
        &size,
        &tasks.names,
        started.elapsed().as_secs_f64(),
    );
    if let Some(failure) = &failure {
        // What failed, without the "pool failed" the stop reason already says.
        summary.stop_detail = Some(match failure {
            PoolFailure::Remote(why) => Chain(why).to_string(),
            PoolFailure::InProcess => failure.to_string(),
        });
    }
    write_run(&dir, s, &summary, &outcome.records, &tasks.names).map_err(written)?;
    let data = RunData::read(&dir)?;
    write_report(&data).map_err(written)?;
    if let Some(failure) = failure {
        return Err(RunError::PoolFailed { failure, dir });
    }
    let reused = pool.taken_and_computed().unwrap_or_default();
    Ok(RunResult {
        dir,
        summary,
        reused,
        cache: pool.cache().map(|c| c.usage()),
    })
}

/// Where a run or sweep of `name` goes by default: `runs/<name>-<unix time>`.
pub(crate) fn timestamped_dir(name: &str) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Path::new("runs").join(format!("{name}-{secs}"))
}

fn strategy_name(s: &crate::scenario::Scenario) -> &'static str {
    use crate::scenario::AlgorithmSection;
    match s.algorithm {
        AlgorithmSection::FedAvg { .. } => "fedavg",
        AlgorithmSection::FedAsync { .. } => "fedasync",
        AlgorithmSection::FedBuff { .. } => "fedbuff",
        AlgorithmSection::PersAfl { .. } => "persafl",
        AlgorithmSection::FlTac { .. } => "fltac",
    }
}

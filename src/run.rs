//! `flotilla run`: scenario file to simulation to run directory.
//!
//! One file: `run` and the `prepare` it shares with remote workers and benchmarks build
//! the same pieces; the progress bar and observer are its only other parts.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use flotilla_actors::{Learner, Observer, Records, SimTime, StopReason, simulate_streaming};
use indicatif::{ProgressBar, ProgressStyle};

use crate::data::{Layout, TaskData};
use crate::model::build_model;
pub use crate::monitor::MonitorError;
use crate::pool::remote::{Context, Remote, RemoteError, RemoteOptions, hex};
use crate::pool::{
    ContextParts, DeviceKind, JobStore, Key, LearnerSetup, PoolLearner, STORE_FILE, StoreError,
    Stored, context_digest, worker_devices,
};
use crate::report::{ModelSize, ReadError, RunData, Streams, Summary, write_report, write_run};
use crate::scenario::RemoteSection;
use crate::scenario::{Loaded, ScenarioError};

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
    #[error("the simulation failed: {0}")]
    Simulation(#[from] flotilla_actors::SimError),
    /// A pool job was dropped outside a run (a worker failed).
    #[error(transparent)]
    Learner(#[from] flotilla_actors::LearnerFailed),
    /// The run directory cannot be written.
    #[error("{dir}: cannot write results: {source}")]
    Write {
        /// The run directory.
        dir: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
    /// The results were written but cannot be read back for the report.
    #[error("cannot read the results back: {0}")]
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
    #[error("the {pool} pool failed: {why}; the results up to then are in {}", dir.display())]
    PoolFailed {
        /// `remote` or `in-process`.
        pool: &'static str,
        /// What went wrong.
        why: String,
        /// The run directory, written.
        dir: PathBuf,
    },
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
}

impl RunOptions {
    /// Options for a run in `out` with no progress bar, no metrics and its own store.
    pub fn quiet(out: Option<PathBuf>, interrupt: Arc<AtomicBool>) -> Self {
        Self {
            out,
            progress: false,
            interrupt,
            metrics_addr: None,
            resume: false,
            cache: None,
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
    let store = match (&opts.cache, opts.resume) {
        (Some(cache), _) => {
            std::fs::create_dir_all(cache).map_err(written)?;
            JobStore::open(&cache.join(STORE_FILE), &identity, true)?
        }
        (None, true) => JobStore::open(&dir.join(STORE_FILE), &identity, false)?,
        (None, false) => {
            std::fs::create_dir_all(&dir).map_err(written)?;
            JobStore::create(&dir.join(STORE_FILE), &identity)?
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
    )?;
    let learner = Arc::new(learner);
    let pool = learner.clone();
    let learner: Arc<dyn Learner> = learner;
    let mut config = loaded.sim_config()?;
    config.wire.layout = layout;
    let progress = opts.progress.then(|| Progress::new(&config.stop));
    if let Some(bar) = progress.as_ref().map(|p| p.bar.clone()) {
        // A drawn bar says that the run waits for workers; a hidden one leaves it to a
        // line on standard error.
        if !bar.is_hidden() {
            pool.set_remote_notice(Box::new(move |line| bar.set_message(line.to_string())));
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
            Some(why) => ("remote", why),
            None => ("in-process", "a worker dropped a job (it panicked)".into()),
        });
    let mut summary = Summary::new(
        s,
        &outcome,
        &size,
        &tasks.names,
        started.elapsed().as_secs_f64(),
    );
    if let Some((_, why)) = &failure {
        summary.stop_detail = Some(why.clone());
    }
    write_run(&dir, s, &summary, &outcome.records, &tasks.names).map_err(written)?;
    let data = RunData::read(&dir)?;
    write_report(&data).map_err(written)?;
    if let Some((pool, why)) = failure {
        return Err(RunError::PoolFailed { pool, why, dir });
    }
    let reused = pool.taken_and_computed().unwrap_or_default();
    Ok(RunResult {
        dir,
        summary,
        reused,
    })
}

/// What a job store must have been written by to be trusted: this flotilla, backend,
/// device kind and architecture (results differ in their last bits between them).
pub fn store_identity(s: &crate::scenario::Scenario) -> String {
    format!(
        "flotilla {} {:?} {:?} {}",
        env!("CARGO_PKG_VERSION"),
        s.pool.backend,
        s.pool.device,
        std::env::consts::ARCH
    )
}

/// A scenario's learner, ready to train, and what the run reports about its model.
pub struct Prepared {
    /// The learner, its pool started.
    pub learner: PoolLearner,
    /// The data, laid out by task and client.
    pub tasks: Arc<TaskData>,
    /// The model's sizes, for the summary.
    pub size: ModelSize,
    /// The trainable vector's tensor lengths (for per-tensor wire scales).
    pub layout: Arc<[usize]>,
    /// The digest of what every job shares (see [`context_digest`]).
    pub context: Key,
}

/// Loads the data and the model and starts the pool on the scenario's devices; with a
/// store, finished jobs are kept in it and taken from it.
pub fn prepare(
    loaded: &Loaded,
    store: Option<Arc<JobStore>>,
    images: Option<&Path>,
) -> Result<Prepared, RunError> {
    let pool = &loaded.scenario.pool;
    // With a remote pool this process only builds the model, on its CPU: the GPUs are
    // the workers'.
    let devices = match pool.remote {
        Some(_) => worker_devices(pool.backend, DeviceKind::Cpu, 1, 1),
        None => worker_devices(pool.backend, pool.device, pool.workers, pool.per_gpu),
    }
    .map_err(|e| loaded.refused("pool", e))?;
    prepare_with(loaded, store, images, devices)
}

/// Loads the data and the model and starts the pool on `devices`, without a store or an
/// image cache (a remote worker's pool).
pub fn prepare_on(
    loaded: &Loaded,
    store: Option<Arc<JobStore>>,
    devices: Vec<burn::tensor::Device>,
) -> Result<Prepared, RunError> {
    prepare_with(loaded, store, None, devices)
}

fn prepare_with(
    loaded: &Loaded,
    store: Option<Arc<JobStore>>,
    images: Option<&Path>,
    devices: Vec<burn::tensor::Device>,
) -> Result<Prepared, RunError> {
    let s = &loaded.scenario;
    let data = s
        .data
        .source
        .load_cached(&loaded.base, s.data.image, images)
        .and_then(|l| l.into_split())
        .map_err(|e| loaded.refused("data.source", e))?;
    let backbone = loaded.backbone(data.train.side, data.train.channels, data.train.classes)?;
    let vit = &backbone.config;
    if data.train.side % vit.patch != 0 {
        return Err(loaded
            .invalid(
                "model.backbone.patch",
                format!(
                    "must divide the image side ({}), got {}",
                    data.train.side, vit.patch
                ),
            )
            .into());
    }
    let tasks = Arc::new(
        Layout {
            tasks: &s.data.tasks,
            clients: s.data.clients,
            partition: &s.data.partition,
            min_samples: s.data.min_samples,
            test_fraction: s.data.local_test_fraction,
            seed: s.seed,
            separate: loaded.separate_slots(),
        }
        .apply(data)
        .map_err(|e| loaded.refused(e.field(), e))?,
    );
    let pool = &s.pool;
    let device = devices[0].clone();
    let adaptation = loaded.adaptation();
    let model = build_model(vit, backbone.weights(), &adaptation, s.seed, &device)
        .map_err(|e| loaded.refused(backbone.field, e))?;
    let trainable = adaptation.trainable();
    let (adapter_params, model_params) = trainable.count(&model);
    let layout: Arc<[usize]> = trainable.layout(&model).into();
    let size = ModelSize {
        adapter_params,
        model_params,
        update_bytes: s.wire.up().encoded_bytes(&layout),
    };
    let weights = match &backbone.file {
        Some(w) => std::fs::read(w).map_err(|e| loaded.refused(backbone.field, e))?,
        None => Vec::new(),
    };
    let personalization = loaded.personalization();
    let procedure = loaded.personal_step();
    let context = context_digest(ContextParts {
        identity: &store_identity(s),
        // The checkpoint's settings too: its normalisation is folded into the model.
        vit: &format!("{vit:?} {:?}", backbone.pretrained),
        weights: &weights,
        seed: s.seed,
        settings: &format!(
            "{adaptation:?} {:?} {personalization:?} {procedure:?}",
            s.training
        ),
        data: &tasks,
    });
    let remote = match &pool.remote {
        Some(RemoteSection::Nats {
            url,
            ack_wait,
            deadline,
        }) => Some(Remote::connect(
            RemoteOptions {
                url: url.clone(),
                ack_wait: std::time::Duration::from_secs_f64(ack_wait.value()),
                deadline: std::time::Duration::from_secs_f64(deadline.value()),
            },
            remote_context(loaded, s, &context)?,
        )?),
        None => None,
    };
    let learner = PoolLearner::new(LearnerSetup {
        model,
        adaptation,
        patch: vit.patch,
        train: s.training.clone(),
        data: tasks.clone(),
        personalize: loaded.personalization(),
        personalize_on_device: s.eval.personalize_on_device,
        procedure: loaded.personal_step(),
        devices,
        batch_clients: pool.batch_clients,
        cache_budget: pool.cache.value() as u64,
        store: store.map(|store| Stored { store, context }),
        remote,
    });
    Ok(Prepared {
        learner,
        tasks,
        size,
        layout,
        context,
    })
}

/// What a worker needs to build the run's model and data: the scenario as resolved, where
/// its paths start, and what it must come to.
fn remote_context(
    loaded: &Loaded,
    s: &crate::scenario::Scenario,
    context: &Key,
) -> Result<Context, RunError> {
    let base = match loaded.base.as_os_str().is_empty() {
        true => Path::new("."),
        false => loaded.base.as_path(),
    };
    let base = std::path::absolute(base).map_err(|e| loaded.refused("pool.remote", e))?;
    Ok(Context {
        identity: store_identity(s),
        digest: hex(context),
        scenario: crate::scenario::to_json(s),
        file: loaded.file.display().to_string(),
        base: base.display().to_string(),
    })
}

/// Where a run or sweep of `name` goes by default: `runs/<name>-<unix time>`.
pub fn timestamped_dir(name: &str) -> PathBuf {
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

/// Publishes wall-clock gauges and drives the progress bar.
struct RunObserver {
    started: Instant,
    sim_speed: metrics::Gauge,
    wall_seconds: metrics::Gauge,
    progress: Option<Progress>,
}

impl Observer for RunObserver {
    fn progress(&mut self, now: SimTime, records: &Records) {
        let wall = self.started.elapsed().as_secs_f64();
        self.wall_seconds.set(wall);
        self.sim_speed.set(now.as_secs_f64() / wall.max(1e-9));
        if let Some(p) = &mut self.progress {
            p.progress(now, records);
        }
    }
}

/// The terminal progress bar: simulated time, round, latest accuracy, ETA.
struct Progress {
    bar: ProgressBar,
    rounds: Option<u32>,
    horizon: Option<SimTime>,
}

impl Progress {
    fn new(stop: &flotilla_actors::StopRule) -> Self {
        let len = match (stop.rounds, stop.virtual_time) {
            (Some(r), _) => r as u64,
            (None, Some(t)) => t.as_micros() / 1_000_000,
            (None, None) => 0,
        };
        let bar = ProgressBar::new(len);
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:30} {pos}/{len} {msg} [{elapsed_precise} eta {eta}]",
            )
            .expect("valid template"),
        );
        Self {
            bar,
            rounds: stop.rounds,
            horizon: stop.virtual_time,
        }
    }
}

impl Observer for Progress {
    fn progress(&mut self, now: SimTime, records: &Records) {
        let pos = match (self.rounds, self.horizon) {
            (Some(_), _) => records.rounds as u64,
            _ => now.as_micros() / 1_000_000,
        };
        self.bar.set_position(pos);
        let acc = records.timeline.last().map_or("-".to_string(), |r| {
            format!("{:.2}%", r.global_accuracy * 100.0)
        });
        self.bar
            .set_message(format!("sim {now} round {} acc {acc}", records.rounds));
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // Where the run stopped, which is short of the end after Ctrl-C or a failure.
        self.bar.abandon();
    }
}

//! `flotilla validate` and `flotilla run`: a scenario checked, or run (a sweep runs every
//! point).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Args;
use flotilla::Chain;
use flotilla::run::{RunError, RunOptions, run};
use flotilla::scenario::{self, UnitError};
use flotilla::sweep::{Point, SweepOptions, points, run_sweep};
use flotilla_actors::StopReason;

use super::BAD_INPUT;

#[derive(Args)]
pub(crate) struct RunArgs {
    /// The scenario file (RON).
    file: PathBuf,
    /// Where to write results (default: runs/<name>-<timestamp>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Override the scenario's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Override a field, written `path=value` with the value as in the scenario (RON),
    /// e.g. `--set pool.backend=Tch --set pool.batch_clients=5`; repeatable.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    set: Vec<String>,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    /// Serve Prometheus metrics on this address (a bare port listens on 127.0.0.1).
    #[arg(long)]
    metrics_addr: Option<String>,
    /// Keep serving metrics this long after the run (e.g. "30s"), for a final scrape.
    #[arg(long, value_parser = parse_duration)]
    linger: Option<Duration>,
    /// Continue a run that was killed or interrupted, in its directory: the simulation
    /// replays from the start and takes every finished job from the directory's store.
    #[arg(long, value_name = "DIR", conflicts_with = "out")]
    resume: Option<PathBuf>,
    /// Keep job results in DIR/jobs.store, shared with every run given the same DIR:
    /// identical jobs (in other sweep points, repeated runs) are computed once.
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
}

/// Why a `--linger` duration cannot be waited for.
#[derive(Debug, thiserror::Error)]
enum LingerError {
    /// Not a duration.
    #[error(transparent)]
    Unit(#[from] UnitError),
    /// Longer than the host's clock can count.
    #[error("longer than this machine's clock counts")]
    TooLong(#[from] std::time::TryFromFloatSecsError),
}

/// A `--linger` duration, written as in a scenario.
fn parse_duration(text: &str) -> Result<Duration, LingerError> {
    let d = scenario::Duration::parse(text)?;
    Ok(Duration::try_from_secs_f64(d.value())?)
}

pub(crate) fn validate(file: &Path, set: &[String]) -> ExitCode {
    match scenario::load_with(file, set).and_then(|l| Ok((points(&l)?, l))) {
        Ok((points, l)) => {
            let sweep = points.map_or(String::new(), |p| format!(", a sweep of {} runs", p.len()));
            let memory = l.footprint().map_or(String::new(), |f| {
                format!(", about {} of memory", scenario::human_bytes(f.total()))
            });
            out!(
                "{}: ok ({} clients{sweep}{memory})",
                file.display(),
                l.scenario.data.clients
            );
            if let Some(cache) = l.prefix_cache() {
                out!(
                    "prefix cache: up to {} training and {} test images, {}, {:.1} GFLOP to fill",
                    cache.train,
                    cache.test,
                    scenario::human_bytes(cache.bytes as f64),
                    cache.flops as f64 / 1e9
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", Chain(&e));
            ExitCode::from(BAD_INPUT)
        }
    }
}

pub(crate) fn run_command(args: RunArgs) -> ExitCode {
    let mut loaded = match scenario::load_with(&args.file, &args.set) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {}", Chain(&e));
            return ExitCode::from(BAD_INPUT);
        }
    };
    if let Some(seed) = args.seed {
        loaded.scenario.seed = seed;
    }
    let interrupt = Arc::new(AtomicBool::new(false));
    let flag = interrupt.clone();
    // Without a handler Ctrl-C would kill the process before anything is written.
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed));
    match points(&loaded) {
        Ok(Some(points)) => return sweep_command(&loaded, points, args, interrupt),
        Ok(None) => {}
        Err(e) => {
            eprintln!("error: {}", Chain(&e));
            return ExitCode::from(BAD_INPUT);
        }
    }
    if args.resume.is_some() && points(&loaded).is_ok_and(|p| p.is_some()) {
        eprintln!("error: --resume continues a single run; resume a sweep's points one by one");
        return ExitCode::from(BAD_INPUT);
    }
    let resume = args.resume.is_some();
    let opts = RunOptions {
        out: args.resume.or(args.out),
        progress: !args.quiet,
        interrupt,
        metrics_addr: args.metrics_addr,
        resume,
        cache: args.cache,
        notice: flotilla::notice::to_stderr(),
    };
    let result = match run(&loaded, opts) {
        Ok(r) => r,
        Err(
            e @ (RunError::Scenario(_)
            | RunError::Monitor(_)
            | RunError::Store(_)
            | RunError::Data(_)),
        ) => {
            eprintln!("error: {}", Chain(&e));
            return ExitCode::from(BAD_INPUT);
        }
        Err(e) => {
            eprintln!("error: {}", Chain(&e));
            return ExitCode::FAILURE;
        }
    };
    let s = &result.summary;
    let pct = |v: Option<f64>| v.map_or("-".into(), |a| format!("{:.2}%", a * 100.0));
    out!(
        "{}: global accuracy {}, personalized {}, {:.1} simulated s, {} rounds, {:.1} s wall{}",
        result.dir.display(),
        pct(s.global_accuracy),
        pct(s.personalized_accuracy),
        s.sim_seconds,
        s.rounds,
        s.wall.wall_seconds,
        if s.interrupted { " (interrupted)" } else { "" }
    );
    if resume {
        let (taken, computed) = result.reused;
        eprintln!("resumed: {taken} jobs taken from the store, {computed} computed",);
    }
    let code = match (s.stop_reason, &s.stop_detail) {
        (StopReason::Diverged, detail) => {
            eprintln!(
                "error: the model diverged: {}; results up to there are in {}",
                detail.as_deref().unwrap_or("non-finite values"),
                result.dir.display()
            );
            ExitCode::FAILURE
        }
        (StopReason::Stalled, detail) => {
            eprintln!(
                "stalled: {}",
                detail.as_deref().unwrap_or("nothing was left to happen")
            );
            ExitCode::SUCCESS
        }
        _ => ExitCode::SUCCESS,
    };
    if let Some(linger) = args.linger {
        eprintln!("serving metrics for {:.0} s more", linger.as_secs_f64());
        std::thread::sleep(linger);
    }
    code
}

fn sweep_command(
    loaded: &scenario::Loaded,
    points: Vec<Point>,
    args: RunArgs,
    interrupt: Arc<AtomicBool>,
) -> ExitCode {
    if args.metrics_addr.is_some() {
        eprintln!("note: --metrics-addr is ignored for sweeps (their points share one process)");
    }
    eprintln!("sweep {}: {} points", loaded.scenario.name, points.len());
    let opts = SweepOptions {
        out: args.out,
        progress: !args.quiet,
        interrupt,
        cache: args.cache,
        notice: flotilla::notice::to_stderr(),
    };
    match run_sweep(loaded, points, opts) {
        Ok((dir, data)) => {
            out!("{}", data.table());
            out!("{}: sweep.csv and report.md written", dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", Chain(&e));
            ExitCode::FAILURE
        }
    }
}

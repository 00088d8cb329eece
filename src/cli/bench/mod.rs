//! `flotilla bench`: every measurement in a child process of its own, printed as one
//! table.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use flotilla::Chain;
use flotilla::measure::{Figures, Item, measure};
use flotilla::pool::Backend;

use super::BAD_INPUT;

mod optional;

use optional::{backbone_rows, remote_rows};

#[derive(Args)]
pub(crate) struct BenchArgs {
    /// The workload of the pool and run measurements.
    #[arg(long, default_value = "scenarios/w1.ron")]
    scenario: PathBuf,
    /// Backends to measure (flex, tch); default: every one compiled in.
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(Backend))]
    backends: Vec<Backend>,
    /// Clients per batch for the batched measurements.
    #[arg(long, default_value_t = 5)]
    batch_clients: usize,
    /// Skip the whole runs.
    #[arg(long)]
    no_runs: bool,
    /// Measure only these parts (engine, load, pool, runs, remote, backbone); default: all
    /// but remote, which needs `nats-server` on the PATH, and backbone, which takes
    /// minutes.
    #[arg(long, value_delimiter = ',', value_enum)]
    only: Vec<Part>,
    /// Run one measurement here and print its figures as JSON (used by the table's
    /// child processes).
    #[arg(long, hide = true)]
    item: Option<String>,
}

/// A part of the benchmark.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Part {
    /// The engine with a no-op learner, from a thousand to a million clients.
    Engine,
    /// Loading a CIFAR-10-sized data set.
    Load,
    /// Local training through the pool, one client and a batch of clients per job.
    Pool,
    /// Whole runs of the scenario.
    Runs,
    /// Whole runs on two worker processes over NATS against the in-process pool.
    Remote,
    /// A real-size backbone (ViT-S/16 at 224 px, random weights written here): head-only
    /// evaluation, and one round of head-only training.
    Backbone,
}

/// Updates in each population measurement.
const POPULATION_UPDATES: u64 = 200_000;

/// Values of W1's adapter and head: the vector every population measurement moves.
const W1_VALUES: usize = 4_746;

/// Pairs of 1k- and 1M-client measurements behind the event loop's median ratio.
const RATIO_PAIRS: usize = 3;

/// Updates in each idle-client measurement: a thousand at work, so few updates suffice.
const IDLE_UPDATES: u64 = 20_000;

pub(crate) fn bench_command(args: BenchArgs) -> ExitCode {
    if let Some(json) = &args.item {
        let item: Item = match serde_json::from_str(json) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("error: --item: {}", Chain(&e));
                return ExitCode::from(BAD_INPUT);
            }
        };
        return match measure(&item, &args.scenario) {
            Ok(figures) => {
                out!(
                    "{}",
                    serde_json::to_string(&figures).expect("figures serialize")
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {}", Chain(&e));
                ExitCode::FAILURE
            }
        };
    }
    let backends = if args.backends.is_empty() {
        let mut all = vec![Backend::Flex];
        if cfg!(feature = "tch") {
            all.push(Backend::Tch);
        }
        all
    } else {
        args.backends.clone()
    };
    let mb = |bytes: u64| bytes as f64 / 1e6;
    // Set by any measurement that fails; the table goes on without it.
    let failed = Cell::new(false);
    let mut row = |what: String, item: Item, show: &dyn Fn(&Figures) -> String| match in_child(
        &item,
        &args.scenario,
    ) {
        Ok(f) => {
            out!(
                "| {what} | {} | {:.1} | {:.0} |",
                show(&f),
                f.wall_seconds,
                mb(f.peak_rss_bytes)
            );
            Some(f)
        }
        Err(e) => {
            eprintln!("{what}: {}", Chain(&e));
            failed.set(true);
            None
        }
    };
    out!("| measurement | figure | wall s | peak RSS MB |");
    out!("| --- | ---: | ---: | ---: |");
    let wants = |part: Part| {
        if args.only.is_empty() {
            !matches!(part, Part::Remote | Part::Backbone)
        } else {
            args.only.contains(&part)
        }
    };
    if wants(Part::Engine) {
        let engine = |clients: usize, updates: u64, params: usize| Item::Engine {
            clients,
            updates,
            params,
            at_work: None,
        };
        let events = |f: &Figures| {
            let in_loop = f.work / f.busy_seconds.unwrap_or(f.wall_seconds).max(1e-9);
            format!("{:.0} events/s ({in_loop:.0} in the event loop)", f.rate())
        };
        // 20 updates per client: the event loop's steady state, at either size.
        for clients in [1_000, 10_000] {
            let updates = 20 * clients as u64;
            let what = format!(
                "engine, no-op learner, {clients} clients, 10-value model, {updates} updates"
            );
            row(what, engine(clients, updates, 10), &events);
        }
        // W1's adapter and head (4,746 values) from a thousand to a million clients, a tenth
        // at work: the same 200k updates at every size, so that what grows is the population.
        let w1 = |clients: usize| {
            let what = format!(
                "engine, no-op learner, {clients} clients, W1-sized model, {POPULATION_UPDATES} updates"
            );
            row(
                what,
                engine(clients, POPULATION_UPDATES, W1_VALUES),
                &events,
            )
        };
        let sizes = [1_000, 10_000, 100_000, 1_000_000];
        let figures: Vec<Option<Figures>> = sizes.iter().map(|&c| w1(c)).collect();
        let in_loop = |f: &Figures| f.work / f.busy_seconds.unwrap_or(f.wall_seconds).max(1e-9);
        if let (Some(small), Some(large)) = (&figures[0], &figures[3]) {
            out!(
                "| event loop, 1M clients / 1k clients | {:.2}x | | |",
                in_loop(large) / in_loop(small)
            );
            let per_client = large.peak_rss_bytes.saturating_sub(small.peak_rss_bytes) as f64
                / (sizes[3] - sizes[0]) as f64;
            out!("| memory per client, W1-sized: (1M - 1k) / 999k | {per_client:.0} B | | |");
        }
        // The same ratio again from pairs run back to back: a single pair moves by 15%
        // with the machine's state (what memory the host has yet to back, what else runs).
        let mut ratios = Vec::new();
        for _ in 0..RATIO_PAIRS {
            let pair = [sizes[0], sizes[3]].map(|clients| {
                in_child(
                    &engine(clients, POPULATION_UPDATES, W1_VALUES),
                    &args.scenario,
                )
            });
            match pair {
                [Ok(small), Ok(large)] => ratios.push(in_loop(&large) / in_loop(&small)),
                [Err(e), _] | [_, Err(e)] => {
                    eprintln!("event loop ratio pair: {}", Chain(&e));
                    failed.set(true);
                }
            }
        }
        if !ratios.is_empty() {
            let each: Vec<String> = ratios.iter().map(|r| format!("{r:.2}x")).collect();
            ratios.sort_by(f64::total_cmp);
            out!(
                "| event loop, 1M clients / 1k clients, median of {} pairs run back to back | {:.2}x ({}) | | |",
                ratios.len(),
                ratios[ratios.len() / 2],
                each.join(", ")
            );
        }
        // What an idle client costs: the same thousand at work among 10k and among 1M.
        let idle = |clients: usize| {
            let what = format!(
                "engine, no-op learner, {clients} clients, 1,000 at work, W1-sized model, {IDLE_UPDATES} updates"
            );
            let item = Item::Engine {
                clients,
                updates: IDLE_UPDATES,
                params: W1_VALUES,
                at_work: Some(1_000),
            };
            row(what, item, &events)
        };
        if let (Some(small), Some(large)) = (idle(10_000), idle(1_000_000)) {
            let per_idle = large.peak_rss_bytes.saturating_sub(small.peak_rss_bytes) as f64 / 990e3;
            out!("| memory per idle client, W1-sized: (1M - 10k) / 990k | {per_idle:.0} B | | |");
        }
    }
    if wants(Part::Load) {
        // A CIFAR-10-sized data set (60,000 32x32 RGB images, 184 MB of pixels) from disk.
        let loading = |f: &Figures| {
            let raw = f.work * 3072.0;
            let taken = f
                .peak_rss_bytes
                .saturating_sub(f.start_rss_bytes.unwrap_or(0));
            format!(
                "{:.0} images/s; memory {:.2}x the raw pixels (peak RSS {:.2}x)",
                f.rate(),
                taken as f64 / raw,
                f.peak_rss_bytes as f64 / raw
            )
        };
        let fixture = std::env::temp_dir().join(format!("flotilla-cifar-{}", std::process::id()));
        match flotilla::measure::write_cifar_fixture(&fixture, 60_000) {
            Ok(()) => {
                let item = Item::Load {
                    dir: fixture.clone(),
                };
                row(
                    "loading a CIFAR-10-format data set of 60,000 images".into(),
                    item,
                    &loading,
                );
            }
            Err(e) => {
                eprintln!("writing the CIFAR-10-format fixture: {}", Chain(&e));
                failed.set(true);
            }
        }
        let _ = std::fs::remove_dir_all(&fixture);
    }
    if wants(Part::Pool) {
        let images = |f: &Figures| format!("{:.0} images/s", f.rate());
        for backend in &backends {
            let mut rates = Vec::new();
            for batch in [1, args.batch_clients] {
                let set = vec![
                    format!("pool.backend={backend:?}"),
                    format!("pool.batch_clients={batch}"),
                ];
                let what = format!("pool training, {backend:?}, {batch} client(s) per batch");
                rates.push(row(what, Item::Pool { rounds: 5, set }, &images).map(|f| f.rate()));
            }
            if let [Some(one), Some(many)] = rates[..] {
                out!(
                    "| pool batching speed-up, {backend:?} | {:.2}x | | |",
                    many / one
                );
            }
        }
    }
    if !args.no_runs && wants(Part::Runs) {
        let run = |f: &Figures| format!("{:.2}% accuracy", f.accuracy.unwrap_or(0.0) * 100.0);
        for backend in &backends {
            for batch in [1, args.batch_clients] {
                let set = vec![
                    format!("pool.backend={backend:?}"),
                    format!("pool.batch_clients={batch}"),
                ];
                let what = format!("whole run, {backend:?}, {batch} client(s) per batch");
                row(what, Item::Run { set }, &run);
            }
        }
    }
    if wants(Part::Remote) {
        remote_rows(&mut row);
    }
    if wants(Part::Backbone) && !backbone_rows(&args.scenario) {
        failed.set(true);
    }
    if failed.get() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Why a measurement in a child process gave no figures.
#[derive(Debug, thiserror::Error)]
pub(super) enum ChildError {
    /// The child could not be started.
    #[error("cannot start the measurement")]
    Spawn(#[from] std::io::Error),
    /// The child failed, saying why on its standard error (the cause is the child's).
    #[error("{0}")]
    Failed(String),
    /// The child printed something other than figures.
    #[error("the measurement printed no figures")]
    Output(#[from] serde_json::Error),
}

/// A measurement run in a child process: `flotilla bench --item JSON --scenario FILE`.
pub(super) fn in_child(item: &Item, scenario_file: &Path) -> Result<Figures, ChildError> {
    let exe = std::env::current_exe()?;
    let json = serde_json::to_string(item).expect("items serialize");
    let out = std::process::Command::new(exe)
        .args(["bench", "--item", &json, "--scenario"])
        .arg(scenario_file)
        .output()?;
    if !out.status.success() {
        return Err(ChildError::Failed(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

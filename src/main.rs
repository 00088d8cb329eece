//! The `flotilla` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use flotilla::model::VitConfig;
use flotilla::pool::Backend;
use flotilla::pretrain::{PretrainOptions, pretrain};
use flotilla::run::{RunError, RunOptions, run};
use flotilla::scenario;

/// mimalloc: the engine allocates and frees small event buffers at every event, and flex
/// large tensors at every step; both run faster than on the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Simulate asynchronous, personalized, parameter-efficient federated learning.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario and write its results.
    Run(RunArgs),
    /// Check a scenario file without running it.
    Validate {
        /// The scenario file (RON).
        file: PathBuf,
    },
    /// Train the ViT backbone centrally on some classes and write a checkpoint.
    Pretrain(PretrainArgs),
    /// Print each adapter's trainable values and bytes per update, for a scenario's
    /// backbone (and its own adapter first) or the bundled ViT on MNIST.
    Adapters {
        /// The scenario file (RON) whose backbone to measure.
        file: Option<PathBuf>,
    },
    /// Compare runs and sweeps: print a markdown table and regenerate each one's plots and
    /// report.md.
    Report {
        /// Run directories (with summary.json) or sweep directories (with sweep.csv).
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
    },
    /// Measure the engine (events/s, memory per client), the pool (images/s with and
    /// without client batching, per backend) and whole runs of W1; print a table.
    Bench(BenchArgs),
}

#[derive(Args)]
struct BenchArgs {
    /// The workload of the pool and run measurements.
    #[arg(long, default_value = "scenarios/w1.ron")]
    scenario: PathBuf,
    /// Backends to measure (flex, tch); default: every one compiled in.
    #[arg(long, value_delimiter = ',', value_parser = parse_backend)]
    backends: Vec<Backend>,
    /// Clients per batch for the batched measurements.
    #[arg(long, default_value_t = 5)]
    batch_clients: usize,
    /// Skip the whole runs.
    #[arg(long)]
    no_runs: bool,
    /// Run one measurement here and print its figures as JSON (used by the table's
    /// child processes).
    #[arg(long, hide = true)]
    item: Option<String>,
}

#[derive(Args)]
struct RunArgs {
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
}

#[derive(Args)]
struct PretrainArgs {
    /// Directory with the IDX files.
    #[arg(long)]
    data: PathBuf,
    /// Checkpoint to write (.bpk).
    #[arg(long)]
    out: PathBuf,
    /// Classes to pretrain on, e.g. 0,1,2,3,4.
    #[arg(long, value_delimiter = ',', default_value = "0,1,2,3,4")]
    classes: Vec<u8>,
    #[arg(long, default_value_t = 6)]
    epochs: u32,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Augment with copies shifted by up to this many pixels (0: none).
    #[arg(long, default_value_t = 2)]
    max_shift: usize,
    #[arg(long, default_value_t = 4)]
    patch: usize,
    #[arg(long, default_value_t = 64)]
    dim: usize,
    #[arg(long, default_value_t = 4)]
    depth: usize,
    #[arg(long, default_value_t = 4)]
    heads: usize,
    #[arg(long, default_value_t = 128)]
    mlp: usize,
}

fn parse_backend(text: &str) -> Result<Backend, String> {
    match text.to_lowercase().as_str() {
        "flex" => Ok(Backend::Flex),
        "tch" => Ok(Backend::Tch),
        _ => Err(format!("expected flex or tch, got \"{text}\"")),
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    scenario::Duration::parse(text).map(|d| Duration::from_secs_f64(d.value()))
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Validate { file } => validate(&file),
        Command::Run(args) => run_command(args),
        Command::Pretrain(args) => pretrain_command(args),
        Command::Adapters { file } => adapters_command(file.as_deref()),
        Command::Report { dirs } => report_command(&dirs),
        Command::Bench(args) => bench_command(args),
    }
}

fn bench_command(args: BenchArgs) -> ExitCode {
    use flotilla::bench::{Item, in_child, measure};
    if let Some(json) = &args.item {
        let item: Item = match serde_json::from_str(json) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("error: --item: {e}");
                return ExitCode::from(BAD_INPUT);
            }
        };
        return match measure(&item, &args.scenario) {
            Ok(figures) => {
                println!(
                    "{}",
                    serde_json::to_string(&figures).expect("figures serialize")
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
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
    let mut failed = false;
    let mut row = |what: String, item: Item, show: &dyn Fn(&flotilla::bench::Figures) -> String| {
        match in_child(&item, &args.scenario) {
            Ok(f) => {
                println!(
                    "| {what} | {} | {:.1} | {:.0} |",
                    show(&f),
                    f.wall_seconds,
                    mb(f.peak_rss_bytes)
                );
                Some(f)
            }
            Err(e) => {
                eprintln!("{what}: {e}");
                failed = true;
                None
            }
        }
    };
    println!("| measurement | figure | wall s | peak RSS MB |");
    println!("| --- | ---: | ---: | ---: |");
    let engine = |clients: usize, updates: u64, params: usize| Item::Engine {
        clients,
        updates,
        params,
    };
    let events = |f: &flotilla::bench::Figures| {
        let in_loop = f.work / f.busy_seconds.unwrap_or(f.wall_seconds).max(1e-9);
        format!("{:.0} events/s ({in_loop:.0} in the event loop)", f.rate())
    };
    // 20 updates per client: the event loop's steady state, at either size.
    for clients in [1_000, 10_000] {
        let updates = 20 * clients as u64;
        let what =
            format!("engine, no-op learner, {clients} clients, 10-value model, {updates} updates");
        row(what, engine(clients, updates, 10), &events);
    }
    // W1's adapter and head: 4,746 values held by every client that took part. The same
    // 20k updates at both sizes, so that the memory difference is the clients'.
    let mut w1 = |clients: usize| {
        let what =
            format!("engine, no-op learner, {clients} clients, W1-sized model, 20000 updates");
        row(what, engine(clients, 20_000, 4_746), &events)
    };
    if let (Some(a), Some(b)) = (w1(1_000), w1(10_000)) {
        let per_client = b.peak_rss_bytes.saturating_sub(a.peak_rss_bytes) as f64 / 9_000.0;
        println!("| memory per client, W1-sized: (10k - 1k) / 9k | {per_client:.0} B | | |");
    }
    let images = |f: &flotilla::bench::Figures| format!("{:.0} images/s", f.rate());
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
            println!(
                "| pool batching speed-up, {backend:?} | {:.2}x | | |",
                many / one
            );
        }
    }
    if !args.no_runs {
        let run = |f: &flotilla::bench::Figures| {
            format!("{:.2}% accuracy", f.accuracy.unwrap_or(0.0) * 100.0)
        };
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
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn report_command(dirs: &[PathBuf]) -> ExitCode {
    use flotilla::report::{RunData, comparison_table, write_report};
    use flotilla::sweep::{SweepData, write_sweep_report};
    let mut runs = Vec::new();
    for dir in dirs {
        let written = if dir.join("sweep.csv").is_file() {
            SweepData::read(dir)
                .map_err(|e| e.to_string())
                .and_then(|sweep| {
                    let w = write_sweep_report(&sweep).map_err(|e| e.to_string());
                    println!("{}", sweep.table());
                    w
                })
        } else {
            RunData::read(dir)
                .map_err(|e| e.to_string())
                .and_then(|run| {
                    let w = write_report(&run).map_err(|e| e.to_string());
                    runs.push(run);
                    w
                })
        };
        match written {
            Ok(files) => eprintln!("{}: {} files written", dir.display(), files.len()),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(BAD_INPUT);
            }
        }
    }
    if !runs.is_empty() {
        println!("{}", comparison_table(&runs));
    }
    ExitCode::SUCCESS
}

/// The bundled ViT (DESIGN.md's) on 28x28 grey images of 10 classes.
fn bundled_vit() -> VitConfig {
    VitConfig {
        image: 28,
        channels: 1,
        patch: 4,
        dim: 64,
        depth: 4,
        heads: 4,
        mlp: 128,
        classes: 10,
    }
}

fn adapters_command(file: Option<&Path>) -> ExitCode {
    use flotilla::model::{AdapterCost, catalog};
    use flotilla_actors::{Encoding, Rounding};
    let (vit, mut methods) = match file {
        None => (bundled_vit(), catalog(1)),
        Some(file) => {
            let loaded = match scenario::load(file) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(BAD_INPUT);
                }
            };
            let b = bundled_vit();
            let vit = loaded.vit(b.image, b.channels, b.classes);
            let mut methods = vec![loaded.adaptation()];
            methods.extend(catalog(loaded.scenario.data.clients));
            (vit, methods)
        }
    };
    methods.dedup();
    let dtypes = [
        Encoding::F32,
        Encoding::F16,
        Encoding::Int8(Rounding::Nearest),
        Encoding::TopK(0.1),
    ];
    println!(
        "ViT patch {} dim {} depth {} heads {} mlp {}, {} classes",
        vit.patch, vit.dim, vit.depth, vit.heads, vit.mlp, vit.classes
    );
    let names: Vec<String> = dtypes
        .iter()
        .map(|d| format!("bytes/update {d:?}"))
        .collect();
    println!(
        "| adapter | head | trainable | of backbone | {} |",
        names.join(" | ")
    );
    println!(
        "| --- | --- | ---: | ---: |{}",
        " ---: |".repeat(dtypes.len())
    );
    for m in &methods {
        let cost = AdapterCost::measure(&vit, m);
        let bytes: Vec<String> = dtypes
            .iter()
            .map(|d| d.encoded_bytes(&cost.layout).to_string())
            .collect();
        println!(
            "| {} | {} | {} | {:.2}% | {} |",
            cost.adapter,
            cost.head,
            cost.trainable,
            cost.share() * 100.0,
            bytes.join(" | ")
        );
    }
    ExitCode::SUCCESS
}

/// Exit code for input the user must fix.
const BAD_INPUT: u8 = 2;

fn validate(file: &Path) -> ExitCode {
    match scenario::load(file).and_then(|l| Ok((flotilla::sweep::points(&l)?, l))) {
        Ok((points, l)) => {
            let sweep = points.map_or(String::new(), |p| format!(", a sweep of {} runs", p.len()));
            println!(
                "{}: ok ({} clients{sweep})",
                file.display(),
                l.scenario.data.clients
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(BAD_INPUT)
        }
    }
}

fn run_command(args: RunArgs) -> ExitCode {
    let mut loaded = match scenario::load(&args.file) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(BAD_INPUT);
        }
    };
    if let Some(seed) = args.seed {
        loaded.scenario.seed = seed;
    }
    let loaded = match flotilla::sweep::override_fields(loaded, &args.set) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(BAD_INPUT);
        }
    };
    let interrupt = Arc::new(AtomicBool::new(false));
    let flag = interrupt.clone();
    // Without a handler Ctrl-C would kill the process before anything is written.
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed));
    match flotilla::sweep::points(&loaded) {
        Ok(Some(points)) => return sweep_command(&loaded, points, args, interrupt),
        Ok(None) => {}
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(BAD_INPUT);
        }
    }
    let opts = RunOptions {
        out: args.out,
        progress: !args.quiet,
        interrupt,
        metrics_addr: args.metrics_addr,
    };
    let result = match run(&loaded, opts) {
        Ok(r) => r,
        Err(e @ (RunError::Scenario(_) | RunError::Monitor(_))) => {
            eprintln!("error: {e}");
            return ExitCode::from(BAD_INPUT);
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let s = &result.summary;
    let pct = |v: Option<f64>| v.map_or("-".into(), |a| format!("{:.2}%", a * 100.0));
    println!(
        "{}: global accuracy {}, personalized {}, {:.1} simulated s, {} rounds, {:.1} s wall{}",
        result.dir.display(),
        pct(s.global_accuracy),
        pct(s.personalized_accuracy),
        s.sim_seconds,
        s.rounds,
        s.wall.wall_seconds,
        if s.interrupted { " (interrupted)" } else { "" }
    );
    if let Some(linger) = args.linger {
        eprintln!("serving metrics for {:.0} s more", linger.as_secs_f64());
        std::thread::sleep(linger);
    }
    ExitCode::SUCCESS
}

fn sweep_command(
    loaded: &scenario::Loaded,
    points: Vec<flotilla::sweep::Point>,
    args: RunArgs,
    interrupt: Arc<AtomicBool>,
) -> ExitCode {
    use flotilla::sweep::{SweepOptions, run_sweep};
    if args.metrics_addr.is_some() {
        eprintln!("note: --metrics-addr is ignored for sweeps (their points share one process)");
    }
    eprintln!("sweep {}: {} points", loaded.scenario.name, points.len());
    let opts = SweepOptions {
        out: args.out,
        progress: !args.quiet,
        interrupt,
    };
    match run_sweep(loaded, points, opts) {
        Ok((dir, data)) => {
            println!("{}", data.table());
            println!("{}: sweep.csv and report.md written", dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn pretrain_command(a: PretrainArgs) -> ExitCode {
    let opts = PretrainOptions {
        vit: VitConfig {
            image: 28,
            channels: 1,
            patch: a.patch,
            dim: a.dim,
            depth: a.depth,
            heads: a.heads,
            mlp: a.mlp,
            classes: 10,
        },
        classes: a.classes,
        epochs: a.epochs,
        batch_size: a.batch_size,
        lr: a.lr,
        seed: a.seed,
        max_shift: a.max_shift,
    };
    match pretrain(&a.data, &a.out, &opts) {
        Ok(acc) => {
            let last = acc.last().copied().unwrap_or(0.0);
            println!(
                "{}: written; test accuracy on the pretraining classes {:.2}%",
                a.out.display(),
                last * 100.0
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

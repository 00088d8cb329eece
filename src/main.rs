//! The `flotilla` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use flotilla::model::VitConfig;
use flotilla::pretrain::{PretrainOptions, pretrain};
use flotilla::run::{RunError, RunOptions, run};
use flotilla::scenario;

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

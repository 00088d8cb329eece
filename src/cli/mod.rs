//! The `flotilla` command line: one module per command; the library does the work.

/// `out!` for a command's results: when the reader goes away (`flotilla adapters |
/// head`), the process ends quietly with success, as other command-line tools do, instead
/// of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::print_line(format_args!($($arg)*))
    };
}

mod adapters;
mod bench;
mod pretrain;
mod report;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use flotilla::Chain;
use flotilla::pool::remote::{Build, Refusal};

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
    Run(run::RunArgs),
    /// Check a scenario file without running it.
    Validate {
        /// The scenario file (RON).
        file: PathBuf,
        /// Override a field, as `flotilla run --set` does; repeatable.
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<String>,
    },
    /// Train the ViT backbone centrally on some classes and write a checkpoint.
    Pretrain(pretrain::PretrainArgs),
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
    Bench(bench::BenchArgs),
    /// Answer the jobs of runs whose pool is remote (`pool: (remote: Nats(url: ...))`),
    /// on this machine's CPU or one of its GPUs, until stopped.
    Worker {
        /// The NATS server (with JetStream) the runs send their jobs to.
        #[arg(long, value_name = "URL", default_value = "nats://127.0.0.1:4222")]
        nats: String,
        /// Where to compute: `cpu`, or `cuda:N` (LibTorch, the `tch` feature).
        #[arg(long, default_value = "cpu")]
        device: flotilla::pool::remote::WorkerDevice,
        /// Jobs computed at once (on the CPU, threads; 0: one per core).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// This worker's name in the runs' messages (default: host and process id).
        #[arg(long)]
        name: Option<String>,
    },
}

/// Exit code for input the user must fix.
const BAD_INPUT: u8 = 2;

/// Parses the command line and runs the command.
pub(crate) fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Validate { file, set } => run::validate(&file, &set),
        Command::Run(args) => run::run_command(args),
        Command::Pretrain(args) => pretrain::pretrain_command(args),
        Command::Adapters { file } => adapters::adapters_command(file.as_deref()),
        Command::Report { dirs } => report::report_command(&dirs),
        Command::Bench(args) => bench::bench_command(args),
        Command::Worker {
            nats,
            device,
            threads,
            name,
        } => worker_command(nats, device, threads, name),
    }
}

fn worker_command(
    url: String,
    device: flotilla::pool::remote::WorkerDevice,
    threads: usize,
    name: Option<String>,
) -> ExitCode {
    let threads = if threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        threads
    };
    let name = name.unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    });
    let opts = flotilla::pool::remote::WorkerOptions {
        url,
        device,
        threads,
        name,
    };
    let build: Build = Arc::new(|ctx, opts| {
        flotilla::run::worker_learner(ctx, opts).map_err(|e| Arc::new(e) as Refusal)
    });
    match flotilla::pool::remote::serve(opts, build, flotilla::notice::to_stderr()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", Chain(&e));
            ExitCode::from(BAD_INPUT)
        }
    }
}

/// Writes one line of results to standard output (see `out!`).
fn print_line(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_fmt(line)
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush());
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("error: cannot write to standard output: {}", Chain(&e));
            std::process::exit(1);
        }
    }
}

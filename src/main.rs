//! The `flotilla` command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Parser, Subcommand};
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
    Run {
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
    },
    /// Check a scenario file without running it.
    Validate { file: PathBuf },
    /// Train the ViT backbone centrally on some classes and write a checkpoint.
    Pretrain {
        /// Directory with the IDX files.
        #[arg(long)]
        data: PathBuf,
        /// Checkpoint to write (.bpk).
        #[arg(long)]
        out: PathBuf,
        /// Classes to pretrain on, e.g. 0,1,2,3,4.
        #[arg(long, value_delimiter = ',', default_value = "0,1,2,3,4")]
        classes: Vec<u8>,
        #[arg(long, default_value_t = 10)]
        epochs: u32,
        #[arg(long, default_value_t = 64)]
        batch_size: usize,
        #[arg(long, default_value_t = 1e-3)]
        lr: f64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
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
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Validate { file } => match scenario::load(&file) {
            Ok(l) => {
                println!(
                    "{}: ok ({} clients)",
                    file.display(),
                    l.scenario.data.clients
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Run {
            file,
            out,
            seed,
            quiet,
        } => {
            let mut loaded = match scenario::load(&file) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            if let Some(seed) = seed {
                loaded.scenario.seed = seed;
            }
            let interrupt = Arc::new(AtomicBool::new(false));
            let flag = interrupt.clone();
            // A second Ctrl-C while the results are being written falls through to the default.
            let _ = ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed));
            match run(
                &loaded,
                RunOptions {
                    out,
                    progress: !quiet,
                    interrupt,
                },
            ) {
                Ok(r) => {
                    let s = &r.summary;
                    let pct =
                        |v: Option<f64>| v.map_or("-".into(), |a| format!("{:.2}%", a * 100.0));
                    println!(
                        "{}: global accuracy {}, personalized {}, {:.1} simulated s, {} rounds, {:.1} s wall{}",
                        r.dir.display(),
                        pct(s.global_accuracy),
                        pct(s.personalized_accuracy),
                        s.sim_seconds,
                        s.rounds,
                        s.wall.wall_seconds,
                        if s.interrupted { " (interrupted)" } else { "" }
                    );
                    ExitCode::SUCCESS
                }
                Err(RunError::Scenario(e)) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Pretrain {
            data,
            out,
            classes,
            epochs,
            batch_size,
            lr,
            seed,
            patch,
            dim,
            depth,
            heads,
            mlp,
        } => {
            let opts = PretrainOptions {
                vit: VitConfig {
                    image: 28,
                    channels: 1,
                    patch,
                    dim,
                    depth,
                    heads,
                    mlp,
                    classes: 10,
                },
                classes,
                epochs,
                batch_size,
                lr,
                seed,
            };
            match pretrain(&data, &out, &opts) {
                Ok(acc) => {
                    println!(
                        "{}: written; final accuracy on the pretraining classes {:.2}%",
                        out.display(),
                        acc.last().copied().unwrap_or(0.0) * 100.0
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

//! `flotilla pretrain`: a backbone trained centrally on some classes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use flotilla::Chain;
use flotilla::model::{VitConfig, VitStyle};
use flotilla::pretrain::{PretrainError, PretrainOptions, pretrain};

#[derive(Args)]
pub(crate) struct PretrainArgs {
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

pub(crate) fn pretrain_command(a: PretrainArgs) -> ExitCode {
    let opts = PretrainOptions {
        // The image side, channels and classes come from the data.
        vit: VitConfig {
            image: 0,
            channels: 0,
            patch: a.patch,
            dim: a.dim,
            depth: a.depth,
            heads: a.heads,
            mlp: a.mlp,
            classes: 0,
            style: VitStyle::default(),
        },
        classes: a.classes,
        epochs: a.epochs,
        batch_size: a.batch_size,
        lr: a.lr,
        seed: a.seed,
        max_shift: a.max_shift,
    };
    match pretrain(&a.data, &a.out, &opts, flotilla::notice::to_stderr()) {
        Ok(acc) => {
            let last = acc.last().copied().unwrap_or(0.0);
            out!(
                "{}: written; test accuracy on the pretraining classes {:.2}%",
                a.out.display(),
                last * 100.0
            );
            ExitCode::SUCCESS
        }
        Err(e @ (PretrainError::Directory(_) | PretrainError::Save(_))) => {
            eprintln!("error: {}", Chain(&e));
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {}", Chain(&e));
            ExitCode::from(super::BAD_INPUT)
        }
    }
}

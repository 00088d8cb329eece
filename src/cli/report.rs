//! `flotilla report`: runs and sweeps compared in one table, their plots redrawn.

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;

use flotilla::Chain;
use flotilla::report::{RunData, comparison_table, write_report};
use flotilla::sweep::{SweepData, write_sweep_report};

use super::BAD_INPUT;

pub(crate) fn report_command(dirs: &[PathBuf]) -> ExitCode {
    let mut runs = Vec::new();
    for dir in dirs {
        let written: Result<Vec<PathBuf>, Box<dyn Error>> = if dir.join("sweep.csv").is_file() {
            SweepData::read(dir).map_err(Into::into).and_then(|sweep| {
                let w = write_sweep_report(&sweep).map_err(Into::into);
                out!("{}", sweep.table());
                w
            })
        } else {
            RunData::read(dir).map_err(Into::into).and_then(|run| {
                let w = write_report(&run).map_err(Into::into);
                runs.push(run);
                w
            })
        };
        match written {
            Ok(files) => eprintln!("{}: {} files written", dir.display(), files.len()),
            Err(e) => {
                eprintln!("error: {}", Chain(&*e));
                return ExitCode::from(BAD_INPUT);
            }
        }
    }
    if !runs.is_empty() {
        out!("{}", comparison_table(&runs));
    }
    ExitCode::SUCCESS
}

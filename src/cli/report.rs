//! `flotilla report`: runs and sweeps compared in one table, their plots redrawn.

use std::path::PathBuf;
use std::process::ExitCode;

use flotilla::report::{RunData, comparison_table, write_report};
use flotilla::sweep::{SweepData, write_sweep_report};

use super::BAD_INPUT;

pub(crate) fn report_command(dirs: &[PathBuf]) -> ExitCode {
    let mut runs = Vec::new();
    for dir in dirs {
        let written = if dir.join("sweep.csv").is_file() {
            SweepData::read(dir)
                .map_err(|e| e.to_string())
                .and_then(|sweep| {
                    let w = write_sweep_report(&sweep).map_err(|e| e.to_string());
                    out!("{}", sweep.table());
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
        out!("{}", comparison_table(&runs));
    }
    ExitCode::SUCCESS
}

//! Running a sweep: every point to its own directory, several at once when asked.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::{Point, SweepData, SweepRow, axis_names, write_sweep_report};
use crate::error::Chain;
use crate::notice::Notice;
use crate::report::Summary;
use crate::run::{RunError, RunOptions, run, timestamped_dir};
use crate::scenario::Loaded;

/// Options of a sweep.
pub struct SweepOptions {
    /// The sweep's directory (default: `runs/<name>-<timestamp>`).
    pub out: Option<PathBuf>,
    /// Tell a line as each point ends.
    pub progress: bool,
    /// Set to stop: no new point starts, and the running ones stop as interrupted.
    pub interrupt: Arc<AtomicBool>,
    /// Share one job store in this directory among the points (and with other runs).
    pub cache: Option<PathBuf>,
    /// Where the points' lines and the runs' news go.
    pub notice: Notice,
}

/// Why a sweep did not complete.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The sweep's directory or its files cannot be written.
    #[error("{dir}")]
    Write {
        /// The sweep's directory.
        dir: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
    /// Some points failed; the others' results are written.
    #[error(
        "{} of {total} points failed (the others are in {dir}): {}",
        failed.len(),
        failed.iter().map(|(p, e)| format!("{p}: {}", Chain(e))).collect::<Vec<_>>().join("; ")
    )]
    Points {
        /// The sweep's directory.
        dir: PathBuf,
        /// Points in the sweep.
        total: usize,
        /// Each failed point's directory name and error.
        failed: Vec<(String, RunError)>,
    },
}

/// Runs every point (several at once when `sweep.parallel` says so), then writes
/// `sweep.csv` and the report. Returns the sweep's directory and its data.
pub fn run_sweep(
    loaded: &Loaded,
    points: Vec<Point>,
    opts: SweepOptions,
) -> Result<(PathBuf, SweepData), SweepError> {
    let sweep = loaded.scenario.sweep.as_ref().expect("a sweep scenario");
    let dir = opts
        .out
        .clone()
        .unwrap_or_else(|| timestamped_dir(&loaded.scenario.name));
    let failed = |source: std::io::Error| SweepError::Write {
        dir: dir.clone(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(failed)?;
    std::fs::copy(&loaded.file, dir.join("sweep.ron")).map_err(failed)?;
    let parallel = sweep.parallel.clamp(1, points.len().max(1));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Summary, RunError>>>> =
        Mutex::new((0..points.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..parallel {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= points.len() || opts.interrupt.load(Ordering::Relaxed) {
                        break;
                    }
                    let p = &points[i];
                    let mut loaded = p.loaded.clone();
                    if loaded.scenario.pool.workers == 0 {
                        loaded.scenario.pool.workers = (cores / parallel).max(1);
                    }
                    let result = run(
                        &loaded,
                        RunOptions {
                            cache: opts.cache.clone(),
                            notice: opts.notice.clone(),
                            ..RunOptions::quiet(
                                Some(dir.join(p.dir_name())),
                                opts.interrupt.clone(),
                            )
                        },
                    )
                    .map(|r| (r.summary, r.reused));
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if opts.progress {
                        let what = match &result {
                            Ok((s, (taken, computed))) => format!(
                                "accuracy {}, time to target {}, {:.0} s wall{}",
                                s.global_accuracy
                                    .map_or("-".into(), |a| format!("{:.2}%", a * 100.0)),
                                s.time_to_target.map_or("-".into(), |t| format!("{t:.1} s")),
                                s.wall.wall_seconds,
                                if opts.cache.is_some() {
                                    format!(", {taken} of {} jobs from the cache", taken + computed)
                                } else {
                                    String::new()
                                }
                            ),
                            Err(e) => format!("failed: {}", Chain(e)),
                        };
                        (opts.notice)(&format!(
                            "[{n}/{}] {}: {what}",
                            points.len(),
                            p.labels.join(", ")
                        ));
                    }
                    results.lock().expect("results lock")[i] = Some(result.map(|r| r.0));
                }
            });
        }
    });
    let results = results.into_inner().expect("results lock");
    let names = axis_names(sweep);
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (p, r) in points.iter().zip(results) {
        match r {
            Some(Ok(summary)) => rows.push(SweepRow::new(p, summary)),
            Some(Err(e)) => errors.push((p.dir_name(), e)),
            None => {}
        }
    }
    let data = SweepData {
        dir: dir.clone(),
        name: loaded.scenario.name.clone(),
        axes: names,
        rows,
    };
    data.write_csv().map_err(failed)?;
    write_sweep_report(&data).map_err(failed)?;
    if !errors.is_empty() {
        return Err(SweepError::Points {
            dir,
            total: points.len(),
            failed: errors,
        });
    }
    Ok((dir, data))
}

//! `sweep.csv`: one row per point, written after a sweep and read back by `report`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::Point;
use crate::report::Summary;

/// One point's row of `sweep.csv`.
#[derive(Clone, Debug)]
pub struct SweepRow {
    /// The point's directory name.
    pub dir: String,
    /// One label per axis.
    pub labels: Vec<String>,
    /// Which repeat, from 0.
    pub repeat: u32,
    /// The seed it ran with.
    pub seed: u64,
    /// Final global accuracy.
    pub global_accuracy: Option<f64>,
    /// Final personalized accuracy.
    pub personalized_accuracy: Option<f64>,
    /// Simulated seconds to the target accuracy.
    pub time_to_target: Option<f64>,
    /// Simulated seconds at the end.
    pub sim_seconds: f64,
    /// Rounds (or model versions).
    pub rounds: u32,
    /// Bytes sent up.
    pub bytes_up: u64,
    /// Bytes sent down.
    pub bytes_down: u64,
    /// 90th percentile of update staleness.
    pub staleness_p90: Option<u64>,
    /// Wall seconds of the run.
    pub wall_seconds: f64,
}

/// The columns of `sweep.csv` after `point,dir,<axes...>`.
const FIGURES: [&str; 11] = [
    "repeat",
    "seed",
    "global_accuracy",
    "personalized_accuracy",
    "time_to_target",
    "sim_seconds",
    "rounds",
    "bytes_up",
    "bytes_down",
    "staleness_p90",
    "wall_seconds",
];

impl SweepRow {
    pub(super) fn new(p: &Point, s: Summary) -> Self {
        Self {
            dir: p.dir_name(),
            labels: p.labels.clone(),
            repeat: p.repeat,
            seed: s.seed,
            global_accuracy: s.global_accuracy,
            personalized_accuracy: s.personalized_accuracy,
            time_to_target: s.time_to_target,
            sim_seconds: s.sim_seconds,
            rounds: s.rounds.max(s.model_version as u32),
            bytes_up: s.bytes_up,
            bytes_down: s.bytes_down,
            staleness_p90: s.staleness.p90,
            wall_seconds: s.wall.wall_seconds,
        }
    }

    fn fields(&self) -> Vec<String> {
        let opt = |v: Option<f64>| v.map_or(String::new(), |x| x.to_string());
        vec![
            self.repeat.to_string(),
            self.seed.to_string(),
            opt(self.global_accuracy),
            opt(self.personalized_accuracy),
            opt(self.time_to_target),
            self.sim_seconds.to_string(),
            self.rounds.to_string(),
            self.bytes_up.to_string(),
            self.bytes_down.to_string(),
            self.staleness_p90.map_or(String::new(), |v| v.to_string()),
            self.wall_seconds.to_string(),
        ]
    }
}

/// A sweep directory's results.
#[derive(Clone, Debug)]
pub struct SweepData {
    /// The sweep's directory.
    pub dir: PathBuf,
    /// The scenario's name.
    pub name: String,
    /// The axes' names, in order.
    pub axes: Vec<String>,
    /// One row per point and repeat.
    pub rows: Vec<SweepRow>,
}

/// A sweep directory whose `sweep.csv` cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SweepReadError {
    /// The file is missing or not CSV.
    #[error("{path}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// What the CSV reader said.
        source: csv::Error,
    },
    /// The header is not `sweep.csv`'s.
    #[error("{path}: expected columns point,dir,<axes...>,{}", FIGURES.join(","))]
    Columns {
        /// The file.
        path: PathBuf,
    },
    /// A row whose figure is missing or not a number.
    #[error("{path}: row {row}: {figure} {problem}")]
    Row {
        /// The file.
        path: PathBuf,
        /// The row, from 1 after the header.
        row: usize,
        /// The column.
        figure: &'static str,
        /// "is empty" or "is not a number".
        problem: &'static str,
    },
}

impl SweepData {
    pub(super) fn write_csv(&self) -> std::io::Result<()> {
        let mut w = csv::Writer::from_path(self.dir.join("sweep.csv"))?;
        let mut header = vec!["point".to_string(), "dir".to_string()];
        header.extend(self.axes.iter().cloned());
        header.extend(FIGURES.iter().map(|f| f.to_string()));
        w.write_record(&header)?;
        for (i, r) in self.rows.iter().enumerate() {
            let mut rec = vec![i.to_string(), r.dir.clone()];
            rec.extend(r.labels.iter().cloned());
            rec.extend(r.fields());
            w.write_record(&rec)?;
        }
        w.flush()
    }

    /// Reads `sweep.csv` back: the axes are the columns between `dir` and `repeat`.
    pub fn read(dir: &Path) -> Result<Self, SweepReadError> {
        let path = dir.join("sweep.csv");
        let csv_error = |source| SweepReadError::Csv {
            path: path.clone(),
            source,
        };
        let mut r = csv::Reader::from_path(&path).map_err(csv_error)?;
        let header: Vec<String> = r
            .headers()
            .map_err(csv_error)?
            .iter()
            .map(String::from)
            .collect();
        // The axes stand between `point,dir` and the figures, which end the header.
        let first = header.iter().position(|h| h == "repeat");
        let Some(first) = first.filter(|&f| f >= 2 && header.len() == f + FIGURES.len()) else {
            return Err(SweepReadError::Columns { path });
        };
        let axes = header[2..first].to_vec();
        let mut rows = Vec::new();
        for (n, rec) in r.records().enumerate() {
            let rec = rec.map_err(csv_error)?;
            let at = |i: usize, problem| SweepReadError::Row {
                path: path.clone(),
                row: n + 1,
                figure: FIGURES[i],
                problem,
            };
            let col = |i: usize| rec.get(first + i).unwrap_or("");
            let num = |i: usize| -> Result<Option<f64>, SweepReadError> {
                let c = col(i);
                if c.is_empty() {
                    return Ok(None);
                }
                c.parse().map(Some).map_err(|_| at(i, "is not a number"))
            };
            let req = |i: usize| num(i)?.ok_or_else(|| at(i, "is empty"));
            rows.push(SweepRow {
                dir: rec.get(1).unwrap_or("").to_string(),
                labels: (2..first)
                    .map(|i| rec.get(i).unwrap_or("").to_string())
                    .collect(),
                repeat: req(0)? as u32,
                seed: req(1)? as u64,
                global_accuracy: num(2)?,
                personalized_accuracy: num(3)?,
                time_to_target: num(4)?,
                sim_seconds: req(5)?,
                rounds: req(6)? as u32,
                bytes_up: req(7)? as u64,
                bytes_down: req(8)? as u64,
                staleness_p90: num(9)?.map(|v| v as u64),
                wall_seconds: req(10)?,
            });
        }
        let name = std::fs::read_to_string(dir.join("sweep.ron"))
            .ok()
            .and_then(|t| crate::scenario::parse(&t).ok())
            .map_or_else(
                || {
                    dir.file_name()
                        .map_or(String::new(), |n| n.to_string_lossy().into())
                },
                |s| s.name,
            );
        Ok(Self {
            dir: dir.to_path_buf(),
            name,
            axes,
            rows,
        })
    }

    /// The markdown table of the sweep: one row per point, repeats averaged.
    pub fn table(&self) -> String {
        let mut t = format!(
            "| {} | repeats | global acc. | personalized | time to target (s) | simulated (s) | rounds | MB up | MB down | staleness p90 |\n",
            self.axes.join(" | ")
        );
        t += &format!("|{}", " --- |".repeat(self.axes.len()));
        t += &" ---: |".repeat(9);
        t.push('\n');
        for group in self.groups() {
            let rows: Vec<&SweepRow> = group.iter().map(|&i| &self.rows[i]).collect();
            let mean = |f: &dyn Fn(&SweepRow) -> Option<f64>| {
                let v: Vec<f64> = rows.iter().filter_map(|r| f(r)).collect();
                (v.len() == rows.len() && !v.is_empty())
                    .then(|| v.iter().sum::<f64>() / v.len() as f64)
            };
            let pct = |v: Option<f64>| v.map_or("-".into(), |a| format!("{:.2}%", a * 100.0));
            let num = |v: Option<f64>, d: usize| v.map_or("-".into(), |a| format!("{a:.d$}"));
            let _ = writeln!(
                t,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                rows[0].labels.join(" | "),
                rows.len(),
                pct(mean(&|r| r.global_accuracy)),
                pct(mean(&|r| r.personalized_accuracy)),
                num(mean(&|r| r.time_to_target), 1),
                num(mean(&|r| Some(r.sim_seconds)), 1),
                num(mean(&|r| Some(r.rounds as f64)), 0),
                num(mean(&|r| Some(r.bytes_up as f64 / 1e6)), 1),
                num(mean(&|r| Some(r.bytes_down as f64 / 1e6)), 1),
                num(mean(&|r| r.staleness_p90.map(|v| v as f64)), 0),
            );
        }
        t
    }

    /// Row indices grouped by point (all repeats of one label combination), in order.
    pub(super) fn groups(&self) -> Vec<Vec<usize>> {
        let mut groups: Vec<(Vec<String>, Vec<usize>)> = Vec::new();
        for (i, r) in self.rows.iter().enumerate() {
            match groups.iter_mut().find(|g| g.0 == r.labels) {
                Some(g) => g.1.push(i),
                None => groups.push((r.labels.clone(), vec![i])),
            }
        }
        groups.into_iter().map(|g| g.1).collect()
    }
}

//! A run directory read back: what the report and the comparisons are made from.

use std::path::{Path, PathBuf};

use flotilla_actors::record::ClientState;
use serde::Deserialize;

use super::Summary;
use crate::scenario::{AlgorithmSection, Scenario};

/// A file of a run directory that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file is missing or unreadable.
    #[error("{path}{hint}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the file system said.
        source: std::io::Error,
        /// What the missing file suggests, if anything.
        hint: &'static str,
    },
    /// `summary.json` is not a summary.
    #[error("{path}")]
    Json {
        /// The file.
        path: PathBuf,
        /// What the JSON reader said.
        source: serde_json::Error,
    },
    /// A CSV row that does not read.
    #[error("{path}: row {row}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// The row, from 1 after the header.
        row: usize,
        /// What the CSV reader said.
        source: csv::Error,
    },
}

/// One evaluation, as `timeline.csv` has it (the columns the report uses).
#[derive(Clone, Debug, Deserialize)]
pub struct Evaluation {
    pub sim_seconds: f64,
    pub global_accuracy: f64,
    pub personalized_accuracy: Option<f64>,
    pub bytes_up: u64,
    pub bytes_down: u64,
}

/// A tracked client entering a state, as `activity.csv` has it.
#[derive(Clone, Debug, Deserialize)]
pub struct Activity {
    pub sim_seconds: f64,
    pub client: usize,
    pub state: ClientState,
}

#[derive(Deserialize)]
struct ClientRow {
    class: String,
}

/// Everything the report needs from one run directory.
#[derive(Clone, Debug)]
pub struct RunData {
    /// The run directory.
    pub dir: PathBuf,
    /// Its `summary.json`.
    pub summary: Summary,
    /// The resolved scenario, when `scenario.ron` still parses.
    pub scenario: Option<Scenario>,
    /// Its `timeline.csv`.
    pub timeline: Vec<Evaluation>,
    /// Its `activity.csv`.
    pub activity: Vec<Activity>,
    /// Each client's device class, by id.
    pub classes: Vec<String>,
}

impl RunData {
    /// Reads the run directory `dir`.
    pub fn read(dir: &Path) -> Result<Self, ReadError> {
        let at = |name: &str| dir.join(name);
        let path = at("summary.json");
        let text = std::fs::read_to_string(&path).map_err(|source| ReadError::Io {
            path: path.clone(),
            source,
            hint: " (is this a run directory written by `flotilla run`?)",
        })?;
        let summary: Summary =
            serde_json::from_str(&text).map_err(|source| ReadError::Json { path, source })?;
        let scenario = std::fs::read_to_string(at("scenario.ron"))
            .ok()
            .and_then(|t| crate::scenario::parse(&t).ok());
        Ok(Self {
            dir: dir.to_path_buf(),
            summary,
            scenario,
            timeline: read_csv(&at("timeline.csv"))?,
            activity: read_csv(&at("activity.csv"))?,
            classes: read_csv::<ClientRow>(&at("clients.csv"))?
                .into_iter()
                .map(|r| r.class)
                .collect(),
        })
    }

    /// The algorithm, as a short name (with its server's for PersA-FL and FL-TAC).
    pub fn algorithm(&self) -> String {
        fn name(a: &AlgorithmSection) -> String {
            match a {
                AlgorithmSection::FedAvg {
                    deadline,
                    over_selection,
                    ..
                } => {
                    let mut n = "FedAvg".to_string();
                    if let Some(d) = deadline {
                        n += &format!(" deadline {d}");
                    }
                    if *over_selection > 0.0 {
                        n += &format!(" +{:.0}%", over_selection * 100.0);
                    }
                    n
                }
                AlgorithmSection::FedAsync { .. } => "FedAsync".into(),
                AlgorithmSection::FedBuff { .. } => "FedBuff".into(),
                AlgorithmSection::PersAfl { server, .. } => format!("PersA-FL/{}", name(server)),
                AlgorithmSection::FlTac { server, .. } => format!("FL-TAC/{}", name(server)),
            }
        }
        self.scenario
            .as_ref()
            .map_or("-".into(), |s| name(&s.algorithm))
    }

    /// The adapter's name.
    pub fn adapter(&self) -> String {
        self.scenario
            .as_ref()
            .map_or("-".into(), |s| s.model.adapter.name())
    }

    /// The uplink's encoding.
    pub(crate) fn uplink_encoding(&self) -> String {
        self.scenario
            .as_ref()
            .map_or("-".into(), |s| format!("{:?}", s.wire.up()))
    }
}

/// The rows of a CSV file; an empty file has none.
fn read_csv<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>, ReadError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReadError::Io {
        path: path.to_path_buf(),
        source,
        hint: "",
    })?;
    csv::Reader::from_reader(text.as_bytes())
        .deserialize()
        .enumerate()
        .map(|(i, row)| {
            row.map_err(|source| ReadError::Csv {
                path: path.to_path_buf(),
                row: i + 1,
                source,
            })
        })
        .collect()
}

//! Why a scenario cannot be used, and where the problem is.

use std::path::PathBuf;

/// The error a layer below the scenario (distributions, schedules, data, monitoring)
/// gave for a field's value, kept as the source.
pub type FieldSource = Box<dyn std::error::Error + Send + Sync>;

impl ScenarioError {
    /// The error for `text` of `file` that is not a scenario, at the parser's position.
    pub(crate) fn syntax(file: &std::path::Path, error: ron::error::SpannedError) -> Self {
        ScenarioError::Syntax {
            file: file.to_path_buf(),
            at: error.span.start,
            source: Box::new(error.code),
        }
    }
}

/// A scenario that cannot be used: one line naming the file and either the line and
/// column (syntax, unknown fields, wrong types, bad units) or the field path (values that
/// parse but make no sense together).
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file cannot be read.
    #[error("{file}: cannot read")]
    Read {
        /// The scenario file.
        file: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
    /// The text is not a scenario: RON syntax, an unknown field, a wrong type, a bad unit.
    #[error("{file}:{}:{}", at.line, at.col)]
    Syntax {
        /// The scenario file.
        file: PathBuf,
        /// Where the RON parser stopped.
        at: ron::error::Position,
        /// What it said.
        source: Box<ron::error::Error>,
    },
    /// A field's value breaks a rule of its own or disagrees with another field.
    #[error("{file}: {field}: {message}")]
    Invalid {
        /// The scenario file.
        file: PathBuf,
        /// The field's path, e.g. `population[0].speed`.
        field: String,
        /// What is wrong and what is expected.
        message: String,
    },
    /// A field's value that a lower layer refused.
    #[error("{file}: {field}")]
    Refused {
        /// The scenario file.
        file: PathBuf,
        /// The field's path.
        field: String,
        /// The lower layer's error.
        source: FieldSource,
    },
    /// A file the scenario names (a trace) cannot be read.
    #[error("{file}: {field}: cannot read \"{name}\" ({path})")]
    Unreadable {
        /// The scenario file.
        file: PathBuf,
        /// The field that names the file.
        field: String,
        /// The file as the scenario names it.
        name: String,
        /// Where it was looked for.
        path: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
    /// One point of a sweep is invalid.
    #[error("{file}: sweep: the point {point} is invalid")]
    Point {
        /// The scenario file.
        file: PathBuf,
        /// The point's labels.
        point: String,
        /// What is wrong with it.
        source: Box<ScenarioError>,
    },
}

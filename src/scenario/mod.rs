//! Scenario files: RON parsed with serde, checked field by field, then turned into what
//! runs them.
//!
//! - `schema/`: the file's shape, one file per section; unknown fields are errors.
//! - `units`: quantities written with their units (`"250ms"`, `"20Mbit/s"`).
//! - `validate/`: every rule parsing cannot check, one file per section.
//! - `convert`: the engine's [`SimConfig`](flotilla_actors::SimConfig) and the model's
//!   settings.
//! - `traces`: CSV files a scenario names (availability, link and capacity traces).
//! - `path`: field paths (`population[0].count`) that `run --set` and sweeps change.
//!
//! Every problem becomes one [`ScenarioError`] naming the file and either the line and
//! column (syntax, unknown fields, wrong types, bad units) or the field path (values that
//! parse but make no sense together).

mod backbone;
mod convert;
mod error;
pub mod fedscale;
mod links;
mod path;
mod rule;
mod schema;
mod traces;
mod units;
mod validate;

pub(crate) use convert::to_dist;
pub use error::{FieldSource, ScenarioError};
pub(crate) use path::is_variant;
pub use path::{OverrideError, PathError};
pub(crate) use path::{set_field, to_json};
pub(crate) use rule::Rule;
pub use schema::*;
pub use units::{
    Bandwidth, BitRate, Bytes, Duration, Flop, FlopCount, Quantity, Secs, Size, Speed, Throughput,
    Unit, UnitError,
};
pub use validate::{CacheSize, Footprint, human_bytes};

use std::path::{Path, PathBuf};

/// A parsed and validated scenario, with the directory its relative paths start from.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The scenario as parsed (and possibly overridden).
    pub scenario: Scenario,
    /// The file it came from, for error messages.
    pub file: PathBuf,
    /// The directory its relative paths start from.
    pub base: PathBuf,
}

/// Reads, parses and validates a scenario file.
pub fn load(file: &Path) -> Result<Loaded, ScenarioError> {
    load_with(file, &[])
}

/// Reads and parses a scenario file, overrides fields (`path=value`, the value written as
/// in the scenario, e.g. `pool.backend=Tch`), and validates the result once: an override
/// can supply what the file lacks (a checkpoint's path, say).
pub fn load_with(file: &Path, assignments: &[String]) -> Result<Loaded, ScenarioError> {
    let text = std::fs::read_to_string(file).map_err(|source| ScenarioError::Read {
        file: file.to_path_buf(),
        source,
    })?;
    let scenario = parse(&text).map_err(|e| ScenarioError::syntax(file, e))?;
    let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let loaded = Loaded {
        scenario,
        file: file.to_path_buf(),
        base,
    };
    let loaded = assignments
        .iter()
        .try_fold(loaded, |l, a| path::assign(&l, a))?;
    loaded.validate()?;
    Ok(loaded)
}

/// Parses RON text (with `Some(..)` optional around optional values).
pub fn parse(text: &str) -> Result<Scenario, ron::error::SpannedError> {
    ron_options().from_str(text)
}

/// How scenario text is read: RON with `Some(..)` optional around optional values.
pub(crate) fn ron_options() -> ron::Options {
    ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
}

impl Loaded {
    /// A path from the scenario, resolved against the scenario's directory.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.base.join(relative)
    }
}

//! The scenario file's schema: one experiment. Unknown fields are errors everywhere.
//!
//! Each section has its own file: `data`, `model`, `algorithm`, `population` (device
//! classes and the server's capacity), `run` (wire, stop rule, evaluation, pool).

mod algorithm;
mod data;
mod model;
mod population;
mod run;

pub use algorithm::AlgorithmSection;
pub use data::{DataSection, DataSource};
pub use model::{Backbone, ModelSection};
pub use population::{
    AvailabilitySection, DeviceClass, DistSpec, LinkSection, Schedule, ServerSection, TracesSection,
};
pub use run::{EvalSection, Personalize, PoolSection, RemoteSection, StopSection, WireSection};

use serde::{Deserialize, Serialize};

use crate::model::TrainConfig;

/// One experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Names the run and its directory.
    pub name: String,
    /// Every random draw derives from it.
    pub seed: u64,
    /// Data and partition.
    pub data: DataSection,
    /// Backbone, adapter and head.
    pub model: ModelSection,
    /// Local training.
    pub training: TrainConfig,
    /// The federated algorithm.
    pub algorithm: AlgorithmSection,
    /// Device classes; their counts add up to `data.clients`.
    pub population: Vec<DeviceClass>,
    /// The server's network capacity.
    #[serde(default)]
    pub server: ServerSection,
    /// How parameters are encoded on the wire.
    #[serde(default)]
    pub wire: WireSection,
    /// When the run ends.
    pub stop: StopSection,
    /// When and how the model is evaluated.
    #[serde(default)]
    pub eval: EvalSection,
    /// Live metrics.
    #[serde(default)]
    pub monitoring: MonitoringSection,
    /// The training pool.
    #[serde(default)]
    pub pool: PoolSection,
    /// Run the scenario at every point of a grid of field values (see `flotilla::sweep`).
    /// Each point's resolved scenario has no sweep section.
    #[serde(default, skip_serializing)]
    pub sweep: Option<SweepSection>,
}

/// A grid of scenarios: the product of the axes' values, each point run `repeat` times
/// with seeds `seed`, `seed + 1`, ...
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSection {
    /// The axes, crossed.
    pub axes: Vec<SweepAxis>,
    /// Runs per point, with seeds `seed`, `seed + 1`, ...
    #[serde(default = "one_u32")]
    pub repeat: u32,
    /// Points run at once, each with its share of the cores (0 or 1: one at a time).
    #[serde(default)]
    pub parallel: usize,
}

fn one_u32() -> u32 {
    1
}

/// One axis of a sweep: a field (or several, set together) and its values.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepAxis {
    /// The field's path, e.g. `population[0].uplink.bandwidth` or `model.adapter`; several
    /// paths separated by commas are set together, each value then listing one entry per
    /// path, e.g. `(45, 5)`.
    pub field: String,
    /// The values, written as in the scenario.
    pub values: Vec<SweepValue>,
    /// Short names of the values for sweep.csv and the plots; a leading number makes the
    /// axis numeric (e.g. "0.5 Mbit/s", "20%"). Default: written from the values.
    #[serde(default)]
    pub labels: Vec<String>,
    /// The axis's column in sweep.csv; default: the field.
    #[serde(default)]
    pub name: Option<String>,
}

/// A value of any field, kept as its JSON form (enums as `{"Variant": ...}`), which is
/// how a sweep writes it into the scenario.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum SweepValue {
    // An untagged enum makes RON hand serde its buffered content, which keeps enum variant
    // names (a plain `serde_json::Value` would lose them).
    /// The value's JSON form.
    Value(serde_json::Value),
}

/// Live monitoring.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitoringSection {
    /// Serve Prometheus metrics on this address (a bare port listens on 127.0.0.1).
    #[serde(default)]
    pub prometheus: Option<String>,
}

//! Where the data comes from and how it is split among clients.

use serde::{Deserialize, Serialize};

pub use crate::data::DataSource;
use crate::data::{ImageShape, PartitionSpec, TaskSpec};

/// Where the data comes from and how it is split among clients.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// Where the images come from.
    pub source: DataSource,
    /// The shape every image is brought to on load (bilinear resize, channels converted);
    /// without it, the source's own shape.
    #[serde(default)]
    pub image: Option<ImageShape>,
    /// How they are spread over clients.
    pub partition: PartitionSpec,
    /// Number of clients; the population's counts must add up to it.
    pub clients: usize,
    /// Fewest samples any client may hold.
    #[serde(default = "default_min_samples")]
    pub min_samples: usize,
    /// Share of each client's samples held out as its local test split.
    #[serde(default = "default_local_test_fraction")]
    pub local_test_fraction: f64,
    /// Tasks (class subsets under domain shifts) and the clients holding each; without
    /// any, one task covers all the data and every client holds it.
    #[serde(default)]
    pub tasks: Vec<TaskSpec>,
}

fn default_min_samples() -> usize {
    10
}

fn default_local_test_fraction() -> f64 {
    0.2
}

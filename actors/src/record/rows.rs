//! One row of each file a run writes: a client's statistics, an update's arrival, a
//! device's change of availability, a tracked client's change of state, an evaluation,
//! a clustering.

use serde::Serialize;

use crate::learner::ClientId;

/// Per-client statistics, one row of `clients.csv`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ClientStats {
    /// The client's id.
    pub client: ClientId,
    /// Its device class.
    pub class: String,
    /// Training speed drawn for this device (in its class's unit: samples/s or FLOP/s).
    pub speed: f64,
    /// Whether the device has the memory for a training job (an ineligible client is
    /// never selected).
    pub eligible: bool,
    /// Times the server chose it.
    pub selected: u64,
    /// Training jobs it started.
    pub trained: u64,
    /// Jobs or transfers it lost by dropping out or going offline.
    pub dropouts: u64,
    /// Jobs abandoned because a newer model arrived first.
    pub abandoned: u64,
    /// Updates it started to upload.
    pub updates_sent: u64,
    /// Its updates the server aggregated.
    pub updates_applied: u64,
    /// Its updates the server received but did not aggregate.
    pub updates_discarded: u64,
    /// Bytes it sent, every attempt.
    pub bytes_up: u64,
    /// Bytes it was sent, every attempt.
    pub bytes_down: u64,
    /// Attempts to or from it that were lost.
    pub messages_lost: u64,
    /// Simulated seconds spent computing.
    pub compute_seconds: f64,
    /// Accuracy of the latest evaluated global model on this client's local test split.
    pub local_accuracy: Option<f64>,
    /// Accuracy of this client's personalized model on its local test split.
    pub personalized_accuracy: Option<f64>,
}

/// One update's arrival at the server, one row of `updates.csv`.
#[derive(Clone, Debug, Serialize)]
pub struct UpdateRecord {
    /// When the update arrived (simulated seconds).
    pub sim_seconds: f64,
    /// Whose update it is.
    pub client: ClientId,
    /// The model version the client started from.
    pub base_version: u64,
    /// Versions applied between the client's start and the update's arrival.
    pub staleness: u64,
}

/// A device going online or offline, one row of `availability.csv`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AvailabilityRecord {
    /// When the device changed (simulated seconds).
    pub sim_seconds: f64,
    /// Which device.
    pub client: ClientId,
    /// Whether it is online from then on.
    pub online: bool,
}

/// A tracked client entering a state, one row of `activity.csv`; it stays in that state
/// until its next row (or the end of the run).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ActivityRecord {
    /// When the client entered the state (simulated seconds).
    pub sim_seconds: f64,
    /// Which client.
    pub client: ClientId,
    /// What it does from then on.
    pub state: ClientState,
}

/// What a client is doing, for the clients-by-state gauge and the activity records.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientState {
    /// Online, working for nobody.
    Idle,
    /// Receiving the server's model.
    Downloading,
    /// Training locally.
    Training,
    /// Sending its update.
    Uploading,
    /// Not connected: it can do nothing until it comes back.
    Offline,
}

impl ClientState {
    pub(crate) const ALL: [ClientState; 5] = [
        ClientState::Idle,
        ClientState::Downloading,
        ClientState::Training,
        ClientState::Uploading,
        ClientState::Offline,
    ];

    /// The state as a metric label.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ClientState::Idle => "idle",
            ClientState::Downloading => "downloading",
            ClientState::Training => "training",
            ClientState::Uploading => "uploading",
            ClientState::Offline => "offline",
        }
    }
}

/// One evaluation, one row of `timeline.csv`.
#[derive(Clone, Debug, Serialize)]
pub struct TimelineRow {
    /// When the evaluation ran (simulated seconds).
    pub sim_seconds: f64,
    /// Rounds completed by then.
    pub round: u32,
    /// The evaluated model version.
    pub version: u64,
    /// Accuracy on the central test set.
    pub global_accuracy: f64,
    /// Mean loss on the central test set.
    pub global_loss: f64,
    /// Mean over clients of the global model's accuracy on their own test split (`None`
    /// when no client holds one).
    pub local_accuracy: Option<f64>,
    /// 10th percentile over clients of that accuracy.
    pub local_accuracy_p10: Option<f64>,
    /// Mean over clients of their personalized model's accuracy on their own test split.
    pub personalized_accuracy: Option<f64>,
    /// 10th percentile over clients of that accuracy.
    pub personalized_accuracy_p10: Option<f64>,
    /// Accuracy of the model serving each task on that task's central test set, by task
    /// (written as one column per task).
    #[serde(skip)]
    pub task_accuracy: Vec<f64>,
    /// Purity of the latest clustering of adapters against the true tasks (FL-TAC).
    pub cluster_purity: Option<f64>,
    /// Updates aggregated before the evaluation started.
    pub updates_applied: u64,
    /// Updates discarded before the evaluation started.
    pub updates_discarded: u64,
    /// Bytes sent up before the evaluation started.
    pub bytes_up: u64,
    /// Bytes sent down before the evaluation started.
    pub bytes_down: u64,
}

/// One clustering of received adapters (FL-TAC).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClusteringRecord {
    /// When the clustering ran (simulated seconds).
    pub sim_seconds: f64,
    /// The model version the clustering produced.
    pub version: u64,
    /// Share of the clustered adapters whose true task is their cluster's majority task.
    pub purity: f64,
    /// Adapters per cluster (by model index).
    pub sizes: Vec<u64>,
}

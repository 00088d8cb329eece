//! Metric names the engine emits through the `metrics` facade. Nothing is recorded unless
//! the program installs a recorder (flotilla's Prometheus exporter does).
//!
//! Labels stay low-cardinality: device class, direction, state, reason; never a client id.

/// Simulated seconds elapsed (gauge).
pub(crate) const SIM_SECONDS: &str = "flotilla_sim_seconds";
/// Events dispatched by the clock (counter).
pub(crate) const EVENTS: &str = "flotilla_events_total";
/// Global model version: aggregations applied (gauge).
pub(crate) const MODEL_VERSION: &str = "flotilla_model_version";
/// Updates that reached the server (counter).
pub(crate) const UPDATES_RECEIVED: &str = "flotilla_updates_received_total";
/// Updates aggregated into the global model (counter).
pub(crate) const UPDATES_APPLIED: &str = "flotilla_updates_applied_total";
/// Updates not aggregated, by `reason` (counter).
pub(crate) const UPDATES_DISCARDED: &str = "flotilla_updates_discarded_total";
/// Bytes sent from clients to the server, every attempt, by `class` (counter).
pub(crate) const BYTES_UP: &str = "flotilla_bytes_up_total";
/// Bytes sent from the server to clients, every attempt, by `class` (counter).
pub(crate) const BYTES_DOWN: &str = "flotilla_bytes_down_total";
/// Attempts lost on a link, by `direction` (counter).
pub(crate) const MESSAGES_LOST: &str = "flotilla_messages_lost_total";
/// Training jobs that failed because the device dropped out, by `class` (counter).
pub(crate) const DROPOUTS: &str = "flotilla_client_dropouts_total";
/// Clients in each `state`: idle, downloading, training, uploading, offline (gauge).
pub const CLIENTS: &str = "flotilla_clients";
/// Gauge, by class: clients whose device has too little memory for a training job.
pub(crate) const CLIENTS_INELIGIBLE: &str = "flotilla_clients_ineligible";
/// Staleness of arriving updates: versions applied since the client's base (histogram).
pub const STALENESS: &str = "flotilla_staleness";
/// Simulated seconds from a message's first attempt to its delivery, by `direction` (histogram).
pub(crate) const TRANSFER_SECONDS: &str = "flotilla_transfer_seconds";
/// Simulated seconds of local training per job, by `class` (histogram).
pub(crate) const COMPUTE_SECONDS: &str = "flotilla_compute_seconds";
/// Latest global accuracy on the central test set (gauge).
pub(crate) const GLOBAL_ACCURACY: &str = "flotilla_global_accuracy";
/// Latest mean accuracy over clients of their personalized models on their own test
/// splits (gauge).
pub(crate) const PERSONALIZED_ACCURACY: &str = "flotilla_personalized_accuracy";
/// Purity of the latest clustering of adapters against the true tasks (gauge, FL-TAC).
pub(crate) const CLUSTER_PURITY: &str = "flotilla_cluster_purity";

/// Describes every engine metric (type, unit, help) to the installed recorder.
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(SIM_SECONDS, Unit::Seconds, "Simulated seconds elapsed");
    describe_counter!(EVENTS, Unit::Count, "Events dispatched by the clock");
    describe_gauge!(
        MODEL_VERSION,
        Unit::Count,
        "Global model version (aggregations applied)"
    );
    describe_counter!(
        UPDATES_RECEIVED,
        Unit::Count,
        "Updates that reached the server"
    );
    describe_counter!(
        UPDATES_APPLIED,
        Unit::Count,
        "Updates aggregated into the global model"
    );
    describe_counter!(
        UPDATES_DISCARDED,
        Unit::Count,
        "Updates not aggregated, by reason"
    );
    describe_counter!(
        BYTES_UP,
        Unit::Bytes,
        "Bytes sent client to server, every attempt"
    );
    describe_counter!(
        BYTES_DOWN,
        Unit::Bytes,
        "Bytes sent server to client, every attempt"
    );
    describe_counter!(MESSAGES_LOST, Unit::Count, "Link attempts lost");
    describe_counter!(
        DROPOUTS,
        Unit::Count,
        "Training jobs lost to device dropout"
    );
    describe_gauge!(CLIENTS, Unit::Count, "Clients in each state");
    describe_gauge!(
        CLIENTS_INELIGIBLE,
        Unit::Count,
        "Clients without the memory for a training job, never selected"
    );
    describe_histogram!(
        STALENESS,
        Unit::Count,
        "Versions applied between an update's base and its arrival"
    );
    describe_histogram!(
        TRANSFER_SECONDS,
        Unit::Seconds,
        "Simulated seconds from first attempt to delivery"
    );
    describe_histogram!(
        COMPUTE_SECONDS,
        Unit::Seconds,
        "Simulated seconds of local training per job"
    );
    describe_gauge!(
        GLOBAL_ACCURACY,
        "Latest global accuracy on the central test set"
    );
    describe_gauge!(
        CLUSTER_PURITY,
        "Purity of the latest clustering of adapters against the true tasks"
    );
    describe_gauge!(
        PERSONALIZED_ACCURACY,
        "Latest mean client accuracy on local test splits"
    );
}

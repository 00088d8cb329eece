//! Live monitoring: the Prometheus exporter and the metrics of the training pool and the
//! run itself (the engine's own metrics are named in [`flotilla_actors::metrics`]).

use std::net::{SocketAddr, TcpListener};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

/// Jobs waiting for a pool worker (gauge).
pub(crate) const POOL_QUEUE_DEPTH: &str = "flotilla_pool_queue_depth";
/// Pool workers running a job (gauge).
pub(crate) const POOL_BUSY_WORKERS: &str = "flotilla_pool_busy_workers";
/// Wall-clock seconds per pool job, by `kind` (train, eval) (histogram).
pub(crate) const POOL_JOB_SECONDS: &str = "flotilla_pool_job_seconds";
/// Remote pool jobs delivered to a worker more than once (counter).
pub(crate) const POOL_REDELIVERIES: &str = "flotilla_pool_redeliveries_total";
/// Remote pool answers that came again for a job already answered (counter).
pub(crate) const POOL_DUPLICATES: &str = "flotilla_pool_duplicate_answers_total";
/// Wall-clock seconds since the run started (gauge).
pub(crate) const WALL_SECONDS: &str = "flotilla_wall_seconds";
/// Simulated seconds per wall-clock second (gauge).
pub(crate) const SIM_SPEED: &str = "flotilla_sim_speed";

/// Why the exporter could not start.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// Neither an address nor a port.
    #[error("{addr} is not an address to listen on (expected e.g. \"127.0.0.1:9898\" or a port)")]
    BadAddress {
        /// The text given.
        addr: String,
    },
    /// The address is taken or not this host's.
    #[error("cannot listen on {addr} (is another process using the port?)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What the system said.
        source: std::io::Error,
    },
    /// The exporter refused to start.
    #[error("cannot start the Prometheus exporter on {addr}")]
    Exporter {
        /// Where it was to listen.
        addr: SocketAddr,
        /// What the exporter said.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Parses a listen address; a bare port listens on 127.0.0.1.
pub(crate) fn parse_addr(text: &str) -> Result<SocketAddr, MonitorError> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.parse().map_err(|_| MonitorError::BadAddress {
        addr: text.to_string(),
    })
}

/// Histogram buckets: simulated and wall seconds from a millisecond to a few hours.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];
/// Staleness buckets, in model versions.
const STALENESS_BUCKETS: &[f64] = &[0.0, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 34.0, 55.0];

/// Starts the exporter's HTTP listener on `addr` and installs it as the metrics recorder,
/// with `scenario` and `strategy` as labels on every series.
pub(crate) fn install(
    addr: SocketAddr,
    scenario: &str,
    strategy: &str,
) -> Result<(), MonitorError> {
    // Bind first so that a busy port is reported before anything runs.
    TcpListener::bind(addr).map_err(|source| MonitorError::Bind { addr, source })?;
    let exporter =
        |e: Box<dyn std::error::Error + Send + Sync>| MonitorError::Exporter { addr, source: e };
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .add_global_label("scenario", scenario)
        .add_global_label("strategy", strategy)
        .set_buckets_for_metric(Matcher::Suffix("seconds".into()), SECONDS_BUCKETS)
        .map_err(|e| exporter(e.into()))?
        .set_buckets_for_metric(
            Matcher::Full(flotilla_actors::metrics::STALENESS.into()),
            STALENESS_BUCKETS,
        )
        .map_err(|e| exporter(e.into()))?
        .install()
        .map_err(|e| exporter(e.into()))?;
    describe();
    Ok(())
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    flotilla_actors::metrics::describe();
    describe_gauge!(
        POOL_QUEUE_DEPTH,
        Unit::Count,
        "Jobs waiting for a pool worker"
    );
    describe_gauge!(POOL_BUSY_WORKERS, Unit::Count, "Pool workers running a job");
    describe_histogram!(
        POOL_JOB_SECONDS,
        Unit::Seconds,
        "Wall-clock seconds per pool job"
    );
    describe_counter!(
        POOL_REDELIVERIES,
        Unit::Count,
        "Remote pool jobs delivered to a worker more than once"
    );
    describe_counter!(
        POOL_DUPLICATES,
        Unit::Count,
        "Remote pool answers received again for a job already answered"
    );
    describe_gauge!(
        WALL_SECONDS,
        Unit::Seconds,
        "Wall-clock seconds since the run started"
    );
    describe_gauge!(SIM_SPEED, "Simulated seconds per wall-clock second");
}

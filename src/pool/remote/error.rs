//! Why the remote pool cannot start or stops answering, and why a worker stops or leaves
//! a job unanswered.

use std::sync::Arc;
use std::time::Duration;

/// Why the remote pool cannot start.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The thread that talks to the server cannot start.
    #[error("cannot start the remote pool's thread")]
    Thread(#[source] std::io::Error),
    /// That thread stopped before it could say whether it connected.
    #[error("the remote pool's thread stopped before it connected")]
    Stopped,
    /// The server cannot be reached.
    #[error("cannot connect to NATS at {url} (is nats-server running, with -js?)")]
    Connect {
        /// The server's address.
        url: String,
        /// What the client said.
        source: async_nats::ConnectError,
    },
    /// The server does not give JetStream what the pool needs.
    #[error("NATS at {url}: cannot {what} (is JetStream enabled: nats-server -js?)")]
    JetStream {
        /// The server's address.
        url: String,
        /// What was being set up.
        what: &'static str,
        /// What the server said.
        source: async_nats::Error,
    },
}

/// Why the remote pool stopped answering during a run.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteFailure {
    /// A job could not be put on the queue.
    #[error("cannot queue a job on {url}")]
    Queue {
        /// The server's address.
        url: String,
        /// What the server said.
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
    /// A worker refused the run's jobs, saying why.
    #[error("{worker} refused a job: {why}")]
    Refused {
        /// The worker's name.
        worker: String,
        /// Its reason, as it sent it.
        why: String,
    },
    /// A worker's answer is not an answer to its job.
    #[error("{worker} sent an answer to job {job} that is not one")]
    Malformed {
        /// The worker's name.
        worker: String,
        /// The job.
        job: u64,
    },
    /// Two answers to one job differ: the workers do not compute alike.
    #[error(
        "two answers to job {job} differ ({worker} sent the second): the workers do not compute alike"
    )]
    Disagree {
        /// The worker that sent the second.
        worker: String,
        /// The job.
        job: u64,
    },
    /// No worker said a word for the pool's deadline.
    #[error(
        "no worker answered for {} s (the pool's deadline); {jobs} jobs wait on {url} (start one: flotilla worker --nats {url})",
        deadline.as_secs_f64()
    )]
    Silent {
        /// The deadline.
        deadline: Duration,
        /// Jobs that waited.
        jobs: usize,
        /// The server's address.
        url: String,
    },
}

/// Why a worker stopped.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// Its runtime cannot start.
    #[error("cannot start the worker's runtime")]
    Runtime(#[source] std::io::Error),
    /// The server cannot be reached.
    #[error("cannot connect to NATS at {url}")]
    Connect {
        /// The server.
        url: String,
        /// What the client said.
        source: async_nats::ConnectError,
    },
}

/// Why a job got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    /// The job's bytes are not a job of this version.
    #[error("the job cannot be read (is the worker the run's flotilla version?)")]
    Unreadable,
    /// A pool worker failed.
    #[error("a pool worker failed while computing the job")]
    WorkerFailed,
}

/// A worker device that is neither `cpu` nor `cuda:N`.
#[derive(Debug, thiserror::Error)]
#[error("expected cpu or cuda:N, got \"{0}\"")]
pub struct UnknownDevice(pub(super) String);

//! The pool across processes and machines: jobs go to a NATS JetStream work queue, any
//! number of `flotilla worker` processes answer them, and the run takes the answers back
//! in simulation order. A job is a pure function of its inputs, so where it ran changes
//! nothing.
//!
//! One stream, [`JOBS`], holds every run's jobs as a work queue (a job is removed once a
//! worker acknowledges it), training and evaluation jobs on subjects of their own; every
//! worker pulls from two durable consumers, [`TRAIN_QUEUE`] first (the simulation waits on
//! training) and [`EVAL_QUEUE`] when no training job waits, one job at a time, as the
//! in-process pool does. It sends progress acknowledgements while it computes, so only a worker
//! that is gone has its job redelivered. Answers go to [`ANSWERS`], on a subject of the
//! run's own. What every job of a run shares (the scenario, resolved, and the digest of
//! the model and data it builds) sits once in the [`CONTEXTS`] stream under that
//! digest: a worker builds the run's model and data from it once, from the same
//! files on its own disk, and refuses the run's jobs if its digest, flotilla version or
//! backend differ.

mod client;
mod error;
mod link;
mod worker;

pub(crate) use client::Remote;
pub use error::{ComputeError, RemoteError, RemoteFailure, UnknownDevice, WorkerError};
pub(crate) use link::RemoteOptions;
pub use worker::{Build, Compute, Refusal, WorkerDevice, WorkerOptions, serve};

use async_nats::HeaderMap;
use serde::{Deserialize, Serialize};

/// The work queue of every run's jobs.
pub const JOBS: &str = "FLOTILLA_JOBS";
/// Subjects of jobs: `flotilla.jobs.<run>.train` and `flotilla.jobs.<run>.eval`.
pub(crate) const JOB_SUBJECTS: &str = "flotilla.jobs.>";
/// The workers' shared consumer of training jobs, and the subjects it takes.
pub const TRAIN_QUEUE: (&str, &str) = ("flotilla-train", "flotilla.jobs.*.train");
/// The workers' shared consumer of evaluation jobs, and the subjects it takes.
pub const EVAL_QUEUE: (&str, &str) = ("flotilla-eval", "flotilla.jobs.*.eval");
/// The stream of answers: `flotilla.answers.<run>`.
pub const ANSWERS: &str = "FLOTILLA_ANSWERS";
/// Subjects of answers.
pub(crate) const ANSWER_SUBJECTS: &str = "flotilla.answers.>";
/// The stream of run contexts: the last message on `flotilla.contexts.<digest>`.
pub const CONTEXTS: &str = "FLOTILLA_CONTEXTS";
/// Subjects of contexts.
pub(crate) const CONTEXT_SUBJECTS: &str = "flotilla.contexts.>";

/// Header: the job's number within its run.
pub(crate) const JOB_ID: &str = "Flotilla-Job";
/// Header: the context digest (hex) the job belongs to.
pub(crate) const CONTEXT: &str = "Flotilla-Context";
/// Header: the subject the answer goes to.
pub(crate) const REPLY: &str = "Flotilla-Reply";
/// Header: the subject a worker says it is still at the job on (plain NATS), so that a
/// long job does not look like silence to the run.
pub(crate) const PROGRESS: &str = "Flotilla-Progress";
/// Header of an answer: the worker refused or failed the job; the value says why.
pub(crate) const ERROR: &str = "Flotilla-Error";
/// Header of an answer: how many times the job was delivered (more than once: redelivered).
pub(crate) const DELIVERED: &str = "Flotilla-Delivered";
/// Header of an answer: the job's wall seconds on the worker.
pub(crate) const SECONDS: &str = "Flotilla-Seconds";
/// Header of an answer: the worker's name.
pub(crate) const WORKER: &str = "Flotilla-Worker";

/// What every job of a run shares, as the run publishes it for its workers.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Context {
    /// flotilla's version, the backend, device kind and architecture that must compute
    /// the jobs (see the job store's identity).
    pub identity: String,
    /// The digest of the model before training, the data as laid out and the settings.
    pub digest: String,
    /// The scenario, resolved (overrides and sweep values applied), as JSON.
    pub scenario: serde_json::Value,
    /// The scenario's file, for messages.
    pub file: String,
    /// The directory its relative paths start from, absolute: workers read the same paths.
    pub base: String,
}

/// How long connecting to the server may take before it counts as unreachable.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Connects to the NATS server at `url` as `name` (shown in the server's connection list).
async fn connect(url: &str, name: String) -> Result<async_nats::Client, async_nats::ConnectError> {
    async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(CONNECT_TIMEOUT)
        .connect(url)
        .await
}

/// A header's text, if the message has it.
pub fn header<'a>(headers: Option<&'a HeaderMap>, name: &str) -> Option<&'a str> {
    headers?.get(name).map(|v| v.as_str())
}

/// A digest as lowercase hex.
pub fn hex(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

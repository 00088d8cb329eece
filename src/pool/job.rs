//! The pool's jobs as they travel: what a worker is asked to compute and what it answers,
//! evaluation chunks, and the key a job's result is stored under.

use flotilla_actors::learner::TaskId;
use flotilla_actors::{ClientId, Params, TrainJob, TrainOutcome};

use crate::model::EvalCounts;

/// A job's digest: the key its result is stored under.
pub(crate) type Key = [u8; 32];

/// What a job is, for the job-time metric.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum JobKind {
    /// Local training.
    Train,
    /// Evaluation.
    Eval,
}

impl JobKind {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            JobKind::Train => "train",
            JobKind::Eval => "eval",
        }
    }
}

/// What a remote worker is asked to compute: one job, a batch trained together, or an
/// evaluation.
#[derive(Debug)]
pub(crate) enum Job {
    /// A client's local training, alone.
    Train(TrainJob),
    /// Clients' jobs trained in one batch.
    Group(Vec<TrainJob>),
    /// Chunks of an evaluation of the served models.
    Eval(Vec<EvalChunk>),
}

/// A remote worker's answer to a [`Job`], of the same kind.
#[derive(Debug)]
pub(crate) enum Answer {
    /// The job's outcome.
    Train(TrainOutcome),
    /// Each job's outcome, in the batch's order.
    Group(Vec<TrainOutcome>),
    /// Each chunk's counts, in the job's order.
    Eval(Vec<ChunkCounts>),
}

/// Where an evaluation chunk's samples come from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Source {
    /// Task `t`'s central test images `start..end` (positions in its list).
    Central(TaskId, usize, usize),
    /// A client's slot's local test split.
    Slot(ClientId, usize),
}

/// One evaluation task: its samples and the models it evaluates on them. A remote
/// evaluation sends its chunks, a few per message, so that they spread over the workers
/// as they do in-process.
#[derive(Clone, Debug)]
pub(crate) struct EvalChunk {
    /// Where the samples come from.
    pub(crate) source: Source,
    /// The served model.
    pub(crate) params: Params,
    /// The client's own personal model, for a slot whose client keeps one.
    pub(crate) own: Option<Params>,
}

/// A chunk's counts: the served model's and the personalized model's (the same for a
/// central chunk).
pub(crate) type ChunkCounts = (EvalCounts, EvalCounts);

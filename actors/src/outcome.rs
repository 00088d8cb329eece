//! How a run ended: the stop reason, what the clock saw, what was recorded, and why a run
//! could not go on.

use crate::record::Records;
use crate::time::SimTime;

/// Why a run ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StopReason {
    /// The stop rule was met.
    Finished,
    /// Nothing was left to happen before the stop rule was met.
    Stalled,
    /// An aggregation made the model non-finite (NaN or infinite values).
    Diverged,
    /// The user interrupted the run.
    Interrupted,
    /// The learner dropped a job (a pool worker failed, or the remote pool gave up); what
    /// was recorded until then is kept.
    PoolFailed,
}

/// How a run ended, as the clock saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct ClockOutcome {
    /// The simulated time of the last event.
    pub end: SimTime,
    /// Why the run ended.
    pub reason: StopReason,
    /// Events dispatched.
    pub events: u64,
}

/// Why a simulation could not run to its end.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// An actor stopped: one of its handlers panicked.
    #[error("the {0} actor stopped (one of its handlers panicked)")]
    Actor(&'static str),
}

/// The result of a run: how it ended and everything recorded on the way.
#[derive(Clone, Debug)]
pub struct SimOutcome {
    /// How and when the run ended.
    pub clock: ClockOutcome,
    /// What the actors recorded.
    pub records: Records,
}

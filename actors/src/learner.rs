//! What the engine needs from the ML side: training and evaluation of flat parameter vectors.

use std::sync::Arc;

use tokio::sync::oneshot;

use crate::device::Work;

/// A flat vector of trainable parameters (adapter + head), shared without copying.
pub type Params = Arc<Vec<f32>>;

/// Index of a client, `0..clients`.
pub type ClientId = usize;

/// Index of a task, `0..tasks`, in the order the scenario lists them.
pub type TaskId = usize;

/// One local-training job: start from `params`, train on the client's own data.
#[derive(Clone, Debug)]
pub struct TrainJob {
    /// Whose data to train on.
    pub client: ClientId,
    /// The starting adapter of each of the client's slots (one per task it trains
    /// separately; a single slot for single-adapter algorithms).
    pub params: Vec<Params>,
    /// The client's personal state from its last job, if the learner keeps one.
    pub personal: Option<Params>,
    /// Seed for every random choice inside the job (shuffling, dropout masks).
    pub seed: u64,
}

/// One slot's trained adapter.
#[derive(Clone, Debug)]
pub struct SlotOutcome {
    /// The trained values.
    pub params: Vec<f32>,
    /// Training samples behind the adapter, its weight in FedAvg.
    pub num_samples: u64,
}

/// The result of a [`TrainJob`].
#[derive(Clone, Debug)]
pub struct TrainOutcome {
    /// The trained adapter of each slot, in the job's slot order.
    pub slots: Vec<SlotOutcome>,
    /// Mean training loss over the job.
    pub loss: f64,
    /// The client's personal state after the job (a personalized model), kept by the
    /// client for its next job and for evaluation; `None` keeps the previous one.
    pub personal: Option<Vec<f32>>,
}

/// An evaluation of the server's models.
#[derive(Clone, Debug)]
pub struct EvalJob {
    /// The model the server serves to each task, evaluated on that task's central test set.
    pub tasks: Vec<Params>,
    /// The model each client's slot holds from the server, by client and slot, evaluated on
    /// the slot's local test split.
    pub slots: Vec<Vec<Params>>,
    /// Each client's personal model, where it has one: evaluated as its personalized model.
    pub personal: Vec<Option<Params>>,
}

/// Accuracy of the served models on the central test sets and on every client's local split.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalOutcome {
    /// Accuracy over every task's central test set together.
    pub global_accuracy: f64,
    /// Mean loss over every task's central test set together.
    pub global_loss: f64,
    /// Accuracy on each task's central test set, by task.
    pub task_accuracy: Vec<f64>,
    /// The served models' accuracy on each client's own held-out split, by client; `None`
    /// for a client with no held-out split.
    pub client_accuracy: Vec<Option<f64>>,
    /// Each client's personalized model's accuracy on its held-out split, by client (the
    /// same as `client_accuracy` when the scenario personalizes nothing).
    pub personalized_accuracy: Vec<Option<f64>>,
}

/// A result that may still be computing. The clock awaits it only when its event is due.
pub struct Pending<T>(PendingState<T>);

enum PendingState<T> {
    Ready(T),
    Waiting(oneshot::Receiver<T>),
    Deferred(Box<dyn FnOnce() -> T + Send>),
    /// Only while a deferred result is being computed.
    Computing,
}

/// The producing side of a [`Pending`].
pub struct Completer<T>(oneshot::Sender<T>);

/// The learner dropped a job without answering it (a worker failed).
#[derive(Debug, thiserror::Error)]
#[error("the learner dropped a job without a result (a pool worker failed)")]
pub struct LearnerFailed;

impl<T> Pending<T> {
    /// A result that is already known.
    pub fn ready(value: T) -> Self {
        Pending(PendingState::Ready(value))
    }

    /// A result to be delivered later through the [`Completer`].
    pub fn channel() -> (Completer<T>, Pending<T>) {
        let (tx, rx) = oneshot::channel();
        (Completer(tx), Pending(PendingState::Waiting(rx)))
    }

    /// A result computed by `compute` when the clock first needs it: nothing but the
    /// closure is held meanwhile (for learners whose work is trivial, so that a job's
    /// result costs no memory while simulated time runs).
    ///
    /// ```
    /// use flotilla_actors::Pending;
    /// let p = Pending::deferred(|| 6 * 7);
    /// assert_eq!(p.wait().unwrap(), 42);
    /// ```
    pub fn deferred(compute: impl FnOnce() -> T + Send + 'static) -> Self {
        Pending(PendingState::Deferred(Box::new(compute)))
    }

    /// Waits for the result and keeps it in place.
    pub async fn resolve(&mut self) -> Result<(), LearnerFailed> {
        match &mut self.0 {
            PendingState::Ready(_) | PendingState::Computing => {}
            PendingState::Waiting(rx) => {
                let value = rx.await.map_err(|_| LearnerFailed)?;
                self.0 = PendingState::Ready(value);
            }
            PendingState::Deferred(_) => self.compute(),
        }
        Ok(())
    }

    /// Whether the result is in, without waiting; keeps it in place when it is.
    pub(crate) fn poll_ready(&mut self) -> Result<bool, LearnerFailed> {
        match &mut self.0 {
            PendingState::Ready(_) | PendingState::Computing => {}
            PendingState::Waiting(rx) => match rx.try_recv() {
                Ok(value) => self.0 = PendingState::Ready(value),
                Err(oneshot::error::TryRecvError::Empty) => return Ok(false),
                Err(oneshot::error::TryRecvError::Closed) => return Err(LearnerFailed),
            },
            PendingState::Deferred(_) => self.compute(),
        }
        Ok(true)
    }

    /// Computes a deferred result in place.
    fn compute(&mut self) {
        if let PendingState::Deferred(compute) =
            std::mem::replace(&mut self.0, PendingState::Computing)
        {
            self.0 = PendingState::Ready(compute());
        }
    }

    /// Blocks the calling thread until the result is in (outside the simulation, e.g. in
    /// benchmarks; never from inside an async runtime).
    pub fn wait(self) -> Result<T, LearnerFailed> {
        match self.0 {
            PendingState::Ready(v) => Ok(v),
            PendingState::Waiting(rx) => rx.blocking_recv().map_err(|_| LearnerFailed),
            PendingState::Deferred(compute) => Ok(compute()),
            PendingState::Computing => Err(LearnerFailed),
        }
    }

    /// The result, if it has been [resolved](Pending::resolve) or was ready from the start.
    pub(crate) fn into_ready(self) -> Option<T> {
        match self.0 {
            PendingState::Ready(v) => Some(v),
            PendingState::Waiting(_) | PendingState::Deferred(_) | PendingState::Computing => None,
        }
    }
}

impl<T> std::fmt::Debug for Pending<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            PendingState::Ready(_) => "Pending(ready)",
            PendingState::Waiting(_) => "Pending(waiting)",
            PendingState::Deferred(_) | PendingState::Computing => "Pending(deferred)",
        })
    }
}

impl<T> Completer<T> {
    /// Delivers the result; a receiver that is gone (the run stopped) is not an error.
    pub fn complete(self, value: T) {
        let _ = self.0.send(value);
    }
}

/// The ML side of a simulation.
///
/// The engine moves flat parameter vectors and asks the learner to train and evaluate
/// them; the learner never sees the clock. Results must be pure functions of the job, so
/// that a run does not depend on which worker computed what, or when.
pub trait Learner: Send + Sync {
    /// The initial global parameters.
    fn initial_params(&self) -> Vec<f32>;
    /// What one local-training job of `client` asks of its device (samples, FLOPs,
    /// memory): the device model turns this into compute time, and refuses the job to a
    /// device with too little memory.
    fn train_work(&self, client: ClientId) -> Work;
    /// Starts local training.
    fn train(&self, job: TrainJob) -> Pending<TrainOutcome>;
    /// Starts an evaluation.
    fn evaluate(&self, job: EvalJob) -> Pending<EvalOutcome>;
    /// Starts every training job held back so far. The clock calls this whenever it
    /// reaches a job's due time, before it waits for the result. A learner may hold jobs
    /// back until then to run several in one batch: the jobs held at that point are those
    /// started earlier in simulated time, a function of the simulation alone.
    fn flush(&self) {}
}

//! The training pool: worker threads fed by crossbeam channels, each owning a device
//! and one copy of the frozen model. Jobs are pure functions of their inputs, so results
//! do not depend on the number of workers or on which worker ran what.
//!
//! Training jobs go first: the simulation waits on them, while an evaluation mostly only
//! writes records (the clock delivers it once done), so evaluations fill the workers that
//! training leaves idle, such as the tail of a synchronous round.

mod backend;
pub(crate) mod codec;
mod eval;
mod job;
mod key;
mod learner;
mod reader;
pub mod remote;
mod store;

pub use backend::{Backend, BackendError, DeviceKind, UnknownBackend};
pub use learner::PoolLearner;
pub use reader::CacheUse;
pub use store::StoreError;

pub(crate) use backend::{gpu_devices, worker_devices};
pub(crate) use job::{JobKind, Key};
pub(crate) use key::{ContextParts, context_digest};
pub(crate) use learner::{LearnerSetup, Stored};
pub(crate) use store::{JobStore, STORE_FILE};

use std::thread::JoinHandle;

use burn::module::Module;
use burn::tensor::Device;
use crossbeam_channel::{Receiver, Sender, select_biased, unbounded};

use crate::model::Vit;

/// What a worker owns: its device and its copy of the model (frozen backbone, adapter slots).
pub struct Worker {
    /// The device its tensors live on.
    pub device: Device,
    /// Its copy of the model.
    pub model: Vit,
}

/// A unit of work for a worker.
pub type Task = Box<dyn FnOnce(&Worker) + Send>;

/// A fixed set of worker threads.
pub struct Pool {
    /// Training and evaluation queues.
    tx: Option<(Sender<Task>, Sender<Task>)>,
    handles: Vec<JoinHandle<()>>,
}

impl Pool {
    /// Starts one thread per device, each with a copy of `model` on its device.
    pub fn new(devices: &[Device], model: &Vit) -> Self {
        let (train_tx, train_rx) = unbounded::<Task>();
        let (eval_tx, eval_rx) = unbounded::<Task>();
        let handles = devices
            .iter()
            .enumerate()
            .map(|(i, device)| {
                let (train_rx, eval_rx) = (train_rx.clone(), eval_rx.clone());
                let worker = Worker {
                    device: device.clone(),
                    model: model.clone().fork(device),
                };
                std::thread::Builder::new()
                    .name(format!("flotilla-worker-{i}"))
                    .spawn(move || {
                        while let Some(task) = next(&train_rx, &eval_rx) {
                            task(&worker);
                        }
                    })
                    .expect("spawn pool worker")
            })
            .collect();
        Self {
            tx: Some((train_tx, eval_tx)),
            handles,
        }
    }

    /// Queues a job's task; it runs on the first free worker.
    pub(crate) fn submit(&self, kind: JobKind, task: Task) {
        let queue = metrics::gauge!(crate::monitor::POOL_QUEUE_DEPTH);
        queue.increment(1.0);
        let timed: Task = Box::new(move |worker| {
            queue.decrement(1.0);
            let busy = metrics::gauge!(crate::monitor::POOL_BUSY_WORKERS);
            busy.increment(1.0);
            let started = std::time::Instant::now();
            task(worker);
            metrics::histogram!(crate::monitor::POOL_JOB_SECONDS, "kind" => kind.as_str())
                .record(started.elapsed().as_secs_f64());
            busy.decrement(1.0);
        });
        self.fill(kind, timed);
    }

    /// Queues a task that is no job of its own (a cache fill ahead of the jobs of `kind`),
    /// unmeasured.
    pub(crate) fn fill(&self, kind: JobKind, task: Task) {
        let Some((train, eval)) = &self.tx else {
            return;
        };
        let tx = match kind {
            JobKind::Train => train,
            JobKind::Eval => eval,
        };
        // Workers only stop when the pool is dropped, so the channel is open here.
        let _ = tx.send(task);
    }
}

/// The next task, training first; `None` once the pool is dropped and both queues are
/// empty.
fn next(train: &Receiver<Task>, eval: &Receiver<Task>) -> Option<Task> {
    select_biased! {
        // An empty, closed training queue is ready too: the evaluations still queued run.
        recv(train) -> task => task.ok().or_else(|| eval.recv().ok()),
        recv(eval) -> task => task.ok(),
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.tx.take();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

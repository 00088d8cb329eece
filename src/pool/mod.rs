//! The training pool: worker threads fed by a crossbeam channel, each owning a device
//! and one copy of the frozen model. Jobs are pure functions of their inputs, so results
//! do not depend on the number of workers or on which worker ran what.

mod backend;
mod learner;

pub use backend::{Backend, BackendError, DeviceKind, worker_devices};
pub use learner::{LearnerSetup, Personalization, PoolLearner};

use std::thread::JoinHandle;

use burn::module::Module;
use burn::tensor::Device;
use crossbeam_channel::{Sender, unbounded};

use crate::model::Vit;

/// What a worker owns: its device and its copy of the model (frozen backbone, adapter slots).
pub struct Worker {
    pub device: Device,
    pub model: Vit,
}

/// A unit of work for a worker.
pub type Task = Box<dyn FnOnce(&Worker) + Send>;

/// What a job is, for the job-time metric.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum JobKind {
    Train,
    Eval,
}

impl JobKind {
    fn as_str(self) -> &'static str {
        match self {
            JobKind::Train => "train",
            JobKind::Eval => "eval",
        }
    }
}

/// A fixed set of worker threads.
pub struct Pool {
    tx: Option<Sender<Task>>,
    handles: Vec<JoinHandle<()>>,
}

impl Pool {
    /// Starts one thread per device, each with a copy of `model` on its device.
    pub fn new(devices: &[Device], model: &Vit) -> Self {
        let (tx, rx) = unbounded::<Task>();
        let handles = devices
            .iter()
            .enumerate()
            .map(|(i, device)| {
                let rx = rx.clone();
                let worker = Worker {
                    device: device.clone(),
                    model: model.clone().fork(device),
                };
                std::thread::Builder::new()
                    .name(format!("flotilla-worker-{i}"))
                    .spawn(move || {
                        for task in rx {
                            task(&worker);
                        }
                    })
                    .expect("spawn pool worker")
            })
            .collect();
        Self {
            tx: Some(tx),
            handles,
        }
    }

    /// Queues a task; it runs on the first free worker.
    pub fn submit(&self, kind: JobKind, task: Task) {
        let Some(tx) = &self.tx else { return };
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
        // Workers only stop when the pool is dropped, so the channel is open here.
        let _ = tx.send(timed);
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

//! The run's side of the remote pool: publishes jobs, takes answers back, watches for
//! silence. It runs on a thread of its own with its own async runtime, so the clock's
//! calls into the learner never wait on the network.
//!
//! Here the run's handle; the connection it drives is `link.rs`.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::mpsc;

use super::link::{Link, OnAnswer, RemoteOptions, Submit};
use super::{Context, RemoteError, RemoteFailure};
use crate::notice::Notice;
use crate::pool::job::{Job, JobKind};

/// The run's connection to the remote pool.
pub(crate) struct Remote {
    tx: Option<mpsc::UnboundedSender<Submit>>,
    failure: Arc<Mutex<Option<RemoteFailure>>>,
    notice: Arc<Mutex<Option<Notice>>>,
    thread: Option<JoinHandle<()>>,
}

impl Remote {
    /// Connects, makes sure the streams exist, and publishes the run's context.
    pub(crate) fn connect(opts: RemoteOptions, context: Context) -> Result<Self, RemoteError> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (tx, rx) = mpsc::unbounded_channel();
        let failure = Arc::new(Mutex::new(None));
        let failed = failure.clone();
        let notice = Arc::new(Mutex::new(None));
        let notify = notice.clone();
        let thread = std::thread::Builder::new()
            .name("flotilla-remote".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = ready_tx.send(Err(RemoteError::Thread(e)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match Link::open(&opts, &context).await {
                        Ok(link) => {
                            let _ = ready_tx.send(Ok(()));
                            link.serve(rx, failed, notify).await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
            })
            .map_err(RemoteError::Thread)?;
        let ready = ready_rx.recv().unwrap_or(Err(RemoteError::Stopped));
        let remote = Self {
            tx: Some(tx),
            failure,
            notice,
            thread: Some(thread),
        };
        ready.map(|()| remote)
    }

    /// Queues a job; `on_answer` gets its answer. After a failure the job is dropped
    /// unanswered, which stops the simulation.
    pub(crate) fn submit(&self, kind: JobKind, job: Job, on_answer: OnAnswer) {
        if self.failure().is_some() {
            return;
        }
        if let Some(tx) = &self.tx {
            let _ = tx.send(Submit {
                kind,
                job,
                on_answer,
            });
        }
    }

    /// Why the remote pool stopped answering, if it did.
    pub(crate) fn failure(&self) -> Option<RemoteFailure> {
        self.failure.lock().expect("remote failure").clone()
    }

    /// Says through `notice`, every second, that the run waits for workers, instead of
    /// telling the options' notice once (e.g. in a progress bar).
    pub(crate) fn set_notice(&self, notice: Notice) {
        *self.notice.lock().expect("remote notice") = Some(notice);
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

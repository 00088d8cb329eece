//! The serving side: `flotilla worker` answers the jobs of runs whose pool is remote. A
//! worker builds each run's learner once, from the run's published context (its resolved
//! scenario, built from the same files on the worker's own disk) with the [`Build`] it is
//! given, which refuses the run's jobs when what it built differs from what the run
//! built, or when its flotilla version, backend or device kind differ.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind, consumer};
use futures::StreamExt;
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};

use super::{
    CONTEXT, CONTEXTS, ComputeError, Context, DELIVERED, ERROR, EVAL_QUEUE, JOB_ID, JOBS, PROGRESS,
    REPLY, SECONDS, TRAIN_QUEUE, UnknownDevice, WORKER, WorkerError, connect, header,
};
use crate::error::Chain;
use crate::notice::Notice;

/// Where a worker computes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum WorkerDevice {
    /// The CPU, with the run's backend.
    Cpu,
    /// One CUDA GPU, by index (LibTorch).
    Cuda(usize),
}

impl std::str::FromStr for WorkerDevice {
    type Err = UnknownDevice;

    /// `cpu` or `cuda:N`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_lowercase().as_str() {
            "cpu" => Ok(WorkerDevice::Cpu),
            other => other
                .strip_prefix("cuda:")
                .and_then(|i| i.parse().ok())
                .map(WorkerDevice::Cuda)
                .ok_or_else(|| UnknownDevice(text.to_owned())),
        }
    }
}

/// How a worker runs.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// The NATS server.
    pub url: String,
    /// Where it computes.
    pub device: WorkerDevice,
    /// Jobs computed at once (on the CPU: threads; on a GPU: workers sharing it).
    pub threads: usize,
    /// Its name in the runs' messages.
    pub name: String,
}

/// What computes a run's jobs on a worker: the run's learner, built from its context.
pub trait Compute: Send + Sync {
    /// The encoded answer to an encoded job.
    fn compute(&self, job: &[u8]) -> Result<Vec<u8>, ComputeError>;
}

/// Why a worker cannot compute a run's jobs, as the builder says.
pub type Refusal = Arc<dyn std::error::Error + Send + Sync>;

/// Builds the learner of a run from the context it published, on this worker's device
/// and threads, or says why this worker cannot compute that run's jobs.
pub type Build =
    Arc<dyn Fn(&Context, &WorkerOptions) -> Result<Arc<dyn Compute>, Refusal> + Send + Sync>;

/// A run's model and data, built once, or why they cannot be.
type Built = Result<Arc<dyn Compute>, Refusal>;

/// Connects and answers jobs with what `build` makes of each run, until the process is
/// stopped; says what it does through `notice` (a line per job).
pub fn serve(opts: WorkerOptions, build: Build, notice: Notice) -> Result<(), WorkerError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(WorkerError::Runtime)?;
    runtime.block_on(answer_jobs(opts, build, notice))
}

async fn answer_jobs(opts: WorkerOptions, build: Build, notice: Notice) -> Result<(), WorkerError> {
    let client = connect(&opts.url, format!("flotilla worker {}", opts.name))
        .await
        .map_err(|source| WorkerError::Connect {
            url: opts.url.clone(),
            source,
        })?;
    let js = jetstream::new(client.clone());
    notice(&format!(
        "flotilla worker {}: connected to {}; {} at once on {:?}",
        opts.name, opts.url, opts.threads, opts.device
    ));
    let (train, eval) = (
        queue(&js, TRAIN_QUEUE.0, &notice).await,
        queue(&js, EVAL_QUEUE.0, &notice).await,
    );
    let ack_wait = train.cached_info().config.ack_wait;
    notice(&format!("flotilla worker {}: taking jobs", opts.name));
    let built: Arc<Mutex<HashMap<String, Built>>> = Arc::default();
    let permits = Arc::new(Semaphore::new(opts.threads.max(1)));
    let opts = Arc::new(opts);
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return Ok(());
        };
        let msg = match next_job(&train, &eval).await {
            Ok(Some(msg)) => msg,
            Ok(None) => continue,
            Err(e) => {
                notice(&format!(
                    "flotilla worker {}: cannot fetch a job: {}",
                    opts.name,
                    Chain(&*e)
                ));
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let job = Job {
            msg: Arc::new(msg),
            js: js.clone(),
            client: client.clone(),
            opts: opts.clone(),
            build: build.clone(),
            built: built.clone(),
            notice: notice.clone(),
            ack_wait,
        };
        tokio::spawn(job.answer(permit));
    }
}

/// How long an idle worker waits for a training job before it looks for an evaluation
/// job again, or for the job queue before it looks again: the first run on a new server
/// creates it.
const IDLE_WAIT: Duration = Duration::from_millis(100);

/// The next job: a training job if one waits (the simulation waits on those), else an
/// evaluation job, else the first training job within [`IDLE_WAIT`].
async fn next_job(
    train: &consumer::PullConsumer,
    eval: &consumer::PullConsumer,
) -> Result<Option<jetstream::Message>, async_nats::Error> {
    for queue in [train, eval] {
        let waiting = queue.fetch().max_messages(1).messages().await;
        if let Some(msg) = first(waiting).await? {
            return Ok(Some(msg));
        }
    }
    let next = train
        .batch()
        .max_messages(1)
        .expires(IDLE_WAIT)
        .messages()
        .await;
    first(next).await
}

/// The one message of a pull request, if it brought one.
async fn first(
    batch: Result<consumer::pull::Batch, consumer::pull::BatchError>,
) -> Result<Option<jetstream::Message>, async_nats::Error> {
    match batch?.next().await {
        Some(Ok(msg)) => Ok(Some(msg)),
        Some(Err(e)) => Err(e),
        None => Ok(None),
    }
}

/// A workers' consumer, once a run has created it.
async fn queue(js: &jetstream::Context, name: &str, notice: &Notice) -> consumer::PullConsumer {
    let mut said = false;
    loop {
        if let Ok(stream) = js.get_stream(JOBS).await
            && let Ok(c) = stream.get_consumer(name).await
        {
            return c;
        }
        if !said {
            notice("flotilla worker: waiting for a run to create the job queue");
            said = true;
        }
        tokio::time::sleep(IDLE_WAIT).await;
    }
}

/// One delivered job and what answering it needs.
struct Job {
    msg: Arc<jetstream::Message>,
    js: jetstream::Context,
    client: async_nats::Client,
    opts: Arc<WorkerOptions>,
    build: Build,
    built: Arc<Mutex<HashMap<String, Built>>>,
    notice: Notice,
    ack_wait: Duration,
}

/// Why a run's context cannot be read from the server, or its learner built.
#[derive(Debug, thiserror::Error)]
enum ContextError {
    /// The contexts stream is not there.
    #[error("cannot read the run's context")]
    Stream(#[source] jetstream::context::GetStreamError),
    /// The run's context is not in it.
    #[error("no context {0} on the server")]
    Missing(String, #[source] jetstream::stream::LastRawMessageError),
    /// The context is not one this version reads.
    #[error("cannot read the run's context")]
    Unreadable(#[source] serde_json::Error),
    /// Building the learner panicked.
    #[error("building the model panicked")]
    Panicked(#[source] tokio::task::JoinError),
}

/// Why a job the worker computed has no answer.
#[derive(Debug, thiserror::Error)]
enum Unanswered {
    /// The learner could not compute it.
    #[error(transparent)]
    Compute(#[from] ComputeError),
    /// Computing it panicked.
    #[error("the job panicked")]
    Panicked(#[source] tokio::task::JoinError),
}

impl Job {
    /// Computes the job while holding `permit`, then answers it: the permit goes back as
    /// soon as the computing is done, so the next job is fetched while this one's answer
    /// travels.
    async fn answer(self, permit: OwnedSemaphorePermit) {
        let headers = self.msg.headers.as_ref();
        let (Some(id), Some(context), Some(reply)) = (
            header(headers, JOB_ID).map(str::to_string),
            header(headers, CONTEXT).map(str::to_string),
            header(headers, REPLY).map(str::to_string),
        ) else {
            // Not a flotilla job: nobody waits for it.
            let _ = self.msg.ack_with(AckKind::Term).await;
            return;
        };
        let progress = header(headers, PROGRESS).map(str::to_string);
        let delivered = self.msg.info().map_or(1, |i| i.delivered);
        let name = &self.opts.name;
        (self.notice)(&format!(
            "flotilla worker {name}: job {id} started (delivery {delivered})"
        ));
        // Progress keeps the job from being delivered to another worker, and tells the run
        // that work goes on, from the start: building a run's model and data the first
        // time can take longer than the job itself.
        let beat = {
            let (msg, client) = (self.msg.clone(), self.client.clone());
            let every = self.ack_wait / 3;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let _ = msg.ack_with(AckKind::Progress).await;
                    if let Some(p) = &progress {
                        let _ = client.publish(p.clone(), Vec::new().into()).await;
                    }
                }
            })
        };
        let learner = match self.learner(&context).await {
            Ok(l) => l,
            Err(why) => {
                beat.abort();
                let why = Chain(&*why).to_string();
                (self.notice)(&format!("flotilla worker {name}: refusing job {id}: {why}"));
                self.reply(&reply, &id, delivered, 0.0, Err(why)).await;
                let _ = self.msg.ack_with(AckKind::Term).await;
                return;
            }
        };
        let started = Instant::now();
        let payload = self.msg.payload.clone();
        let answer = tokio::task::spawn_blocking(move || learner.compute(&payload))
            .await
            .map_err(Unanswered::Panicked)
            .and_then(|a| a.map_err(Unanswered::from))
            .map_err(|e| Chain(&e).to_string());
        beat.abort();
        drop(permit);
        let secs = started.elapsed().as_secs_f64();
        let failed = answer.is_err();
        self.reply(&reply, &id, delivered, secs, answer).await;
        if failed {
            let _ = self.msg.ack_with(AckKind::Term).await;
        } else {
            let _ = self.msg.double_ack().await;
            (self.notice)(&format!(
                "flotilla worker {name}: job {id} done in {secs:.3} s"
            ));
        }
    }

    /// Publishes the answer, or why there is none (in words, as a header), and waits
    /// until the server has it.
    async fn reply(
        &self,
        subject: &str,
        id: &str,
        delivered: i64,
        secs: f64,
        answer: Result<Vec<u8>, String>,
    ) {
        let mut headers = HeaderMap::new();
        headers.insert(JOB_ID, id);
        headers.insert(DELIVERED, delivered.to_string().as_str());
        headers.insert(SECONDS, secs.to_string().as_str());
        headers.insert(WORKER, self.opts.name.as_str());
        let body = match answer {
            Ok(body) => body,
            Err(why) => {
                headers.insert(ERROR, why.as_str());
                Vec::new()
            }
        };
        let sent = self
            .js
            .publish_with_headers(subject.to_string(), headers, body.into())
            .await;
        if let Ok(ack) = sent {
            let _ = ack.await;
        }
    }

    /// The run's learner, built on first use.
    async fn learner(&self, context: &str) -> Built {
        let mut built = self.built.lock().await;
        if let Some(b) = built.get(context) {
            return b.clone();
        }
        let fetched = async {
            let entry = self
                .js
                .get_stream(CONTEXTS)
                .await
                .map_err(ContextError::Stream)?
                .get_last_raw_message_by_subject(&format!("flotilla.contexts.{context}"))
                .await
                .map_err(|e| ContextError::Missing(context.to_string(), e))?
                .payload;
            serde_json::from_slice::<Context>(&entry).map_err(ContextError::Unreadable)
        }
        .await;
        let (opts, build, notice) = (self.opts.clone(), self.build.clone(), self.notice.clone());
        let b = match fetched {
            Ok(ctx) => tokio::task::spawn_blocking(move || {
                let built = build(&ctx, &opts);
                if built.is_ok() {
                    notice(&format!(
                        "flotilla worker {}: ready for {} ({})",
                        opts.name,
                        ctx.file,
                        &ctx.digest[..12.min(ctx.digest.len())]
                    ));
                }
                built
            })
            .await
            .unwrap_or_else(|e| Err(Arc::new(ContextError::Panicked(e)))),
            Err(why) => Err(Arc::new(why) as Refusal),
        };
        built.insert(context.to_string(), b.clone());
        b
    }
}

//! `flotilla worker`: answers the jobs of runs whose pool is remote (see
//! [`crate::pool::remote`]). A worker builds each run's model and data once, from the
//! run's resolved scenario and the same files on its own disk, and refuses the run's jobs
//! when what it built differs from what the run built, or when its flotilla version,
//! backend or device kind differ.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind, consumer};
use futures::StreamExt;
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};

use crate::pool::codec::{decode_job, encode_answer};
use crate::pool::remote::{
    CONTEXT, CONTEXTS, Context, DELIVERED, ERROR, EVAL_QUEUE, JOB_ID, JOBS, PROGRESS, REPLY,
    SECONDS, TRAIN_QUEUE, WORKER, connect, header, hex,
};
use crate::pool::{Backend, DeviceKind, PoolLearner, gpu_devices, worker_devices};
use crate::run::{prepare_on, store_identity};
use crate::scenario::{Loaded, Scenario};

/// Where a worker computes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum WorkerDevice {
    /// The CPU, with the run's backend.
    Cpu,
    /// One CUDA GPU, by index (LibTorch).
    Cuda(usize),
}

impl std::str::FromStr for WorkerDevice {
    type Err = String;

    /// `cpu` or `cuda:N`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_lowercase().as_str() {
            "cpu" => Ok(WorkerDevice::Cpu),
            other => other
                .strip_prefix("cuda:")
                .and_then(|i| i.parse().ok())
                .map(WorkerDevice::Cuda)
                .ok_or_else(|| format!("expected cpu or cuda:N, got \"{text}\"")),
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

/// Why a worker stopped.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The server cannot be reached.
    #[error("cannot connect to NATS at {url}: {message}")]
    Connect {
        /// The server.
        url: String,
        /// What the client said.
        message: String,
    },
}

/// A run's model and data, built once, or why they cannot be.
type Built = Result<Arc<PoolLearner>, String>;

/// Connects and answers jobs until the process is stopped.
pub fn serve(opts: WorkerOptions) -> Result<(), WorkerError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| WorkerError::Connect {
            url: opts.url.clone(),
            message: e.to_string(),
        })?;
    runtime.block_on(answer_jobs(opts))
}

async fn answer_jobs(opts: WorkerOptions) -> Result<(), WorkerError> {
    let client = connect(&opts.url, format!("flotilla worker {}", opts.name))
        .await
        .map_err(|message| WorkerError::Connect {
            url: opts.url.clone(),
            message,
        })?;
    let js = jetstream::new(client.clone());
    eprintln!(
        "flotilla worker {}: connected to {}; {} at once on {:?}",
        opts.name, opts.url, opts.threads, opts.device
    );
    let (train, eval) = (
        queue(&js, TRAIN_QUEUE.0).await,
        queue(&js, EVAL_QUEUE.0).await,
    );
    let ack_wait = train.cached_info().config.ack_wait;
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
                eprintln!("flotilla worker {}: cannot fetch a job: {e}", opts.name);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let job = Job {
            msg: Arc::new(msg),
            js: js.clone(),
            client: client.clone(),
            opts: opts.clone(),
            built: built.clone(),
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
) -> Result<Option<jetstream::Message>, String> {
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
async fn first<E: std::fmt::Display>(
    batch: Result<consumer::pull::Batch, E>,
) -> Result<Option<jetstream::Message>, String> {
    let mut batch = batch.map_err(|e| e.to_string())?;
    match batch.next().await {
        Some(Ok(msg)) => Ok(Some(msg)),
        Some(Err(e)) => Err(e.to_string()),
        None => Ok(None),
    }
}

/// A workers' consumer, once a run has created it.
async fn queue(js: &jetstream::Context, name: &str) -> consumer::PullConsumer {
    let mut said = false;
    loop {
        if let Ok(stream) = js.get_stream(JOBS).await
            && let Ok(c) = stream.get_consumer(name).await
        {
            return c;
        }
        if !said {
            eprintln!("flotilla worker: waiting for a run to create the job queue");
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
    built: Arc<Mutex<HashMap<String, Built>>>,
    ack_wait: Duration,
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
        eprintln!("flotilla worker {name}: job {id} started (delivery {delivered})");
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
        let learner = match self.build(&context).await {
            Ok(l) => l,
            Err(why) => {
                beat.abort();
                eprintln!("flotilla worker {name}: refusing job {id}: {why}");
                self.reply(&reply, &id, delivered, 0.0, Err(why)).await;
                let _ = self.msg.ack_with(AckKind::Term).await;
                return;
            }
        };
        let started = Instant::now();
        let payload = self.msg.payload.clone();
        let answer = tokio::task::spawn_blocking(move || {
            let job = decode_job(&payload).ok_or_else(|| {
                "the job cannot be read (is the worker the run's flotilla version?)".to_string()
            })?;
            learner
                .answer(job)
                .map(|a| encode_answer(&a))
                .ok_or_else(|| "a pool worker failed while computing the job".to_string())
        })
        .await
        .unwrap_or_else(|e| Err(format!("the job panicked: {e}")));
        beat.abort();
        drop(permit);
        let secs = started.elapsed().as_secs_f64();
        let failed = answer.is_err();
        self.reply(&reply, &id, delivered, secs, answer).await;
        if failed {
            let _ = self.msg.ack_with(AckKind::Term).await;
        } else {
            let _ = self.msg.double_ack().await;
            eprintln!("flotilla worker {name}: job {id} done in {secs:.3} s");
        }
    }

    /// Publishes the answer, or why there is none, and waits until the server has it.
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
    async fn build(&self, context: &str) -> Built {
        let mut built = self.built.lock().await;
        if let Some(b) = built.get(context) {
            return b.clone();
        }
        let fetched = async {
            let entry = self
                .js
                .get_stream(CONTEXTS)
                .await
                .map_err(|e| e.to_string())?
                .get_last_raw_message_by_subject(&format!("flotilla.contexts.{context}"))
                .await
                .map_err(|e| format!("no context {context} on the server: {e}"))?
                .payload;
            serde_json::from_slice::<Context>(&entry).map_err(|e| e.to_string())
        }
        .await;
        let opts = self.opts.clone();
        let b = match fetched {
            Ok(ctx) => tokio::task::spawn_blocking(move || build(&ctx, &opts))
                .await
                .unwrap_or_else(|e| Err(format!("building the model panicked: {e}"))),
            Err(why) => Err(format!("cannot read the run's context: {why}")),
        };
        built.insert(context.to_string(), b.clone());
        b
    }
}

/// Builds the run's model and data here and checks them against the run's.
fn build(ctx: &Context, opts: &WorkerOptions) -> Built {
    let mut scenario: Scenario = serde_json::from_value(ctx.scenario.clone())
        .map_err(|e| format!("the run's scenario cannot be read: {e}"))?;
    let pool = &mut scenario.pool;
    pool.remote = None;
    pool.batch_clients = 1;
    pool.workers = opts.threads;
    let devices = match opts.device {
        WorkerDevice::Cpu => {
            pool.device = DeviceKind::Cpu;
            worker_devices(pool.backend, DeviceKind::Cpu, opts.threads, 1)
        }
        WorkerDevice::Cuda(gpu) => {
            pool.device = DeviceKind::Cuda;
            pool.backend = Backend::Tch;
            gpu_devices(gpu, opts.threads)
        }
    };
    let mine = store_identity(&scenario);
    if mine != ctx.identity {
        return Err(format!(
            "the run computes as \"{}\", this worker as \"{mine}\"",
            ctx.identity
        ));
    }
    let devices = devices.map_err(|e| e.to_string())?;
    let loaded = Loaded {
        scenario,
        file: PathBuf::from(&ctx.file),
        base: PathBuf::from(&ctx.base),
    };
    let prepared = prepare_on(&loaded, None, devices).map_err(|e| e.to_string())?;
    let digest = hex(&prepared.context);
    if digest != ctx.digest {
        return Err(format!(
            "this worker's model and data differ from the run's (digest {digest} here, {} there): are the files under {} the same on this machine?",
            ctx.digest, ctx.base
        ));
    }
    eprintln!(
        "flotilla worker {}: ready for {} ({})",
        opts.name,
        ctx.file,
        &ctx.digest[..12]
    );
    Ok(Arc::new(prepared.learner))
}

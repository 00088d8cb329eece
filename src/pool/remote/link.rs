//! The run's connection to the remote pool, on the thread of its own: it sets the streams
//! up, publishes the run's context and jobs, takes answers back in any order, and watches
//! for silence.
//!
//! One file: the connection's setup and its serve loop share the `Link` state; the loop is
//! most of it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;

use super::{
    ANSWER_SUBJECTS, ANSWERS, CONTEXT, CONTEXT_SUBJECTS, CONTEXTS, Context, DELIVERED, ERROR,
    EVAL_QUEUE, JOB_ID, JOB_SUBJECTS, JOBS, PROGRESS, REPLY, RemoteError, RemoteFailure, SECONDS,
    TRAIN_QUEUE, WORKER, header,
};
use crate::notice::Notice;
use crate::pool::codec::{decode_answer, encode_job};
use crate::pool::job::{Answer, Job, JobKind};

/// Delivers a job's answer; `false` when the answer is not of the job's kind.
pub(crate) type OnAnswer = Box<dyn FnOnce(Answer) -> bool + Send>;

/// Where the jobs go and how long to wait.
#[derive(Clone)]
pub(crate) struct RemoteOptions {
    /// The NATS server, e.g. `nats://127.0.0.1:4222`.
    pub url: String,
    /// How long a delivered job may go without a worker's acknowledgement before it is
    /// delivered again (the job queue's, set by the run that creates it).
    pub ack_wait: Duration,
    /// How long the run waits without any word from a worker before it fails.
    pub deadline: Duration,
    /// Told once when the run has had no word from any worker for a while (and again
    /// after each silence that follows an answer), unless [`Remote::set_notice`] gives
    /// another.
    pub notice: Notice,
}

/// A job handed to the runtime thread.
pub(super) struct Submit {
    pub(super) kind: JobKind,
    pub(super) job: Job,
    pub(super) on_answer: OnAnswer,
}

/// How long answers of a run that is gone are kept.
const ANSWERS_KEPT: Duration = Duration::from_secs(3600);
/// Silence after which the run says it is waiting for workers (or half the deadline,
/// if that comes first).
const QUIET: Duration = Duration::from_secs(10);

/// The connection, on the runtime thread.
pub(super) struct Link {
    url: String,
    js: jetstream::Context,
    run: String,
    context: String,
    deadline: Duration,
    notice: Notice,
    answers: consumer::pull::Stream,
    progress: async_nats::Subscriber,
    /// The workers' consumers: training, evaluation.
    queues: Vec<consumer::PullConsumer>,
    jobs: stream::Stream,
}

/// A job waiting for its answer.
struct Waiting {
    kind: JobKind,
    on_answer: OnAnswer,
}

impl Link {
    pub(super) async fn open(opts: &RemoteOptions, context: &Context) -> Result<Self, RemoteError> {
        let client = super::connect(&opts.url, "flotilla run".into())
            .await
            .map_err(|source| RemoteError::Connect {
                url: opts.url.clone(),
                source,
            })?;
        let js = jetstream::new(client.clone());
        let failed = |what: &'static str| {
            let url = opts.url.clone();
            move |e: async_nats::Error| RemoteError::JetStream {
                url: url.clone(),
                what,
                source: e,
            }
        };
        let jobs = js
            .get_or_create_stream(stream::Config {
                name: JOBS.into(),
                subjects: vec![JOB_SUBJECTS.into()],
                retention: stream::RetentionPolicy::WorkQueue,
                ..Default::default()
            })
            .await
            .map_err(|e| failed("create the job stream")(e.into()))?;
        let mut queues = Vec::new();
        for (name, subjects) in [TRAIN_QUEUE, EVAL_QUEUE] {
            let queue = jobs
                .get_or_create_consumer(
                    name,
                    consumer::pull::Config {
                        durable_name: Some(name.into()),
                        filter_subject: subjects.into(),
                        ack_policy: consumer::AckPolicy::Explicit,
                        ack_wait: opts.ack_wait,
                        max_ack_pending: -1,
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| failed("create the workers' consumers")(e.into()))?;
            queues.push(queue);
        }
        let answers = js
            .get_or_create_stream(stream::Config {
                name: ANSWERS.into(),
                subjects: vec![ANSWER_SUBJECTS.into()],
                retention: stream::RetentionPolicy::WorkQueue,
                max_age: ANSWERS_KEPT,
                ..Default::default()
            })
            .await
            .map_err(|e| failed("create the answer stream")(e.into()))?;
        let run = run_id();
        let answers = answers
            .create_consumer(consumer::pull::Config {
                durable_name: Some(format!("run-{run}")),
                filter_subject: format!("flotilla.answers.{run}"),
                ack_policy: consumer::AckPolicy::Explicit,
                ..Default::default()
            })
            .await
            .map_err(|e| failed("create the run's answer consumer")(e.into()))?
            .messages()
            .await
            .map_err(|e| failed("read answers")(e.into()))?;
        let progress = client
            .subscribe(format!("flotilla.progress.{run}"))
            .await
            .map_err(|e| failed("subscribe to progress")(e.into()))?;
        js.get_or_create_stream(stream::Config {
            name: CONTEXTS.into(),
            subjects: vec![CONTEXT_SUBJECTS.into()],
            max_messages_per_subject: 1,
            ..Default::default()
        })
        .await
        .map_err(|e| failed("create the context stream")(e.into()))?;
        let body =
            serde_json::to_vec(context).map_err(|e| failed("encode the context")(e.into()))?;
        js.publish(format!("flotilla.contexts.{}", context.digest), body.into())
            .await
            .map_err(|e| failed("publish the run's context")(e.into()))?
            .await
            .map_err(|e| failed("publish the run's context")(e.into()))?;
        Ok(Self {
            url: opts.url.clone(),
            js,
            run,
            context: context.digest.clone(),
            deadline: opts.deadline,
            notice: opts.notice.clone(),
            answers,
            progress,
            queues,
            jobs,
        })
    }

    /// Publishes jobs and delivers answers until the run drops its [`Remote`].
    pub(super) async fn serve(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Submit>,
        failure: Arc<Mutex<Option<RemoteFailure>>>,
        notice: Arc<Mutex<Option<Notice>>>,
    ) {
        let mut waiting: HashMap<u64, Waiting> = HashMap::new();
        let mut answered: HashMap<u64, [u8; 32]> = HashMap::new();
        let mut next = 0u64;
        let mut heard = Instant::now();
        let mut said_quiet = false;
        let quiet_after = QUIET.min(self.deadline / 2);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let queue = metrics::gauge!(crate::monitor::POOL_QUEUE_DEPTH);
        let busy = metrics::gauge!(crate::monitor::POOL_BUSY_WORKERS);
        let fail = |waiting: &mut HashMap<u64, Waiting>, why: RemoteFailure| {
            let mut f = failure.lock().expect("remote failure");
            f.get_or_insert(why);
            // Dropping the answers' receivers stops the simulation.
            waiting.clear();
        };
        loop {
            tokio::select! {
                submit = rx.recv() => {
                    let Some(Submit { kind, job, on_answer }) = submit else { break };
                    if waiting.is_empty() {
                        heard = Instant::now();
                    }
                    let id = next;
                    next += 1;
                    if let Err(e) = self.publish(id, kind, &job).await {
                        fail(&mut waiting, RemoteFailure::Queue { url: self.url.clone(), source: Arc::from(e) });
                        continue;
                    }
                    waiting.insert(id, Waiting { kind, on_answer });
                }
                Some(msg) = self.answers.next() => {
                    let Ok(msg) = msg else { continue };
                    heard = Instant::now();
                    said_quiet = false;
                    let headers = msg.headers.as_ref();
                    let worker = header(headers, WORKER).unwrap_or("a worker").to_string();
                    let id = header(headers, JOB_ID).and_then(|v| v.parse::<u64>().ok());
                    if let Some(why) = header(headers, ERROR) {
                        fail(&mut waiting, RemoteFailure::Refused { worker, why: why.to_string() });
                    } else if let Some(id) = id {
                        let digest: [u8; 32] = Sha256::digest(&msg.payload).into();
                        if let Some(w) = waiting.remove(&id) {
                            if header(headers, DELIVERED).and_then(|d| d.parse::<u64>().ok()).is_some_and(|d| d > 1) {
                                metrics::counter!(crate::monitor::POOL_REDELIVERIES).increment(1);
                            }
                            if let Some(secs) = header(headers, SECONDS).and_then(|s| s.parse::<f64>().ok()) {
                                metrics::histogram!(crate::monitor::POOL_JOB_SECONDS, "kind" => w.kind.as_str()).record(secs);
                            }
                            if decode_answer(&msg.payload).is_some_and(|a| (w.on_answer)(a)) {
                                answered.insert(id, digest);
                            } else {
                                fail(&mut waiting, RemoteFailure::Malformed { worker, job: id });
                            }
                        } else if let Some(first) = answered.get(&id) {
                            metrics::counter!(crate::monitor::POOL_DUPLICATES).increment(1);
                            if *first != digest {
                                fail(&mut waiting, RemoteFailure::Disagree { worker, job: id });
                            }
                        }
                    }
                    let _ = msg.ack().await;
                }
                Some(_) = self.progress.next() => {
                    heard = Instant::now();
                    said_quiet = false;
                }
                _ = tick.tick() => {
                    queue.set(waiting.len() as f64);
                    let mut running = 0;
                    for queue in &mut self.queues {
                        if let Ok(info) = queue.info().await {
                            running += info.num_ack_pending;
                        }
                    }
                    busy.set(running as f64);
                    let quiet = heard.elapsed();
                    if waiting.is_empty() {
                        continue;
                    }
                    if quiet >= self.deadline {
                        let n = waiting.len();
                        fail(&mut waiting, RemoteFailure::Silent {
                            deadline: self.deadline,
                            jobs: n,
                            url: self.url.clone(),
                        });
                    } else if quiet >= quiet_after {
                        let line = format!(
                            "no word from any worker for {} s; {} jobs wait on {} (flotilla worker --nats {})",
                            quiet.as_secs(), waiting.len(), self.url, self.url
                        );
                        match &*notice.lock().expect("remote notice") {
                            Some(notice) => notice(&line),
                            None if !said_quiet => (self.notice)(&format!("flotilla: {line}")),
                            None => {}
                        }
                        said_quiet = true;
                    }
                }
            }
        }
        queue.set(0.0);
        self.close().await;
    }

    /// Puts a job on the queue, with what a worker needs to answer it.
    async fn publish(&self, id: u64, kind: JobKind, job: &Job) -> Result<(), async_nats::Error> {
        let mut headers = HeaderMap::new();
        headers.insert(JOB_ID, id.to_string().as_str());
        headers.insert(CONTEXT, self.context.as_str());
        headers.insert(REPLY, format!("flotilla.answers.{}", self.run).as_str());
        headers.insert(PROGRESS, format!("flotilla.progress.{}", self.run).as_str());
        let subject = format!("flotilla.jobs.{}.{}", self.run, kind.as_str());
        self.js
            .publish_with_headers(subject, headers, encode_job(job).into())
            .await?
            .await?;
        Ok(())
    }

    /// Removes what is left of the run: jobs no worker took, and its answer consumer.
    async fn close(self) {
        let _ = self
            .jobs
            .purge()
            .filter(format!("flotilla.jobs.{}.>", self.run))
            .await;
        if let Ok(answers) = self.js.get_stream(ANSWERS).await {
            let _ = answers.delete_consumer(&format!("run-{}", self.run)).await;
            let _ = answers
                .purge()
                .filter(format!("flotilla.answers.{}", self.run))
                .await;
        }
    }
}

/// A name for this run's subjects, unique among the runs sharing a server.
fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{:x}{:x}{n:x}", std::process::id(), nanos)
}

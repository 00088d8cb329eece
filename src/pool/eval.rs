//! Evaluation on the pool: the central test sets and every client's local split, cut into
//! chunks that spread over the workers and are summed in a fixed order.

use std::sync::{Arc, Mutex};

use flotilla_actors::learner::{Completer, TaskId};
use flotilla_actors::{ClientId, EvalJob, EvalOutcome, Pending};

use super::job::{Answer, ChunkCounts, EvalChunk, Job, JobKind, Key, Source};
use super::reader::{Reader, Set, slot_seed};
use super::remote::Remote;
use super::store::{JobStore, Keyed, deliver};
use super::{Pool, Worker};
use crate::model::{
    EvalCounts, NaiveBayes, Personalization, TrainConfig, Trainable, Vit, evaluate, fit_head,
    personalize,
};

/// Samples per evaluation task: small enough to spread over the workers.
const EVAL_CHUNK: usize = 250;
/// Batch size for evaluation (forward only).
const EVAL_BATCH: usize = 250;
/// Seeds the shuffling of each client's personalization fine-tuning (with its id).
const PERSONALIZE_SEED: u64 = 0x9e50_4a11_2e00_0001;

/// Collects chunk results and completes the evaluation when the last one is in; combining
/// in chunk order keeps the sums independent of which chunk finished first and where.
struct EvalGather {
    results: Vec<Option<ChunkCounts>>,
    left: usize,
    sources: Vec<Source>,
    clients: usize,
    tasks: usize,
    done: Option<Completer<EvalOutcome>>,
    /// Where the result is stored once complete.
    store: Option<(Arc<JobStore>, Key)>,
}

type Gather = Arc<Mutex<EvalGather>>;

impl EvalGather {
    /// Takes chunk `i`'s counts; the first of a chunk's counts is kept.
    fn put(&mut self, i: usize, counts: ChunkCounts) {
        if self.results[i].is_some() {
            return;
        }
        self.results[i] = Some(counts);
        self.left -= 1;
        if self.left == 0 {
            self.finish();
        }
    }

    fn finish(&mut self) {
        let mut central = EvalCounts::default();
        let mut tasks = vec![EvalCounts::default(); self.tasks];
        let mut served = vec![EvalCounts::default(); self.clients];
        let mut personal = vec![EvalCounts::default(); self.clients];
        for (src, result) in self.sources.iter().zip(&self.results) {
            let (c, p) = result.expect("all chunks are in");
            match *src {
                Source::Central(t, ..) => {
                    central.add(&c);
                    tasks[t].add(&c);
                }
                Source::Slot(client, _) => {
                    served[client].add(&c);
                    personal[client].add(&p);
                }
            }
        }
        let outcome = EvalOutcome {
            global_accuracy: central.accuracy(),
            global_loss: central.loss_sum / central.total.max(1) as f64,
            task_accuracy: tasks.iter().map(EvalCounts::accuracy).collect(),
            client_accuracy: served.iter().map(EvalCounts::accuracy_of_any).collect(),
            personalized_accuracy: personal.iter().map(EvalCounts::accuracy_of_any).collect(),
        };
        if let Some(done) = self.done.take() {
            let store = self.store.take();
            deliver(store.as_ref().map(|(s, k)| (&**s, k)), done, outcome);
        }
    }
}

/// Everything an evaluation needs besides the models: cloned into every chunk.
#[derive(Clone)]
pub(super) struct Evaluator {
    pub(super) trainable: Trainable,
    pub(super) personalize: Option<(Personalization, Arc<TrainConfig>)>,
    pub(super) naive_bayes: Option<NaiveBayes>,
    pub(super) reader: Reader,
    pub(super) stored: Option<Keyed>,
}

/// An evaluation begun: its outcome found in the store, or its chunks to count and what
/// gathers their counts.
enum Begun {
    Stored(EvalOutcome),
    Chunks(Vec<EvalChunk>, Gather, Pending<EvalOutcome>),
}

impl Evaluator {
    /// Starts evaluating `job` on `pool`, chunk by chunk.
    pub(super) fn submit(&self, pool: &Pool, job: EvalJob) -> Pending<EvalOutcome> {
        let (chunks, gather, pending) = match self.begin(&job) {
            Begun::Stored(outcome) => return Pending::ready(outcome),
            Begun::Chunks(chunks, gather, pending) => (chunks, gather, pending),
        };
        self.prefetch(pool, &chunks);
        for (i, chunk) in chunks.into_iter().enumerate() {
            let gather = gather.clone();
            self.count(pool, chunk, move |counts| {
                gather.lock().expect("eval gather").put(i, counts);
            });
        }
        pending
    }

    /// Sends `job`'s chunks to the remote workers, grouped into parts of at least
    /// [`EVAL_CHUNK`] samples: one message each, answered with each chunk's counts.
    pub(super) fn submit_remote(&self, remote: &Remote, job: EvalJob) -> Pending<EvalOutcome> {
        let (chunks, gather, pending) = match self.begin(&job) {
            Begun::Stored(outcome) => return Pending::ready(outcome),
            Begun::Chunks(chunks, gather, pending) => (chunks, gather, pending),
        };
        let mut first = 0;
        for part in self.parts(chunks) {
            let (at, n) = (first, part.len());
            first += n;
            let gather = gather.clone();
            remote.submit(
                JobKind::Eval,
                Job::Eval(part),
                Box::new(move |answer| {
                    let Answer::Eval(counts) = answer else {
                        return false;
                    };
                    if counts.len() != n {
                        return false;
                    }
                    let mut gather = gather.lock().expect("eval gather");
                    for (k, c) in counts.into_iter().enumerate() {
                        gather.put(at + k, c);
                    }
                    true
                }),
            );
        }
        pending
    }

    /// Counts `chunks` on `pool`, as a remote worker answers them; `None` when a chunk is
    /// not of this worker's data or a pool worker failed.
    pub(super) fn answer(&self, pool: &Pool, chunks: Vec<EvalChunk>) -> Option<Vec<ChunkCounts>> {
        if !chunks.iter().all(|c| self.holds(c.source)) {
            return None;
        }
        self.prefetch(pool, &chunks);
        let pending: Vec<Pending<ChunkCounts>> = chunks
            .into_iter()
            .map(|chunk| {
                let (done, pending) = Pending::channel();
                self.count(pool, chunk, move |counts| done.complete(counts));
                pending
            })
            .collect();
        pending.into_iter().map(|p| p.wait().ok()).collect()
    }

    /// The stored outcome of `job` when the store has it; otherwise its chunks and the
    /// gather that completes it (at once for a job of no chunk).
    fn begin(&self, job: &EvalJob) -> Begun {
        let store = self
            .stored
            .as_ref()
            .map(|s| (s.store.clone(), s.keys.eval(job)));
        if let Some(outcome) = store.as_ref().and_then(|(store, key)| store.eval(key)) {
            return Begun::Stored(outcome);
        }
        let chunks = self.chunks(job);
        let data = &self.reader.data;
        let (done, pending) = Pending::channel();
        let mut gather = EvalGather {
            results: vec![None; chunks.len()],
            left: chunks.len(),
            sources: chunks.iter().map(|c| c.source).collect(),
            clients: data.slots.len(),
            tasks: data.task_test.len(),
            done: Some(done),
            store,
        };
        if chunks.is_empty() {
            gather.finish();
        }
        Begun::Chunks(chunks, Arc::new(Mutex::new(gather)), pending)
    }

    /// `job` cut into chunks: every task's central test images, [`EVAL_CHUNK`] at a time
    /// (a naive Bayes head is fitted once per task, so its task is one chunk), then every
    /// slot with a local test split (a slot without one has nothing to evaluate).
    fn chunks(&self, job: &EvalJob) -> Vec<EvalChunk> {
        let data = &self.reader.data;
        let step = if self.naive_bayes.is_some() {
            usize::MAX
        } else {
            EVAL_CHUNK
        };
        let mut chunks = Vec::new();
        for (t, test) in data.task_test.iter().enumerate() {
            let n = test.len();
            chunks.extend((0..n).step_by(step).map(|s| EvalChunk {
                source: Source::Central(t, s, s.saturating_add(step).min(n)),
                params: job.tasks[t].clone(),
                own: None,
            }));
        }
        for (c, slots) in data.slots.iter().enumerate() {
            let own = job.personal.get(c).cloned().flatten();
            chunks.extend(
                (0..slots.len())
                    .filter(|&s| !slots[s].test.is_empty())
                    .map(|s| EvalChunk {
                        source: Source::Slot(c, s),
                        params: job.slots[c][s].clone(),
                        own: own.clone(),
                    }),
            );
        }
        chunks
    }

    /// Consecutive chunks grouped into parts of at least [`EVAL_CHUNK`] samples.
    fn parts(&self, chunks: Vec<EvalChunk>) -> Vec<Vec<EvalChunk>> {
        let mut parts = Vec::new();
        let (mut part, mut samples) = (Vec::new(), 0);
        for chunk in chunks {
            samples += match chunk.source {
                Source::Central(_, s, e) => e - s,
                Source::Slot(c, s) => self.reader.data.slots[c][s].test.len(),
            };
            part.push(chunk);
            if samples >= EVAL_CHUNK {
                parts.push(std::mem::take(&mut part));
                samples = 0;
            }
        }
        if !part.is_empty() {
            parts.push(part);
        }
        parts
    }

    /// Whether `source` names samples of this evaluator's data.
    fn holds(&self, source: Source) -> bool {
        let data = &self.reader.data;
        match source {
            Source::Central(t, s, e) => data
                .task_test
                .get(t)
                .is_some_and(|test| s < e && e <= test.len()),
            Source::Slot(c, s) => data.slots.get(c).is_some_and(|slots| s < slots.len()),
        }
    }

    /// Queues the cache fills that `chunks` read, ahead of them: the test images, the
    /// training images a naive Bayes head is fitted on or personalization fine-tunes on,
    /// and the clients' local test splits (drawn from the training images).
    fn prefetch(&self, pool: &Pool, chunks: &[EvalChunk]) {
        let (reader, data) = (&self.reader, &self.reader.data);
        let fine_tunes = self.personalize.as_ref().is_some_and(|(p, _)| !p.head_only);
        for chunk in chunks {
            match chunk.source {
                Source::Central(t, s, e) => {
                    reader.prefetch(pool, JobKind::Eval, Set::Test, &data.task_test[t][s..e]);
                    if self.naive_bayes.is_some() {
                        reader.prefetch(pool, JobKind::Eval, Set::Train, &self.support(t));
                    }
                }
                Source::Slot(c, s) => {
                    let slot = &data.slots[c][s];
                    reader.prefetch(pool, JobKind::Eval, Set::Train, &slot.test);
                    if self.naive_bayes.is_some() || fine_tunes {
                        reader.prefetch(pool, JobKind::Eval, Set::Train, &slot.train);
                    }
                }
            }
        }
    }

    /// The training images a naive Bayes head for task `t` is fitted on: the pooled
    /// training splits of the clients holding the task.
    fn support(&self, t: TaskId) -> Vec<u32> {
        self.reader
            .data
            .slots
            .iter()
            .flatten()
            .filter(|slot| slot.task.is_none_or(|task| task == t))
            .flat_map(|slot| slot.train.iter().copied())
            .collect()
    }

    /// Counts one chunk on a worker of `pool` and hands its counts to `put`.
    fn count(&self, pool: &Pool, chunk: EvalChunk, put: impl FnOnce(ChunkCounts) + Send + 'static) {
        let eval = self.clone();
        pool.submit(
            JobKind::Eval,
            Box::new(move |w| {
                let model = eval.trainable.load(w.model.clone(), &chunk.params);
                let counts = match chunk.source {
                    Source::Central(t, s, e) => {
                        let c = eval.central(&model, t, s, e);
                        (c, c)
                    }
                    Source::Slot(c, s) => {
                        eval.slot(w, model, chunk.own.as_deref().map(Vec::as_slice), c, s)
                    }
                };
                put(counts);
            }),
        );
    }

    /// The served model on task `t`'s central test images `s..e`. A naive Bayes head is
    /// fitted on the pooled training splits of the clients holding the task.
    fn central(&self, model: &Vit, t: TaskId, s: usize, e: usize) -> EvalCounts {
        let data = &self.reader.data;
        let idx = &data.task_test[t][s..e];
        let head = self.naive_bayes.map(|config| {
            fit_head(
                model,
                &config,
                self.reader.train(),
                &self.support(t),
                EVAL_BATCH,
            )
        });
        evaluate(model, head.as_ref(), self.reader.test(), idx, EVAL_BATCH)
    }

    /// The served and the personalized model on client `c`'s slot `s`'s local test split.
    fn slot(
        &self,
        w: &Worker,
        model: Vit,
        own: Option<&[f32]>,
        c: ClientId,
        s: usize,
    ) -> ChunkCounts {
        let (data, train) = (&self.reader.data, self.reader.train());
        let slot = &data.slots[c][s];
        if let Some(config) = &self.naive_bayes {
            // The head is always the client's own: served and personalized are one.
            let head = fit_head(&model, config, train, &slot.train, EVAL_BATCH);
            let counts = evaluate(&model, Some(&head), train, &slot.test, EVAL_BATCH);
            return (counts, counts);
        }
        let served = evaluate(&model, None, train, &slot.test, EVAL_BATCH);
        let personal = if let Some(own) = own {
            // The client's own personal model, as its last job left it.
            let mine = self.trainable.load(w.model.clone(), own);
            evaluate(&mine, None, train, &slot.test, EVAL_BATCH)
        } else if let Some((p, config)) = &self.personalize {
            let seed = slot_seed(PERSONALIZE_SEED ^ c as u64, s);
            let tuned = personalize(model, p, config, train, &slot.train, seed, &w.device);
            evaluate(&tuned, None, train, &slot.test, EVAL_BATCH)
        } else {
            served
        };
        (served, personal)
    }
}

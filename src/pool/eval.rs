//! Evaluation on the pool: the central test sets and every client's local split, cut into
//! chunks that spread over the workers and are summed in a fixed order.

use std::sync::{Arc, Mutex};

use flotilla_actors::learner::{Completer, TaskId};
use flotilla_actors::{ClientId, EvalJob, EvalOutcome, Pending};

use super::codec::{Answer, Job};
use super::learner::Keyed;
use super::reader::{Reader, slot_seed};
use super::remote::Remote;
use super::store::{JobStore, Key};
use super::{JobKind, Pool, Worker};
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

/// Where an evaluation chunk's samples come from.
#[derive(Clone)]
enum Source {
    /// Task `t`'s central test images `start..end` (positions in its list).
    Central(TaskId, usize, usize),
    /// A client's slot's local test split.
    Slot(ClientId, usize),
}

/// Collects chunk results and completes the evaluation when the last one is in; combining
/// in chunk order keeps the sums independent of which chunk finished first. A slot's
/// chunk holds the served model's counts and the personalized model's.
struct EvalGather {
    results: Vec<Option<(EvalCounts, EvalCounts)>>,
    left: usize,
    sources: Vec<Source>,
    clients: usize,
    tasks: usize,
    done: Option<Completer<EvalOutcome>>,
    /// Where the result is stored once complete.
    store: Option<(Arc<JobStore>, Key)>,
}

impl EvalGather {
    fn put(&mut self, i: usize, counts: (EvalCounts, EvalCounts)) {
        self.results[i] = Some(counts);
        self.left -= 1;
        if self.left > 0 {
            return;
        }
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
        if let Some((store, key)) = self.store.take() {
            store.put_eval(&key, &outcome);
        }
        if let Some(done) = self.done.take() {
            done.complete(outcome);
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

impl Evaluator {
    /// The store and the job's key in it, when results are stored; the stored outcome
    /// when it is there.
    fn stored(&self, job: &EvalJob) -> (Option<(Arc<JobStore>, Key)>, Option<EvalOutcome>) {
        let store = self
            .stored
            .as_ref()
            .map(|s| (s.store.clone(), s.keys.eval(job)));
        let found = store.as_ref().and_then(|(store, key)| store.eval(key));
        (store, found)
    }

    /// Sends `job` whole to a remote worker, which spreads it over its own workers.
    pub(super) fn submit_remote(&self, remote: &Remote, job: EvalJob) -> Pending<EvalOutcome> {
        let (store, found) = self.stored(&job);
        if let Some(outcome) = found {
            return Pending::ready(outcome);
        }
        let (done, pending) = Pending::channel();
        remote.submit(
            JobKind::Eval,
            Job::Eval(job),
            Box::new(move |answer| {
                let Answer::Eval(outcome) = answer else {
                    return false;
                };
                if let Some((store, key)) = &store {
                    store.put_eval(key, &outcome);
                }
                done.complete(outcome);
                true
            }),
        );
        pending
    }

    /// Starts evaluating `job` on `pool`, chunk by chunk.
    pub(super) fn submit(&self, pool: &Pool, job: EvalJob) -> Pending<EvalOutcome> {
        let (store, found) = self.stored(&job);
        if let Some(outcome) = found {
            return Pending::ready(outcome);
        }
        let (done, pending) = Pending::channel();
        let data = &self.reader.data;
        let naive_bayes = self.naive_bayes;
        // A naive Bayes head is fitted once per task, so its task is one chunk.
        let chunk = if naive_bayes.is_some() {
            usize::MAX
        } else {
            EVAL_CHUNK
        };
        let mut sources: Vec<Source> = Vec::new();
        for (t, test) in data.task_test.iter().enumerate() {
            let n = test.len();
            sources.extend(
                (0..n)
                    .step_by(chunk)
                    .map(|s| Source::Central(t, s, s.saturating_add(chunk).min(n))),
            );
        }
        // A slot without a local test split has nothing to evaluate (its accuracy is 0).
        for (c, slots) in data.slots.iter().enumerate() {
            sources.extend(
                (0..slots.len())
                    .filter(|&s| !slots[s].test.is_empty())
                    .map(|s| Source::Slot(c, s)),
            );
        }
        let gather = Arc::new(Mutex::new(EvalGather {
            results: vec![None; sources.len()],
            left: sources.len(),
            sources: sources.clone(),
            clients: data.slots.len(),
            tasks: data.task_test.len(),
            done: Some(done),
            store,
        }));
        for (i, src) in sources.into_iter().enumerate() {
            let gather = gather.clone();
            let (params, own) = match src {
                Source::Central(t, ..) => (job.tasks[t].clone(), None),
                Source::Slot(c, s) => (
                    job.slots[c][s].clone(),
                    job.personal.get(c).cloned().flatten(),
                ),
            };
            let eval = self.clone();
            pool.submit(
                JobKind::Eval,
                Box::new(move |w| {
                    let model = eval.trainable.load(w.model.clone(), &params);
                    let counts = match src {
                        Source::Central(t, s, e) => {
                            let c = eval.central(&model, t, s, e);
                            (c, c)
                        }
                        Source::Slot(c, s) => {
                            eval.slot(w, model, own.as_ref().map(|p| p.as_slice()), c, s)
                        }
                    };
                    gather.lock().expect("eval gather").put(i, counts);
                }),
            );
        }
        pending
    }

    /// The served model on task `t`'s central test images `s..e`. A naive Bayes head is
    /// fitted on the pooled training splits of the clients holding the task.
    fn central(&self, model: &Vit, t: TaskId, s: usize, e: usize) -> EvalCounts {
        let data = &self.reader.data;
        let idx = &data.task_test[t][s..e];
        let head = self.naive_bayes.map(|config| {
            let support: Vec<u32> = data
                .slots
                .iter()
                .flatten()
                .filter(|slot| slot.task.is_none_or(|task| task == t))
                .flat_map(|slot| slot.train.iter().copied())
                .collect();
            fit_head(model, &config, self.reader.train(), &support, EVAL_BATCH)
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
    ) -> (EvalCounts, EvalCounts) {
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

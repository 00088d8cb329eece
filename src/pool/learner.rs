//! The engine's [`Learner`], backed by the pool and the Burn model.

use std::sync::{Arc, Mutex};

use burn::tensor::Device;
use flotilla_actors::learner::{SlotOutcome, TaskId};
use flotilla_actors::{ClientId, EvalJob, EvalOutcome, Learner, Pending, TrainJob, TrainOutcome};

use super::{JobKind, Pool};
use crate::data::{Slot, TaskData};
use crate::model::{
    Adaptation, Depth, EvalCounts, LocalData, NaiveBayes, Objective, Optimizer, PersonalStep,
    Prefix, Samples, TrainConfig, Trainable, Vit, evaluate, fine_tune, fit_head, train_group,
    train_local, train_maml, train_moreau,
};

/// Samples per evaluation task: small enough to spread over the workers.
const EVAL_CHUNK: usize = 250;
/// Batch size for evaluation (forward only).
const EVAL_BATCH: usize = 250;
/// Seeds the shuffling of each client's personalization fine-tuning (with its id).
const PERSONALIZE_SEED: u64 = 0x9e50_4a11_2e00_0001;

/// Local fine-tuning that personalizes the served model before each client's evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct Personalization {
    pub steps: usize,
    /// Plain SGD at this rate, else the training optimizer.
    pub lr: Option<f64>,
    /// Fine-tune the head alone (FedBABU) rather than the trainable parameters.
    pub head_only: bool,
}

/// Everything a [`PoolLearner`] needs.
pub struct LearnerSetup {
    pub model: Vit,
    pub adaptation: Adaptation,
    pub patch: usize,
    pub train: TrainConfig,
    /// The images, tasks and every client's slots.
    pub data: Arc<TaskData>,
    /// `None` evaluates the served model as is.
    pub personalize: Option<Personalization>,
    /// The clients' personalized-FL procedure (PersA-FL), or plain local training.
    pub procedure: Option<PersonalStep>,
    /// Where the workers run.
    pub devices: Vec<Device>,
    /// Most clients' jobs trained in one batch; 1 trains each alone.
    pub batch_clients: usize,
    /// Memory for cached frozen-prefix activations, in bytes (0: no cache).
    pub cache_budget: u64,
}

/// The frozen prefix's activations of the train and test images.
struct PrefixCache {
    train: Prefix,
    test: Prefix,
}

impl PrefixCache {
    /// Fills the budget with the training images first, then the test images.
    fn fill(setup: &LearnerSetup, depth: Depth) -> Option<Self> {
        if setup.cache_budget == 0 {
            return None;
        }
        let (model, data, patch) = (&setup.model, &setup.data, setup.patch);
        let train = Prefix::fill(model, depth, &data.train, patch, setup.cache_budget);
        let left = setup.cache_budget.saturating_sub(train.bytes());
        let test = Prefix::fill(model, depth, &data.test, patch, left);
        Some(Self { train, test })
    }
}

/// The training and test images as the model reads them, through the cache where valid.
#[derive(Clone)]
struct Reader {
    data: Arc<TaskData>,
    cache: Option<Arc<PrefixCache>>,
    patch: usize,
}

impl Reader {
    fn train(&self) -> Samples<'_> {
        Samples {
            data: &self.data.train,
            patch: self.patch,
            prefix: self.cache.as_ref().map(|c| &c.train),
        }
    }

    /// Slot `s`'s training data in a job seeded `seed`.
    fn slot_data<'a>(
        &'a self,
        slot: &'a Slot,
        s: usize,
        seed: u64,
        device: &'a Device,
        objective: &'a Objective,
    ) -> LocalData<'a> {
        LocalData {
            samples: self.train(),
            indices: &slot.train,
            seed: slot_seed(seed, s),
            device,
            objective,
        }
    }

    fn test(&self) -> Samples<'_> {
        Samples {
            data: &self.data.test,
            patch: self.patch,
            prefix: self.cache.as_ref().map(|c| &c.test),
        }
    }
}

/// A training job waiting to run in a batch.
type Held = (TrainJob, flotilla_actors::learner::Completer<TrainOutcome>);

/// Trains and evaluates on the pool.
pub struct PoolLearner {
    pool: Pool,
    initial: Vec<f32>,
    adaptation: Arc<Adaptation>,
    trainable: Trainable,
    reader: Reader,
    train: Arc<TrainConfig>,
    personalize: Option<(Personalization, TrainConfig)>,
    procedure: Arc<Option<PersonalStep>>,
    /// Clients per batch, when jobs are batched.
    batch: Option<usize>,
    held: Mutex<Vec<Held>>,
}

impl PoolLearner {
    pub fn new(setup: LearnerSetup) -> Self {
        let trainable = setup.adaptation.trainable();
        let initial = trainable.extract(&setup.model);
        let cache = setup
            .adaptation
            .frozen_prefix()
            .and_then(|depth| PrefixCache::fill(&setup, depth))
            .map(Arc::new);
        let personalize = setup.personalize.map(|p| {
            let mut config = setup.train.clone();
            if let Some(lr) = p.lr {
                config.optimizer = Optimizer::Sgd { lr };
            }
            (p, config)
        });
        let batch =
            (setup.batch_clients > 1 && setup.procedure.is_none() && setup.adaptation.groups())
                .then_some(setup.batch_clients);
        Self {
            pool: Pool::new(&setup.devices, &setup.model),
            initial,
            adaptation: Arc::new(setup.adaptation),
            trainable,
            reader: Reader {
                data: setup.data,
                cache,
                patch: setup.patch,
            },
            train: Arc::new(setup.train),
            personalize,
            procedure: Arc::new(setup.procedure),
            batch,
            held: Mutex::new(Vec::new()),
        }
    }

    /// Trains held jobs in one batch on a worker.
    fn submit_group(&self, group: Vec<Held>) {
        let trainable = self.trainable.clone();
        let reader = self.reader.clone();
        let config = self.train.clone();
        let head_trains = self.adaptation.head.trains();
        self.pool.submit(
            JobKind::Train,
            Box::new(move |w| {
                let data = &reader.data;
                let objective = Objective::default();
                let mut members = Vec::new();
                let mut starts: Vec<&[f32]> = Vec::new();
                for (job, _) in &group {
                    for (s, (slot, start)) in
                        data.slots[job.client].iter().zip(&job.params).enumerate()
                    {
                        members.push(reader.slot_data(slot, s, job.seed, &w.device, &objective));
                        starts.push(start);
                    }
                }
                let mut trained = train_group(
                    w.model.clone(),
                    &trainable,
                    &members,
                    &starts,
                    &config,
                    head_trains,
                )
                .into_iter();
                drop(members);
                for (job, done) in group {
                    let slots = &data.slots[job.client];
                    let mine = trained.by_ref().take(slots.len());
                    done.complete(outcome(slots, mine, None));
                }
            }),
        );
    }
}

/// A job's outcome from each of the client's slots' trained adapter and mean loss.
fn outcome(
    slots: &[Slot],
    trained: impl IntoIterator<Item = (Vec<f32>, f64)>,
    personal: Option<Vec<f32>>,
) -> TrainOutcome {
    let (mut out, mut loss) = (Vec::with_capacity(slots.len()), 0.0);
    for (slot, (params, l)) in slots.iter().zip(trained) {
        loss += l;
        out.push(SlotOutcome {
            params,
            num_samples: slot.train.len() as u64,
        });
    }
    TrainOutcome {
        loss: loss / out.len().max(1) as f64,
        slots: out,
        personal,
    }
}

/// The shuffling seed of slot `slot` in a job seeded `seed` (slot 0 keeps the job's).
fn slot_seed(seed: u64, slot: usize) -> u64 {
    seed ^ (slot as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

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
    done: Option<flotilla_actors::learner::Completer<EvalOutcome>>,
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
        if let Some(done) = self.done.take() {
            done.complete(EvalOutcome {
                global_accuracy: central.accuracy(),
                global_loss: central.loss_sum / central.total.max(1) as f64,
                task_accuracy: tasks.iter().map(EvalCounts::accuracy).collect(),
                client_accuracy: served.iter().map(EvalCounts::accuracy).collect(),
                personalized_accuracy: personal.iter().map(EvalCounts::accuracy).collect(),
            });
        }
    }
}

impl Learner for PoolLearner {
    fn initial_params(&self) -> Vec<f32> {
        self.initial.clone()
    }

    fn train_work(&self, client: ClientId) -> u64 {
        let samples: usize = self.reader.data.slots[client]
            .iter()
            .map(|s| s.train.len())
            .sum();
        samples as u64 * self.train.epochs as u64
    }

    fn train(&self, job: TrainJob) -> Pending<TrainOutcome> {
        let (done, pending) = Pending::channel();
        if let Some(size) = self.batch {
            let mut held = self.held.lock().expect("held jobs");
            held.push((job, done));
            if held.len() >= size {
                let group = std::mem::take(&mut *held);
                drop(held);
                self.submit_group(group);
            }
            return pending;
        }
        let trainable = self.trainable.clone();
        let reader = self.reader.clone();
        let config = self.train.clone();
        let procedure = self.procedure.clone();
        let objective = self.adaptation.objective(job.client);
        self.pool.submit(
            JobKind::Train,
            Box::new(move |w| {
                let mut trained = Vec::with_capacity(job.params.len());
                let mut personal = None;
                let data = &reader.data;
                for (s, (slot, start)) in data.slots[job.client].iter().zip(&job.params).enumerate()
                {
                    let local = reader.slot_data(slot, s, job.seed, &w.device, &objective);
                    let model = trainable.load(w.model.clone(), start);
                    let (params, loss) = match procedure.as_ref() {
                        None => {
                            let (m, loss) = train_local(model, &local, &config);
                            (trainable.extract(&m), loss)
                        }
                        Some(PersonalStep::Maml { inner_lr }) => {
                            let (m, loss) = train_maml(model, &local, &config, *inner_lr);
                            (trainable.extract(&m), loss)
                        }
                        Some(PersonalStep::Moreau {
                            lambda,
                            inner_steps,
                        }) => {
                            // The personal model starts from the last one, or from the global.
                            let from = job.personal.as_deref().unwrap_or(start);
                            let own = trainable.load(w.model.clone(), from);
                            let (update, own, loss) = train_moreau(
                                start,
                                own,
                                &trainable,
                                &local,
                                &config,
                                *lambda,
                                *inner_steps,
                            );
                            personal = Some(trainable.extract(&own));
                            (update, loss)
                        }
                    };
                    trained.push((params, loss));
                }
                done.complete(outcome(&data.slots[job.client], trained, personal));
            }),
        );
        pending
    }

    fn flush(&self) {
        let Some(size) = self.batch else { return };
        let held = std::mem::take(&mut *self.held.lock().expect("held jobs"));
        let mut held = held.into_iter().peekable();
        while held.peek().is_some() {
            self.submit_group(held.by_ref().take(size).collect());
        }
    }

    fn evaluate(&self, job: EvalJob) -> Pending<EvalOutcome> {
        let (done, pending) = Pending::channel();
        let data = &self.reader.data;
        let naive_bayes = self.adaptation.head.naive_bayes();
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
            let eval = EvalContext {
                trainable: self.trainable.clone(),
                personalize: self.personalize.clone(),
                naive_bayes,
                reader: self.reader.clone(),
            };
            self.pool.submit(
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
}

/// What an evaluation chunk needs besides the model.
struct EvalContext {
    trainable: Trainable,
    personalize: Option<(Personalization, TrainConfig)>,
    naive_bayes: Option<NaiveBayes>,
    reader: Reader,
}

impl EvalContext {
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
        w: &super::Worker,
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
            let objective = Objective::default();
            // Fine-tuning the head alone: the served body's features of the client's
            // samples are computed once for all steps.
            let features = p.head_only.then(|| {
                Prefix::of(
                    &model,
                    Depth::Features,
                    &data.train,
                    &slot.train,
                    train.patch,
                )
            });
            let samples = match &features {
                Some(prefix) => Samples {
                    prefix: Some(prefix),
                    ..train
                },
                None => train,
            };
            let local = LocalData {
                samples,
                indices: &slot.train,
                seed: slot_seed(PERSONALIZE_SEED ^ c as u64, s),
                device: &w.device,
                objective: &objective,
            };
            let model = if p.head_only {
                Adaptation::head().apply(model)
            } else {
                model
            };
            let (tuned, _) = fine_tune(model, &local, p.steps, config);
            evaluate(&tuned, None, train, &slot.test, EVAL_BATCH)
        } else {
            served
        };
        (served, personal)
    }
}

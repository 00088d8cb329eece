//! The engine's [`Learner`], backed by the pool and the Burn model.

use std::sync::{Arc, Mutex};

use burn::tensor::Device;
use flotilla_actors::{ClientId, EvalJob, EvalOutcome, Learner, Pending, TrainJob, TrainOutcome};

use super::{JobKind, Pool};
use crate::data::{Dataset, Partition};
use crate::model::{
    EvalCounts, LocalData, Optimizer, PersonalStep, TrainConfig, Trainable, Vit, evaluate,
    fine_tune, train_local, train_maml, train_moreau,
};

/// Samples per evaluation task: small enough to spread over the workers.
const EVAL_CHUNK: usize = 250;
/// Batch size for evaluation (forward only).
const EVAL_BATCH: usize = 250;
/// Seeds the shuffling of each client's personalization fine-tuning (with its id).
const PERSONALIZE_SEED: u64 = 0x9e50_4a11_2e00_0001;

/// Everything a [`PoolLearner`] needs.
pub struct LearnerSetup {
    pub model: Vit,
    pub trainable: Trainable,
    pub patch: usize,
    pub train: TrainConfig,
    pub train_data: Arc<Dataset>,
    pub test_data: Arc<Dataset>,
    pub partition: Arc<Partition>,
    /// Local fine-tuning steps (and their SGD learning rate, else the training optimizer)
    /// that personalize the model before each client's evaluation; `None` evaluates the
    /// global model as is.
    pub personalize: Option<(usize, Option<f64>)>,
    /// The clients' personalized-FL procedure (PersA-FL), or plain local training.
    pub procedure: Option<PersonalStep>,
    pub workers: usize,
    pub device: Device,
}

/// Trains and evaluates on the pool.
pub struct PoolLearner {
    pool: Pool,
    initial: Vec<f32>,
    trainable: Trainable,
    patch: usize,
    train: Arc<TrainConfig>,
    train_data: Arc<Dataset>,
    test_data: Arc<Dataset>,
    partition: Arc<Partition>,
    personalize: Option<(usize, TrainConfig)>,
    procedure: Arc<Option<PersonalStep>>,
}

impl PoolLearner {
    pub fn new(setup: LearnerSetup) -> Self {
        let initial = setup.trainable.extract(&setup.model);
        let personalize = setup.personalize.map(|(steps, lr)| {
            let mut config = setup.train.clone();
            if let Some(lr) = lr {
                config.optimizer = Optimizer::Sgd { lr };
            }
            (steps, config)
        });
        Self {
            pool: Pool::new(setup.workers, &setup.model, &setup.device),
            initial,
            trainable: setup.trainable,
            patch: setup.patch,
            train: Arc::new(setup.train),
            train_data: setup.train_data,
            test_data: setup.test_data,
            partition: setup.partition,
            personalize,
            procedure: Arc::new(setup.procedure),
        }
    }
}

/// Where an evaluation chunk's samples come from.
#[derive(Clone)]
enum Source {
    /// The central test set, `start..end`.
    Central(usize, usize),
    /// Client `c`'s local test split.
    Client(ClientId),
}

/// Collects chunk results and completes the evaluation when the last one is in; combining
/// in chunk order keeps the sums independent of which chunk finished first. A client's
/// chunk holds the global model's counts and its personalized model's.
struct EvalGather {
    slots: Vec<Option<(EvalCounts, EvalCounts)>>,
    left: usize,
    sources: Vec<Source>,
    clients: usize,
    done: Option<flotilla_actors::learner::Completer<EvalOutcome>>,
}

impl EvalGather {
    fn put(&mut self, i: usize, counts: (EvalCounts, EvalCounts)) {
        self.slots[i] = Some(counts);
        self.left -= 1;
        if self.left > 0 {
            return;
        }
        let mut central = EvalCounts::default();
        let mut client_accuracy = vec![0.0; self.clients];
        let mut personalized_accuracy = vec![0.0; self.clients];
        for (src, slot) in self.sources.iter().zip(&self.slots) {
            let (c, personal) = slot.expect("all chunks are in");
            match src {
                Source::Central(..) => {
                    central.correct += c.correct;
                    central.total += c.total;
                    central.loss_sum += c.loss_sum;
                }
                Source::Client(id) => {
                    client_accuracy[*id] = c.accuracy();
                    personalized_accuracy[*id] = personal.accuracy();
                }
            }
        }
        if let Some(done) = self.done.take() {
            done.complete(EvalOutcome {
                global_accuracy: central.accuracy(),
                global_loss: central.loss_sum / central.total.max(1) as f64,
                client_accuracy,
                personalized_accuracy,
            });
        }
    }
}

impl Learner for PoolLearner {
    fn initial_params(&self) -> Vec<f32> {
        self.initial.clone()
    }

    fn train_work(&self, client: ClientId) -> u64 {
        self.partition.train[client].len() as u64 * self.train.epochs as u64
    }

    fn train(&self, job: TrainJob) -> Pending<TrainOutcome> {
        let (done, pending) = Pending::channel();
        let trainable = self.trainable.clone();
        let data = self.train_data.clone();
        let partition = self.partition.clone();
        let config = self.train.clone();
        let patch = self.patch;
        let procedure = self.procedure.clone();
        self.pool.submit(
            JobKind::Train,
            Box::new(move |w| {
                let indices = &partition.train[job.client];
                let local = LocalData {
                    data: &data,
                    indices,
                    patch,
                    seed: job.seed,
                    device: &w.device,
                };
                let model = trainable.load(w.model.clone(), &job.params);
                let (params, loss, personal) = match procedure.as_ref() {
                    None => {
                        let (m, loss) = train_local(model, &local, &config);
                        (trainable.extract(&m), loss, None)
                    }
                    Some(PersonalStep::Maml { inner_lr }) => {
                        let (m, loss) = train_maml(model, &local, &config, *inner_lr);
                        (trainable.extract(&m), loss, None)
                    }
                    Some(PersonalStep::Moreau {
                        lambda,
                        inner_steps,
                    }) => {
                        // The personal model starts from the last one, or from the global.
                        let start = job.personal.as_deref().unwrap_or(&job.params);
                        let personal = trainable.load(w.model.clone(), start);
                        let (update, personal, loss) = train_moreau(
                            &job.params,
                            personal,
                            &trainable,
                            &local,
                            &config,
                            *lambda,
                            *inner_steps,
                        );
                        (update, loss, Some(trainable.extract(&personal)))
                    }
                };
                done.complete(TrainOutcome {
                    params,
                    num_samples: indices.len() as u64,
                    loss,
                    personal,
                });
            }),
        );
        pending
    }

    fn evaluate(&self, job: EvalJob) -> Pending<EvalOutcome> {
        let (done, pending) = Pending::channel();
        let n = self.test_data.len();
        let mut sources: Vec<Source> = (0..n)
            .step_by(EVAL_CHUNK)
            .map(|s| Source::Central(s, (s + EVAL_CHUNK).min(n)))
            .collect();
        sources.extend((0..self.partition.test.len()).map(Source::Client));
        let gather = Arc::new(Mutex::new(EvalGather {
            slots: vec![None; sources.len()],
            left: sources.len(),
            sources: sources.clone(),
            clients: self.partition.test.len(),
            done: Some(done),
        }));
        for (i, src) in sources.into_iter().enumerate() {
            let gather = gather.clone();
            let params = job.params.clone();
            let trainable = self.trainable.clone();
            let patch = self.patch;
            let personalize = self.personalize.clone();
            let (test_data, train_data) = (self.test_data.clone(), self.train_data.clone());
            let partition = self.partition.clone();
            let own = match src {
                Source::Client(c) => job.personal.get(c).cloned().flatten(),
                Source::Central(..) => None,
            };
            self.pool.submit(
                JobKind::Eval,
                Box::new(move |w| {
                    let model = trainable.load(w.model.clone(), &params);
                    let counts = match src {
                        Source::Central(s, e) => {
                            let idx: Vec<u32> = (s as u32..e as u32).collect();
                            let c = evaluate(&model, &test_data, &idx, patch, EVAL_BATCH);
                            (c, c)
                        }
                        Source::Client(c) => {
                            let test = &partition.test[c];
                            let global = evaluate(&model, &train_data, test, patch, EVAL_BATCH);
                            let personal = if let Some(own) = own {
                                // The client's own personal model, as its last job left it.
                                let mine = trainable.load(w.model.clone(), &own);
                                evaluate(&mine, &train_data, test, patch, EVAL_BATCH)
                            } else if let Some((steps, config)) = &personalize {
                                let local = LocalData {
                                    data: &train_data,
                                    indices: &partition.train[c],
                                    patch,
                                    seed: PERSONALIZE_SEED ^ c as u64,
                                    device: &w.device,
                                };
                                let (tuned, _) = fine_tune(model, &local, *steps, config);
                                evaluate(&tuned, &train_data, test, patch, EVAL_BATCH)
                            } else {
                                global
                            };
                            (global, personal)
                        }
                    };
                    gather.lock().expect("eval gather").put(i, counts);
                }),
            );
        }
        pending
    }
}

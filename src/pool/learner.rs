//! The engine's [`Learner`], backed by the pool and the Burn model: which jobs run where,
//! alone or batched; the training itself is the model's (see `crate::model::procedure`).
//!
//! One file because local and remote dispatch of the same three job kinds (alone, batched,
//! evaluated) share their store lookups; splitting them would split each job's path.

use std::sync::{Arc, Mutex};

use burn::tensor::Device;
use flotilla_actors::learner::{Completer, SlotOutcome};
use flotilla_actors::{
    ClientId, EvalJob, EvalOutcome, Learner, Pending, TrainJob, TrainOutcome, Work,
};

use super::Pool;
use super::codec::{decode_job, encode_answer};
use super::eval::Evaluator;
use super::job::{Answer, Job, JobKind, Key};
use super::key::JobKeys;
use super::reader::{PrefixCache, Reader};
use super::remote::{Compute, ComputeError, Remote};
use super::store::{JobStore, Keyed, deliver};
use crate::data::{Slot, TaskData};
use crate::model::{
    Adaptation, AdapterSpec, HeadSpec, Objective, PersonalStep, Personalization, SampleCost,
    TrainConfig, Trainable, Vit, train_group, train_slot,
};

/// Everything a [`PoolLearner`] needs.
pub(crate) struct LearnerSetup {
    /// The model every worker copies: frozen backbone, adapter and head.
    pub model: Vit,
    /// The adapter and head, and the number of clients.
    pub adaptation: Adaptation,
    /// The backbone's patch size.
    pub patch: usize,
    /// Local training's hyperparameters.
    pub train: TrainConfig,
    /// The images, tasks and every client's slots.
    pub data: Arc<TaskData>,
    /// `None` evaluates the served model as is.
    pub personalize: Option<Personalization>,
    /// Whether the personalization's steps cost device time (after every job).
    pub personalize_on_device: bool,
    /// The clients' personalized-FL procedure (PersA-FL), or plain local training.
    pub procedure: Option<PersonalStep>,
    /// Where the workers run.
    pub devices: Vec<Device>,
    /// Most clients' jobs trained in one batch; 1 trains each alone.
    pub batch_clients: usize,
    /// Memory for cached frozen-prefix activations, in bytes (0: no cache).
    pub cache_budget: u64,
    /// Where finished jobs are kept, and taken from instead of recomputed.
    pub store: Option<Stored>,
    /// Send jobs to remote workers instead of training here (the workers above are then
    /// not started).
    pub remote: Option<Remote>,
}

/// A job store and the digest of what every job of this run shares.
pub(crate) struct Stored {
    /// The store.
    pub store: Arc<JobStore>,
    /// The run's context: see [`super::Digest`].
    pub context: Key,
}

/// A training job waiting to run in a batch, with its key when results are stored.
type Held = (TrainJob, Completer<TrainOutcome>, Option<Key>);

/// Trains and evaluates on the pool.
pub struct PoolLearner {
    pool: Pool,
    initial: Vec<f32>,
    adaptation: Arc<Adaptation>,
    trainable: Trainable,
    reader: Reader,
    train: Arc<TrainConfig>,
    procedure: Arc<Option<PersonalStep>>,
    evaluator: Evaluator,
    /// Clients per batch, when jobs are batched.
    batch: Option<usize>,
    held: Mutex<Vec<Held>>,
    stored: Option<Keyed>,
    /// What one training sample costs a device.
    cost: SampleCost,
    /// The personalization's steps and what one of their samples costs, when they run on
    /// the device.
    on_device: Option<(Personalization, SampleCost)>,
    /// Where jobs go when they are not trained here.
    remote: Option<Arc<Remote>>,
}

impl PoolLearner {
    /// Sets up the prefix cache (filled as jobs need it) and starts the pool's workers.
    pub(crate) fn new(setup: LearnerSetup) -> Self {
        let trainable = setup.adaptation.trainable();
        let initial = trainable.extract(&setup.model);
        let cost = SampleCost::of(&setup.model, &setup.adaptation);
        let on_device = setup
            .personalize
            .clone()
            .filter(|_| setup.personalize_on_device)
            .map(|p| {
                let tuned = if p.head_only {
                    SampleCost::of(
                        &setup.model,
                        &Adaptation {
                            adapter: AdapterSpec::HeadOnly,
                            head: HeadSpec::Linear,
                            clients: setup.adaptation.clients,
                        },
                    )
                } else {
                    cost
                };
                (p, tuned)
            });
        let remote = setup.remote.map(Arc::new);
        // The workers keep the prefix when jobs train elsewhere.
        let cache = (remote.is_none())
            .then(|| setup.adaptation.frozen_prefix())
            .flatten()
            .and_then(|depth| {
                PrefixCache::new(
                    &setup.model,
                    depth,
                    &setup.data,
                    setup.patch,
                    setup.cache_budget,
                )
            })
            .map(Arc::new);
        let batch =
            (setup.batch_clients > 1 && setup.procedure.is_none() && setup.adaptation.groups())
                .then_some(setup.batch_clients);
        let reader = Reader {
            data: setup.data,
            cache,
            patch: setup.patch,
        };
        let train = Arc::new(setup.train);
        let stored = setup.store.map(|s| Keyed {
            store: s.store,
            keys: JobKeys::new(s.context),
        });
        let evaluator = Evaluator {
            trainable: trainable.clone(),
            personalize: setup.personalize.map(|p| (p, train.clone())),
            naive_bayes: setup.adaptation.head.naive_bayes(),
            reader: reader.clone(),
            stored: stored.clone(),
        };
        let devices = if remote.is_some() {
            &[][..]
        } else {
            &setup.devices[..]
        };
        Self {
            pool: Pool::new(devices, &setup.model),
            initial,
            adaptation: Arc::new(setup.adaptation),
            trainable,
            reader,
            train,
            procedure: Arc::new(setup.procedure),
            evaluator,
            batch,
            held: Mutex::new(Vec::new()),
            stored,
            cost,
            on_device,
            remote,
        }
    }

    /// Why the remote pool stopped answering, if jobs go to one and it did.
    pub(crate) fn remote_failure(&self) -> Option<super::remote::RemoteFailure> {
        self.remote.as_ref().and_then(|r| r.failure())
    }

    /// Has the remote pool, if jobs go to one, say through `notice` that it waits for
    /// workers (see [`Remote::set_notice`]).
    pub(crate) fn set_remote_notice(&self, notice: crate::notice::Notice) {
        if let Some(r) = &self.remote {
            r.set_notice(notice);
        }
    }

    /// Computes a remote job on this learner's own workers, as a `flotilla worker` does;
    /// `None` if a worker failed.
    pub(crate) fn answer(&self, job: Job) -> Option<Answer> {
        match job {
            Job::Train(job) => self.train(job).wait().ok().map(Answer::Train),
            Job::Group(jobs) => {
                let (held, pending): (Vec<Held>, Vec<_>) = jobs
                    .into_iter()
                    .map(|job| {
                        let (done, pending) = Pending::channel();
                        ((job, done, None), pending)
                    })
                    .unzip();
                self.submit_group(held);
                pending
                    .into_iter()
                    .map(|p| p.wait().ok())
                    .collect::<Option<_>>()
                    .map(Answer::Group)
            }
            Job::Eval(chunks) => self.evaluator.answer(&self.pool, chunks).map(Answer::Eval),
        }
    }

    /// The prefix cache here, if any: what it holds and how far it is filled.
    pub(crate) fn cache(&self) -> Option<&PrefixCache> {
        self.reader.cache.as_deref()
    }

    /// Jobs taken from the store and jobs computed, when results are stored.
    pub(crate) fn taken_and_computed(&self) -> Option<(u64, u64)> {
        self.stored.as_ref().map(|s| s.store.taken_and_computed())
    }

    /// Trains held jobs in one batch on a worker, or takes the batch's results from the
    /// store when it holds every one of them.
    fn submit_group(&self, group: Vec<Held>) {
        let stored = self.stored.as_ref().map(|s| {
            let jobs: Vec<Key> = group.iter().filter_map(|h| h.2).collect();
            (s.store.clone(), s.keys.batch(&jobs))
        });
        if let Some((store, keys)) = &stored
            && keys.iter().all(|k| store.contains(k))
        {
            let found: Option<Vec<TrainOutcome>> = keys.iter().map(|k| store.train(k)).collect();
            if let Some(found) = found {
                for ((_, done, _), outcome) in group.into_iter().zip(found) {
                    done.complete(outcome);
                }
                return;
            }
        }
        if let Some(remote) = &self.remote {
            let (jobs, rest): (Vec<TrainJob>, Vec<_>) =
                group.into_iter().map(|(job, done, _)| (job, done)).unzip();
            remote.submit(
                JobKind::Train,
                Job::Group(jobs),
                Box::new(move |answer| {
                    let Answer::Group(outcomes) = answer else {
                        return false;
                    };
                    if outcomes.len() != rest.len() {
                        return false;
                    }
                    for (i, (done, outcome)) in rest.into_iter().zip(outcomes).enumerate() {
                        deliver(stored.as_ref().map(|(s, k)| (&**s, &k[i])), done, outcome);
                    }
                    true
                }),
            );
            return;
        }
        for (job, ..) in &group {
            self.reader.prefetch_training(&self.pool, job.client);
        }
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
                for (job, ..) in &group {
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
                for (i, (job, done, _)) in group.into_iter().enumerate() {
                    let slots = &data.slots[job.client];
                    let mine = trained.by_ref().take(slots.len());
                    let outcome = outcome(slots, mine, None);
                    deliver(stored.as_ref().map(|(s, k)| (&**s, &k[i])), done, outcome);
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

impl Compute for PoolLearner {
    fn compute(&self, job: &[u8]) -> Result<Vec<u8>, ComputeError> {
        let job = decode_job(job).ok_or(ComputeError::Unreadable)?;
        let answer = self.answer(job).ok_or(ComputeError::WorkerFailed)?;
        Ok(encode_answer(&answer))
    }
}

impl Learner for PoolLearner {
    fn initial_params(&self) -> Vec<f32> {
        self.initial.clone()
    }

    fn train_work(&self, client: ClientId) -> Work {
        let held: u64 = self.reader.data.slots[client]
            .iter()
            .map(|s| s.train.len() as u64)
            .sum();
        let samples = held * self.train.epochs as u64;
        // Moreau's inner steps pass over every batch that many times.
        let passes = match self.procedure.as_ref() {
            Some(PersonalStep::Moreau { inner_steps, .. }) => *inner_steps as u64,
            _ => 1,
        };
        // Personalizing after the job: its steps from the kept prefix; fine-tuning the head
        // alone first computes the served body's features of the samples it reads.
        let personalize = match &self.on_device {
            Some((p, tuned)) if held > 0 => {
                let read = (p.steps * self.train.batch_size) as u64;
                let features = if p.head_only {
                    read.min(held) * tuned.prefix
                } else {
                    0
                };
                read * tuned.cached() + features
            }
            _ => 0,
        };
        Work {
            samples,
            flops: samples * passes * self.cost.cached() + personalize,
            first_flops: held * self.cost.prefix,
            memory: self
                .cost
                .training_memory(self.train.batch_size, &self.train.optimizer),
        }
    }

    fn train(&self, job: TrainJob) -> Pending<TrainOutcome> {
        let key = self.stored.as_ref().map(|s| s.keys.train(&job));
        if let Some(size) = self.batch {
            let (done, pending) = Pending::channel();
            let mut held = self.held.lock().expect("held jobs");
            held.push((job, done, key));
            if held.len() >= size {
                let group = std::mem::take(&mut *held);
                drop(held);
                self.submit_group(group);
            }
            return pending;
        }
        let stored = self
            .stored
            .as_ref()
            .zip(key)
            .map(|(s, key)| (s.store.clone(), s.keys.alone(&key)));
        if let Some((store, key)) = &stored
            && let Some(outcome) = store.train(key)
        {
            return Pending::ready(outcome);
        }
        let (done, pending) = Pending::channel();
        if let Some(remote) = &self.remote {
            remote.submit(
                JobKind::Train,
                Job::Train(job),
                Box::new(move |answer| {
                    let Answer::Train(outcome) = answer else {
                        return false;
                    };
                    deliver(stored.as_ref().map(|(s, k)| (&**s, k)), done, outcome);
                    true
                }),
            );
            return pending;
        }
        self.reader.prefetch_training(&self.pool, job.client);
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
                let slots = &reader.data.slots[job.client];
                for (s, (slot, start)) in slots.iter().zip(&job.params).enumerate() {
                    let local = reader.slot_data(slot, s, job.seed, &w.device, &objective);
                    let slot = train_slot(
                        (*procedure).as_ref(),
                        &w.model,
                        &trainable,
                        start,
                        job.personal.as_deref().map(Vec::as_slice),
                        &local,
                        &config,
                    );
                    personal = slot.personal.or(personal);
                    trained.push((slot.params, slot.loss));
                }
                let outcome = outcome(slots, trained, personal);
                deliver(stored.as_ref().map(|(s, k)| (&**s, k)), done, outcome);
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
        match &self.remote {
            Some(remote) => self.evaluator.submit_remote(remote, job),
            None => self.evaluator.submit(&self.pool, job),
        }
    }
}

//! What determines a pool job's result, reduced to a digest: the key it is stored under.
//!
//! A run's context (the flotilla version and backend, the model before training, the
//! data as laid out, the hyperparameters) is digested once; a job's key adds what the job
//! itself brings (its client, seed and the bits of every parameter vector). Two jobs with
//! the same key compute the same result, bit for bit, whichever run asks.

use std::collections::HashMap;

use flotilla_actors::{EvalJob, Params, TrainJob};
use sha2::{Digest as _, Sha256};

use super::job::Key;
use crate::data::TaskData;

/// Builds a digest from typed pieces; each piece is written with its length, so no two
/// different sequences of pieces digest alike.
#[derive(Clone, Default)]
pub(super) struct Digest(Sha256);

impl Digest {
    /// An empty digest.
    pub(super) fn new() -> Self {
        Self::default()
    }

    /// Adds bytes.
    pub(super) fn bytes(mut self, bytes: &[u8]) -> Self {
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
        self
    }

    /// Adds text.
    pub(super) fn text(self, text: &str) -> Self {
        self.bytes(text.as_bytes())
    }

    /// Adds a number.
    pub(super) fn u64(mut self, v: u64) -> Self {
        self.0.update(v.to_le_bytes());
        self
    }

    /// Adds the bits of every float.
    pub(super) fn floats(self, values: &[f32]) -> Self {
        self.float_iter(values.len(), values.iter().copied())
    }

    /// Adds the bits of `len` floats as they come: the same digest as [`Digest::floats`]
    /// of them collected.
    pub(super) fn float_iter(mut self, len: usize, values: impl Iterator<Item = f32>) -> Self {
        self.0.update((len as u64).to_le_bytes());
        let mut bytes = Vec::with_capacity(4096);
        for v in values {
            bytes.extend(v.to_bits().to_le_bytes());
            if bytes.len() == 4096 {
                self.0.update(&bytes);
                bytes.clear();
            }
        }
        self.0.update(&bytes);
        self
    }

    /// Adds indices.
    pub(super) fn indices(mut self, values: &[u32]) -> Self {
        self.0.update((values.len() as u64).to_le_bytes());
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.0.update(&bytes);
        self
    }

    /// The digest.
    pub(super) fn finish(self) -> Key {
        self.0.finalize().into()
    }
}

/// Everything every job of a run shares, for its context digest.
pub(crate) struct ContextParts<'a> {
    /// What built the run: version, backend, device kind, architecture.
    pub identity: &'a str,
    /// The backbone's shape, as text.
    pub vit: &'a str,
    /// The checkpoint's bytes (empty without one).
    pub weights: &'a [u8],
    /// The scenario's seed (the model's initialisation).
    pub seed: u64,
    /// Adapter, training, personalization and procedure settings, as text.
    pub settings: &'a str,
    /// The data as laid out.
    pub data: &'a TaskData,
}

/// The digest of what determines every job's result besides the job itself: the build,
/// the model before training, the hyperparameters and the data as laid out (the images
/// after any domain shift, every client's split).
pub(crate) fn context_digest(p: ContextParts<'_>) -> Key {
    let mut d = Digest::new()
        .text(p.identity)
        .text(p.vit)
        .bytes(p.weights)
        .u64(p.seed)
        .text(p.settings);
    for set in [&p.data.train, &p.data.test] {
        d = d
            .float_iter(set.pixels.len(), set.pixels.values())
            .bytes(&set.labels);
    }
    for test in &p.data.task_test {
        d = d.indices(test);
    }
    for slots in &p.data.slots {
        d = d.u64(slots.len() as u64);
        for slot in slots {
            d = d
                .u64(slot.task.map_or(u64::MAX, |t| t as u64))
                .indices(&slot.train)
                .indices(&slot.test);
        }
    }
    d.finish()
}

/// The keys of one run's jobs.
#[derive(Clone)]
pub(super) struct JobKeys {
    context: Key,
}

impl JobKeys {
    pub(super) fn new(context: Key) -> Self {
        Self { context }
    }

    /// What a training job brings: its client, seed and starting vectors.
    pub(super) fn train(&self, job: &TrainJob) -> Key {
        let mut d = Digest::new()
            .bytes(&self.context)
            .text("train")
            .u64(job.client as u64)
            .u64(job.seed)
            .u64(job.params.len() as u64);
        for p in &job.params {
            d = d.floats(p);
        }
        match &job.personal {
            Some(p) => d.u64(1).floats(p),
            None => d.u64(0),
        }
        .finish()
    }

    /// A job trained alone.
    pub(super) fn alone(&self, job: &Key) -> Key {
        Digest::new().text("alone").bytes(job).finish()
    }

    /// Each job of a batch trained together: a batch's sums round differently from a
    /// lone job's, so every member's key names the whole batch and its place in it.
    pub(super) fn batch(&self, jobs: &[Key]) -> Vec<Key> {
        let mut batch = Digest::new().text("batch").u64(jobs.len() as u64);
        for k in jobs {
            batch = batch.bytes(k);
        }
        let batch = batch.finish();
        (0..jobs.len())
            .map(|i| Digest::new().bytes(&batch).u64(i as u64).finish())
            .collect()
    }

    /// An evaluation: every model it evaluates, where. A model shared by many clients
    /// (the usual case) is digested once.
    pub(super) fn eval(&self, job: &EvalJob) -> Key {
        let mut seen: HashMap<*const Vec<f32>, Key> = HashMap::new();
        let mut model = |p: &Params| {
            *seen
                .entry(std::sync::Arc::as_ptr(p))
                .or_insert_with(|| Digest::new().floats(p).finish())
        };
        let mut d = Digest::new()
            .bytes(&self.context)
            .text("eval")
            .u64(job.tasks.len() as u64);
        for p in &job.tasks {
            d = d.bytes(&model(p));
        }
        d = d.u64(job.slots.len() as u64);
        for slots in &job.slots {
            d = d.u64(slots.len() as u64);
            for p in slots {
                d = d.bytes(&model(p));
            }
        }
        d = d.u64(job.personal.len() as u64);
        for p in &job.personal {
            d = match p {
                Some(p) => d.u64(1).bytes(&model(p)),
                None => d.u64(0),
            };
        }
        d.finish()
    }
}

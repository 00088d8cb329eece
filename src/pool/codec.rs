//! Pool jobs and their results as bytes: little-endian, every float by its bits, so
//! that a result comes back from the store, and a job or result from a remote worker,
//! exactly as it was computed.

use std::collections::HashMap;
use std::sync::Arc;

use flotilla_actors::learner::SlotOutcome;
use flotilla_actors::{EvalOutcome, Params, TrainJob, TrainOutcome};

use super::job::{Answer, EvalChunk, Job, Source};
use crate::model::EvalCounts;

/// Little-endian writer of a payload.
#[derive(Default)]
struct Out(Vec<u8>);

impl Out {
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f64(&mut self, v: f64) {
        self.u64(v.to_bits());
    }
    fn floats(&mut self, v: &[f32]) {
        self.u64(v.len() as u64);
        for x in v {
            self.0.extend_from_slice(&x.to_bits().to_le_bytes());
        }
    }
    fn maybe(&mut self, v: Option<f64>) {
        self.0.push(u8::from(v.is_some()));
        self.f64(v.unwrap_or(0.0));
    }
}

/// Reader of a payload; every read checks its bounds.
struct In<'a>(&'a [u8]);

impl In<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn f64(&mut self) -> Option<f64> {
        Some(f64::from_bits(self.u64()?))
    }
    fn len(&mut self) -> Option<usize> {
        usize::try_from(self.u64()?)
            .ok()
            .filter(|&n| n <= self.0.len())
    }
    fn floats(&mut self) -> Option<Vec<f32>> {
        let n = self.len()?;
        let bytes = self.take(n.checked_mul(4)?)?;
        Some(
            bytes
                .chunks_exact(4)
                .map(|b| f32::from_bits(u32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                .collect(),
        )
    }
    fn index(&mut self) -> Option<usize> {
        usize::try_from(self.u64()?).ok()
    }
    fn flag(&mut self) -> Option<bool> {
        Some(self.take(1)?[0] == 1)
    }
    fn maybe(&mut self) -> Option<Option<f64>> {
        let some = self.flag()?;
        let v = self.f64()?;
        Some(some.then_some(v))
    }
}

pub(crate) fn encode_train(o: &TrainOutcome) -> Vec<u8> {
    let mut out = Out::default();
    out.u64(o.slots.len() as u64);
    for slot in &o.slots {
        out.u64(slot.num_samples);
        out.floats(&slot.params);
    }
    out.f64(o.loss);
    out.0.push(u8::from(o.personal.is_some()));
    out.floats(o.personal.as_deref().unwrap_or(&[]));
    out.0
}

pub(crate) fn decode_train(bytes: &[u8]) -> Option<TrainOutcome> {
    let mut r = In(bytes);
    let slots = (0..r.len()?)
        .map(|_| {
            Some(SlotOutcome {
                num_samples: r.u64()?,
                params: r.floats()?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    let loss = r.f64()?;
    let has_personal = r.flag()?;
    let personal = r.floats()?;
    Some(TrainOutcome {
        slots,
        loss,
        personal: has_personal.then_some(personal),
    })
}

pub(crate) fn encode_eval(o: &EvalOutcome) -> Vec<u8> {
    let mut out = Out::default();
    out.f64(o.global_accuracy);
    out.f64(o.global_loss);
    out.u64(o.task_accuracy.len() as u64);
    o.task_accuracy.iter().for_each(|&a| out.f64(a));
    out.u64(o.client_accuracy.len() as u64);
    o.client_accuracy.iter().for_each(|&a| out.maybe(a));
    out.u64(o.personalized_accuracy.len() as u64);
    o.personalized_accuracy.iter().for_each(|&a| out.maybe(a));
    out.0
}

pub(crate) fn decode_eval(bytes: &[u8]) -> Option<EvalOutcome> {
    let mut r = In(bytes);
    let global_accuracy = r.f64()?;
    let global_loss = r.f64()?;
    let task_accuracy = (0..r.len()?).map(|_| r.f64()).collect::<Option<_>>()?;
    let client_accuracy = (0..r.len()?).map(|_| r.maybe()).collect::<Option<_>>()?;
    let personalized_accuracy = (0..r.len()?).map(|_| r.maybe()).collect::<Option<_>>()?;
    Some(EvalOutcome {
        global_accuracy,
        global_loss,
        task_accuracy,
        client_accuracy,
        personalized_accuracy,
    })
}

const TRAIN: u8 = 1;
const GROUP: u8 = 2;
const EVAL: u8 = 3;
/// An evaluation chunk's source: a task's central test images, or a slot's split.
const CENTRAL: u8 = 0;
const SLOT: u8 = 1;

/// Writes the vectors of a job once each, however many places share them, and the
/// places as indices into that table.
#[derive(Default)]
struct Table {
    index: HashMap<*const Vec<f32>, u64>,
    vectors: Vec<Params>,
}

impl Table {
    fn of(&mut self, p: &Params) -> u64 {
        let next = self.vectors.len() as u64;
        *self.index.entry(Arc::as_ptr(p)).or_insert_with(|| {
            self.vectors.push(p.clone());
            next
        })
    }
}

fn write_train(out: &mut Out, job: &TrainJob) {
    out.u64(job.client as u64);
    out.u64(job.seed);
    out.u64(job.params.len() as u64);
    job.params.iter().for_each(|p| out.floats(p));
    out.0.push(u8::from(job.personal.is_some()));
    out.floats(job.personal.as_deref().map_or(&[], Vec::as_slice));
}

fn read_train(r: &mut In<'_>) -> Option<TrainJob> {
    let client = usize::try_from(r.u64()?).ok()?;
    let seed = r.u64()?;
    let params = (0..r.len()?)
        .map(|_| r.floats().map(Arc::new))
        .collect::<Option<_>>()?;
    let has_personal = r.flag()?;
    let personal = r.floats()?;
    Some(TrainJob {
        client,
        params,
        personal: has_personal.then(|| Arc::new(personal)),
        seed,
    })
}

/// A job as bytes; an evaluation's models are written once each.
pub(crate) fn encode_job(job: &Job) -> Vec<u8> {
    let mut out = Out::default();
    match job {
        Job::Train(job) => {
            out.0.push(TRAIN);
            write_train(&mut out, job);
        }
        Job::Group(jobs) => {
            out.0.push(GROUP);
            out.u64(jobs.len() as u64);
            jobs.iter().for_each(|j| write_train(&mut out, j));
        }
        Job::Eval(chunks) => {
            out.0.push(EVAL);
            let mut table = Table::default();
            let places: Vec<(u64, Option<u64>)> = chunks
                .iter()
                .map(|c| (table.of(&c.params), c.own.as_ref().map(|p| table.of(p))))
                .collect();
            out.u64(table.vectors.len() as u64);
            table.vectors.iter().for_each(|v| out.floats(v));
            out.u64(chunks.len() as u64);
            for (chunk, (params, own)) in chunks.iter().zip(places) {
                match chunk.source {
                    Source::Central(t, s, e) => {
                        out.0.push(CENTRAL);
                        [t, s, e].iter().for_each(|&v| out.u64(v as u64));
                    }
                    Source::Slot(c, s) => {
                        out.0.push(SLOT);
                        [c, s].iter().for_each(|&v| out.u64(v as u64));
                    }
                }
                out.u64(params);
                out.0.push(u8::from(own.is_some()));
                out.u64(own.unwrap_or(0));
            }
        }
    }
    out.0
}

/// A job from bytes; `None` when they are not one whole job.
pub(crate) fn decode_job(bytes: &[u8]) -> Option<Job> {
    let mut r = In(bytes);
    let job = match r.take(1)?[0] {
        TRAIN => Job::Train(read_train(&mut r)?),
        GROUP => Job::Group(
            (0..r.len()?)
                .map(|_| read_train(&mut r))
                .collect::<Option<_>>()?,
        ),
        EVAL => {
            let vectors: Vec<Params> = (0..r.len()?)
                .map(|_| r.floats().map(Arc::new))
                .collect::<Option<_>>()?;
            let vector = |r: &mut In<'_>| {
                let i = usize::try_from(r.u64()?).ok()?;
                vectors.get(i).cloned()
            };
            let chunks = (0..r.len()?)
                .map(|_| {
                    let source = match r.take(1)?[0] {
                        CENTRAL => Source::Central(r.index()?, r.index()?, r.index()?),
                        SLOT => Source::Slot(r.index()?, r.index()?),
                        _ => return None,
                    };
                    let params = vector(&mut r)?;
                    let has_own = r.flag()?;
                    let own = vector(&mut r);
                    Some(EvalChunk {
                        source,
                        params,
                        own: if has_own { Some(own?) } else { None },
                    })
                })
                .collect::<Option<_>>()?;
            Job::Eval(chunks)
        }
        _ => return None,
    };
    r.0.is_empty().then_some(job)
}

/// An answer as bytes.
pub(crate) fn encode_answer(answer: &Answer) -> Vec<u8> {
    let mut out = Out::default();
    let mut whole = |tag: u8, body: Vec<u8>| {
        out.0.push(tag);
        out.u64(body.len() as u64);
        out.0.extend(body);
    };
    match answer {
        Answer::Train(o) => whole(TRAIN, encode_train(o)),
        Answer::Group(os) => {
            let mut body = Out::default();
            body.u64(os.len() as u64);
            for o in os {
                let one = encode_train(o);
                body.u64(one.len() as u64);
                body.0.extend(one);
            }
            whole(GROUP, body.0)
        }
        Answer::Eval(counts) => {
            let mut body = Out::default();
            body.u64(counts.len() as u64);
            for c in counts
                .iter()
                .flat_map(|(served, personal)| [served, personal])
            {
                body.u64(c.correct);
                body.u64(c.total);
                body.f64(c.loss_sum);
            }
            whole(EVAL, body.0)
        }
    }
    out.0
}

/// An answer from bytes; `None` when they are not one whole answer.
pub(crate) fn decode_answer(bytes: &[u8]) -> Option<Answer> {
    let mut r = In(bytes);
    let tag = r.take(1)?[0];
    let n = r.len()?;
    let body = r.take(n)?;
    if bytes.len() != 1 + 8 + n {
        return None;
    }
    match tag {
        TRAIN => decode_train(body).map(Answer::Train),
        GROUP => {
            let mut b = In(body);
            let outcomes = (0..b.len()?)
                .map(|_| {
                    let n = b.len()?;
                    decode_train(b.take(n)?)
                })
                .collect::<Option<_>>()?;
            b.0.is_empty().then_some(Answer::Group(outcomes))
        }
        EVAL => {
            let mut b = In(body);
            let n = b.index()?;
            let mut counts = || {
                Some(EvalCounts {
                    correct: b.u64()?,
                    total: b.u64()?,
                    loss_sum: b.f64()?,
                })
            };
            let mut all = Vec::new();
            for _ in 0..n {
                all.push((counts()?, counts()?));
            }
            b.0.is_empty().then_some(Answer::Eval(all))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;

//! A job result as bytes: little-endian, every float by its bits, so that a result
//! comes back from the store exactly as it was computed.

use flotilla_actors::learner::SlotOutcome;
use flotilla_actors::{EvalOutcome, TrainOutcome};

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
    fn flag(&mut self) -> Option<bool> {
        Some(self.take(1)?[0] == 1)
    }
    fn maybe(&mut self) -> Option<Option<f64>> {
        let some = self.flag()?;
        let v = self.f64()?;
        Some(some.then_some(v))
    }
}

pub(super) fn encode_train(o: &TrainOutcome) -> Vec<u8> {
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

pub(super) fn decode_train(bytes: &[u8]) -> Option<TrainOutcome> {
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

pub(super) fn encode_eval(o: &EvalOutcome) -> Vec<u8> {
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

pub(super) fn decode_eval(bytes: &[u8]) -> Option<EvalOutcome> {
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

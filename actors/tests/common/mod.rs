//! What the engine's integration tests share: a learner whose results show what the
//! server aggregated, and constant clients and links.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use flotilla_actors::device::{Availability, DeviceSpec};
use flotilla_actors::learner::SlotOutcome;
use flotilla_actors::net::{LinkSpec, LinkValue};
use flotilla_actors::{
    ClientId, ClientSpec, Dist, EvalJob, EvalOutcome, Learner, Pending, SimTime, TrainJob,
    TrainOutcome,
};
use flotilla_actors::{SimConfig, SimOutcome, SpeedUnit, Work, simulate};

/// Parameters per model, so an update is 4000 bytes in f32 and 2000 in f16.
pub(crate) const P: usize = 1000;
/// Samples per local-training job.
pub(crate) const WORK: u64 = 300;

/// Client `c`'s training adds `c + 1` to every parameter and reports `10 + c` samples; the
/// "accuracy" is the first parameter, so the timeline shows what the server aggregated.
pub(crate) struct Mock {
    pub(crate) clients: usize,
}

impl Learner for Mock {
    fn initial_params(&self) -> Vec<f32> {
        vec![0.0; P]
    }
    fn train_work(&self, _: ClientId) -> Work {
        Work::samples(WORK)
    }
    fn train(&self, job: TrainJob) -> Pending<TrainOutcome> {
        Pending::ready(TrainOutcome {
            slots: vec![SlotOutcome {
                params: job.params[0]
                    .iter()
                    .map(|v| v + (job.client + 1) as f32)
                    .collect(),
                num_samples: 10 + job.client as u64,
            }],
            loss: 0.0,
            personal: None,
        })
    }
    fn evaluate(&self, job: EvalJob) -> Pending<EvalOutcome> {
        let value = job.tasks[0][0] as f64;
        Pending::ready(EvalOutcome {
            global_accuracy: value,
            global_loss: 0.0,
            task_accuracy: vec![value],
            client_accuracy: vec![Some(value); self.clients],
            personalized_accuracy: vec![Some(value); self.clients],
        })
    }
}

pub(crate) fn link(latency_s: f64, bps: f64) -> LinkSpec {
    LinkSpec {
        latency: LinkValue::Draw(Dist::Const(latency_s)),
        bandwidth: LinkValue::Draw(Dist::Const(bps)),
        loss: 0.0,
        timeout: SimTime(1_000_000),
        retries: 3,
    }
}

pub(crate) fn client(speed: f64, up: LinkSpec, down: LinkSpec) -> ClientSpec {
    ClientSpec {
        class: "c".into(),
        device: DeviceSpec {
            speed: Dist::Const(speed),
            unit: SpeedUnit::Samples,
            dropout: 0.0,
            memory: None,
        },
        availability: Availability::Always,
        uplink: up,
        downlink: down,
        slots: vec![Some(0)],
    }
}

/// Runs `config` with `learner` to its end, never interrupted.
pub(crate) fn run_to_end(config: SimConfig, learner: Arc<dyn Learner>) -> SimOutcome {
    simulate(
        config,
        learner,
        Arc::new(AtomicBool::new(false)),
        Box::new(()),
    )
    .unwrap()
}

//! The client actor: receives the model, trains locally through the learner, uploads.

use std::sync::{Arc, Mutex};

use actix::{Actor, Context, Handler};
use rand::Rng;

use crate::device::{DeviceSpec, MIN_SPEED, compute_time};
use crate::event::{Deliver, Effects, Event, Out};
use crate::learner::{ClientId, Learner, Pending, TrainJob, TrainOutcome};
use crate::message::{Message, ModelMsg, UpdateMsg};
use crate::net::{Direction, LinkEvent, LinkId};
use crate::payload::WireDtype;
use crate::record::Records;
use crate::rng::{ActorKey, SimRng, stream};

/// Events a client handles.
#[derive(Debug)]
pub enum ClientEvent {
    /// The global model arrived over the downlink.
    ModelArrived(ModelMsg),
    /// Local training finished at this simulated time.
    TrainDone {
        task: u64,
        round: u32,
        base_version: u64,
        outcome: Pending<TrainOutcome>,
    },
    /// The upload was given up after its last retry.
    UploadFailed,
}

/// A client: its device, its RNG streams and its current task.
pub struct ClientActor {
    id: ClientId,
    speed: f64,
    dropout: f64,
    work: u64,
    wire: WireDtype,
    learner: Arc<dyn Learner>,
    records: Arc<Mutex<Records>>,
    dropout_rng: SimRng,
    job_seeds: SimRng,
    /// Identifies the current task; a result for an older one is stale.
    task: u64,
    /// Whether a training job is under way.
    busy: bool,
}

impl ClientActor {
    /// A client whose speed is drawn from its class's distribution with its own stream.
    pub fn new(
        id: ClientId,
        seed: u64,
        device: &DeviceSpec,
        wire: WireDtype,
        learner: Arc<dyn Learner>,
        records: Arc<Mutex<Records>>,
    ) -> Self {
        let speed = device.speed.sample(
            &mut stream(seed, ActorKey::Client(id), "speed"),
            MIN_SPEED,
            f64::MAX,
        );
        records.lock().expect("records lock").clients[id].speed = speed;
        Self {
            id,
            speed,
            dropout: device.dropout,
            work: learner.train_work(id),
            wire,
            learner,
            records,
            dropout_rng: stream(seed, ActorKey::Client(id), "dropout"),
            job_seeds: stream(seed, ActorKey::Client(id), "job-seed"),
            task: 0,
            busy: false,
        }
    }

    fn handle(&mut self, out: &mut Out, event: ClientEvent) {
        match event {
            ClientEvent::ModelArrived(model) => self.start_training(out, model),
            ClientEvent::TrainDone {
                task,
                round,
                base_version,
                outcome,
            } => {
                if task != self.task {
                    return;
                }
                self.busy = false;
                let outcome = outcome
                    .into_ready()
                    .expect("the clock resolves results before dispatch");
                let encoded = self.wire.transmit(&outcome.params);
                self.records.lock().expect("records lock").clients[self.id].updates_sent += 1;
                let update = UpdateMsg {
                    client: self.id,
                    round,
                    base_version,
                    params: encoded.values,
                    num_samples: outcome.num_samples,
                    loss: outcome.loss,
                    bytes: encoded.bytes,
                };
                let link = LinkId {
                    client: self.id,
                    dir: Direction::Up,
                };
                out.now(Event::Link(link, LinkEvent::Send(Message::Update(update))));
            }
            ClientEvent::UploadFailed => {}
        }
    }

    fn start_training(&mut self, out: &mut Out, model: ModelMsg) {
        let mut records = self.records.lock().expect("records lock");
        let stats = &mut records.clients[self.id];
        if self.busy {
            stats.abandoned += 1;
        }
        self.task += 1;
        // Draw both whatever happens, so the streams stay aligned across scenarios.
        let drops = self.dropout_rng.random::<f64>() < self.dropout;
        let seed = self.job_seeds.random::<u64>();
        let duration = compute_time(self.work, self.speed);
        if drops {
            self.busy = false;
            stats.dropouts += 1;
            records.dropouts += 1;
            return;
        }
        self.busy = true;
        stats.trained += 1;
        stats.compute_seconds += duration.as_secs_f64();
        drop(records);
        let outcome = self.learner.train(TrainJob {
            client: self.id,
            params: model.params,
            seed,
        });
        out.after(
            duration,
            Event::Client(
                self.id,
                ClientEvent::TrainDone {
                    task: self.task,
                    round: model.round,
                    base_version: model.version,
                    outcome,
                },
            ),
        );
    }
}

impl Actor for ClientActor {
    type Context = Context<Self>;
}

impl Handler<Deliver<ClientEvent>> for ClientActor {
    type Result = Effects;
    fn handle(&mut self, msg: Deliver<ClientEvent>, _: &mut Context<Self>) -> Effects {
        let mut out = Out::new(msg.now);
        ClientActor::handle(self, &mut out, msg.event);
        out.into_effects()
    }
}

//! The client actor: receives the model, trains locally through the learner, uploads.

use std::sync::{Arc, Mutex};

use rand::Rng;

use crate::device::{Availability, AvailabilityProcess, DeviceSpec, MIN_SPEED, compute_time};
use crate::event::{Event, Out, deliver_to};
use crate::learner::Params;
use crate::learner::{ClientId, Learner, Pending, TrainJob, TrainOutcome};
use crate::message::{AdapterUpdate, Message, ModelMsg, UpdateMsg};
use crate::net::{Direction, LinkEvent, LinkId};
use crate::record::{ActivityRecord, AvailabilityRecord, Records};
use crate::wire::{Encoder, Wire};

/// Every client's personal model, where it has one.
pub(crate) type PersonalModels = Arc<Mutex<Vec<Option<crate::learner::Params>>>>;
use crate::rng::{ActorKey, SimRng, stream};
use crate::server::ServerEvent;
use crate::time::SimTime;

/// Events a client handles.
#[derive(Debug)]
pub(crate) enum ClientEvent {
    /// The server chose this client and started sending it the model.
    Selected,
    /// The global model arrived over the downlink.
    ModelArrived(ModelMsg),
    /// Local training finished at this simulated time.
    TrainDone {
        task: u64,
        round: u32,
        base_version: u64,
        outcome: Pending<TrainOutcome>,
    },
    /// A transfer to or from this client ended: delivered, or given up after its retries.
    TransferEnded { dir: Direction, delivered: bool },
    /// The device goes offline or comes back online.
    Availability,
}

/// What a client is doing, for the clients-by-state gauge and the activity records.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientState {
    /// Online, working for nobody.
    Idle,
    /// Receiving the server's model.
    Downloading,
    /// Training locally.
    Training,
    /// Sending its update.
    Uploading,
    /// Not connected: it can do nothing until it comes back.
    Offline,
}

impl ClientState {
    const ALL: [ClientState; 5] = [
        ClientState::Idle,
        ClientState::Downloading,
        ClientState::Training,
        ClientState::Uploading,
        ClientState::Offline,
    ];

    /// The state as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientState::Idle => "idle",
            ClientState::Downloading => "downloading",
            ClientState::Training => "training",
            ClientState::Uploading => "uploading",
            ClientState::Offline => "offline",
        }
    }
}

/// A client's metric handles, registered once.
struct ClientMetrics {
    states: [metrics::Gauge; 5],
    compute_seconds: metrics::Histogram,
    dropouts: metrics::Counter,
}

/// A client: its device, its RNG streams and its current task.
pub(crate) struct ClientActor {
    id: ClientId,
    speed: f64,
    dropout: f64,
    work: u64,
    wire: Encoder,
    /// The models of the current job, as received: what updates are encoded against.
    received: Vec<Params>,
    learner: Arc<dyn Learner>,
    records: Arc<Mutex<Records>>,
    dropout_rng: SimRng,
    job_seeds: SimRng,
    /// Identifies the current task; a result for an older one is stale.
    task: u64,
    state: ClientState,
    availability: AvailabilityProcess,
    availability_rng: SimRng,
    /// When availability first changes, for the clock's initial events.
    first_change: Option<SimTime>,
    /// Personal state the learner keeps across this client's jobs (shared with the server
    /// for evaluation only: it never crosses a link).
    personal: PersonalModels,
    tracked: bool,
    metrics: ClientMetrics,
}

/// A client's fixed description.
pub(crate) struct ClientSetup<'a> {
    pub id: ClientId,
    pub seed: u64,
    pub class: &'a str,
    pub device: &'a DeviceSpec,
    pub availability: &'a Availability,
    pub wire: &'a Wire,
    pub personal: PersonalModels,
    /// Whether to record every change of the client's state (for timelines).
    pub tracked: bool,
}

impl ClientActor {
    /// A client whose speed is drawn from its class's distribution with its own stream.
    pub(crate) fn new(
        setup: ClientSetup<'_>,
        learner: Arc<dyn Learner>,
        records: Arc<Mutex<Records>>,
    ) -> Self {
        let ClientSetup {
            id,
            seed,
            class,
            device,
            availability,
            wire,
            personal,
            tracked,
        } = setup;
        let mut availability_rng = stream(seed, ActorKey::Client(id), "availability");
        let (availability, first_change) =
            AvailabilityProcess::start(availability.clone(), &mut availability_rng);
        let speed = device.speed.sample(
            &mut stream(seed, ActorKey::Client(id), "speed"),
            MIN_SPEED,
            f64::MAX,
        );
        records.lock().expect("records lock").clients[id].speed = speed;
        let class = class.to_string();
        let metrics = ClientMetrics {
            states: ClientState::ALL
                .map(|s| metrics::gauge!(crate::metrics::CLIENTS, "state" => s.as_str())),
            compute_seconds: metrics::histogram!(crate::metrics::COMPUTE_SECONDS, "class" => class.clone()),
            dropouts: metrics::counter!(crate::metrics::DROPOUTS, "class" => class),
        };
        let state = if availability.online() {
            ClientState::Idle
        } else {
            ClientState::Offline
        };
        metrics.states[state as usize].increment(1.0);
        if tracked {
            records
                .lock()
                .expect("records lock")
                .activity
                .push(ActivityRecord {
                    sim_seconds: 0.0,
                    client: id,
                    state,
                });
        }
        if first_change.is_some() || !availability.online() {
            records
                .lock()
                .expect("records lock")
                .availability
                .push(AvailabilityRecord {
                    sim_seconds: 0.0,
                    client: id,
                    online: availability.online(),
                });
        }
        Self {
            id,
            speed,
            dropout: device.dropout,
            work: learner.train_work(id),
            wire: Encoder::new(
                wire.up,
                wire.layout.clone(),
                stream(seed, ActorKey::Client(id), "wire"),
            ),
            received: Vec::new(),
            learner,
            records,
            dropout_rng: stream(seed, ActorKey::Client(id), "dropout"),
            job_seeds: stream(seed, ActorKey::Client(id), "job-seed"),
            task: 0,
            state,
            availability,
            availability_rng,
            first_change,
            personal,
            tracked,
            metrics,
        }
    }

    /// Whether the device starts online.
    pub(crate) fn online(&self) -> bool {
        self.availability.online()
    }

    /// The first change of availability, to schedule before the run starts.
    pub(crate) fn first_event(&self) -> Option<(SimTime, Event)> {
        self.first_change
            .map(|t| (t, Event::Client(self.id, ClientEvent::Availability)))
    }

    fn flip_availability(&mut self, out: &mut Out) {
        let next = self
            .availability
            .flip(out.time(), &mut self.availability_rng);
        if let Some(at) = next {
            out.at(at, Event::Client(self.id, ClientEvent::Availability));
        }
        let online = self.availability.online();
        let mut records = self.records.lock().expect("records lock");
        records.availability.push(AvailabilityRecord {
            sim_seconds: out.time().as_secs_f64(),
            client: self.id,
            online,
        });
        if online {
            drop(records);
            self.set_state(out.time(), ClientState::Idle);
        } else {
            // Work in progress is lost with the connection.
            let lost = match self.state {
                ClientState::Training => {
                    self.task += 1;
                    true
                }
                ClientState::Downloading | ClientState::Uploading => {
                    for dir in [Direction::Down, Direction::Up] {
                        let link = LinkId {
                            client: self.id,
                            dir,
                        };
                        out.now(Event::Link(link, LinkEvent::Cancel));
                    }
                    true
                }
                ClientState::Idle | ClientState::Offline => false,
            };
            if lost {
                records.dropouts += 1;
                records.clients[self.id].dropouts += 1;
                self.metrics.dropouts.increment(1);
                out.now(Event::Server(ServerEvent::ClientFailed(self.id)));
            }
            drop(records);
            self.set_state(out.time(), ClientState::Offline);
        }
        out.now(Event::Server(ServerEvent::CheckIn {
            client: self.id,
            online,
        }));
    }

    fn set_state(&mut self, now: SimTime, state: ClientState) {
        if self.tracked && state != self.state {
            self.records
                .lock()
                .expect("records lock")
                .activity
                .push(ActivityRecord {
                    sim_seconds: now.as_secs_f64(),
                    client: self.id,
                    state,
                });
        }
        self.metrics.states[self.state as usize].decrement(1.0);
        self.metrics.states[state as usize].increment(1.0);
        self.state = state;
    }

    fn handle(&mut self, out: &mut Out, event: ClientEvent) {
        match event {
            ClientEvent::Selected => {
                if self.state == ClientState::Training {
                    // The server moved on: the job in progress will never be used.
                    self.records.lock().expect("records lock").clients[self.id].abandoned += 1;
                    self.task += 1;
                }
                self.set_state(out.time(), ClientState::Downloading);
            }
            ClientEvent::ModelArrived(model) => self.start_training(out, model),
            ClientEvent::Availability => self.flip_availability(out),
            ClientEvent::TrainDone {
                task,
                round,
                base_version,
                outcome,
            } => {
                if task != self.task {
                    return;
                }
                self.set_state(out.time(), ClientState::Uploading);
                let outcome = outcome
                    .into_ready()
                    .expect("the clock resolves results before dispatch");
                if let Some(personal) = outcome.personal {
                    self.personal.lock().expect("personal models")[self.id] =
                        Some(Arc::new(personal));
                }
                self.records.lock().expect("records lock").clients[self.id].updates_sent += 1;
                let mut bytes = 0;
                let adapters = outcome
                    .slots
                    .iter()
                    .zip(&self.received)
                    .enumerate()
                    .map(|(i, (slot, base))| {
                        let encoded = self.wire.encode_update(i, &slot.params, base);
                        bytes += encoded.bytes;
                        AdapterUpdate {
                            params: encoded.values,
                            num_samples: slot.num_samples,
                        }
                    })
                    .collect();
                let update = UpdateMsg {
                    client: self.id,
                    round,
                    base_version,
                    adapters,
                    bytes,
                };
                let link = LinkId {
                    client: self.id,
                    dir: Direction::Up,
                };
                out.now(Event::Link(link, LinkEvent::Send(Message::Update(update))));
            }
            ClientEvent::TransferEnded { dir, delivered } => {
                let ended = match dir {
                    Direction::Up => ClientState::Uploading,
                    Direction::Down => ClientState::Downloading,
                };
                // A delivered model starts training (handled on arrival); anything else
                // that ends the current transfer leaves the client idle.
                if self.state == ended && !(dir == Direction::Down && delivered) {
                    self.set_state(out.time(), ClientState::Idle);
                }
                if !delivered {
                    out.now(Event::Server(ServerEvent::ClientFailed(self.id)));
                }
            }
        }
    }

    fn start_training(&mut self, out: &mut Out, model: ModelMsg) {
        self.task += 1;
        // Draw both whatever happens, so the streams stay aligned across scenarios.
        let drops = self.dropout_rng.random::<f64>() < self.dropout;
        let seed = self.job_seeds.random::<u64>();
        let duration = compute_time(self.work, self.speed);
        let mut records = self.records.lock().expect("records lock");
        if drops {
            records.clients[self.id].dropouts += 1;
            records.dropouts += 1;
            drop(records);
            self.metrics.dropouts.increment(1);
            self.set_state(out.time(), ClientState::Idle);
            // The device leaves at a uniform point of the job; the server notices then.
            let left = self.dropout_rng.random::<f64>() * duration.as_secs_f64();
            out.after(
                SimTime::from_secs_ceil(left),
                Event::Server(ServerEvent::ClientFailed(self.id)),
            );
            return;
        }
        let stats = &mut records.clients[self.id];
        stats.trained += 1;
        stats.compute_seconds += duration.as_secs_f64();
        drop(records);
        self.metrics.compute_seconds.record(duration.as_secs_f64());
        self.set_state(out.time(), ClientState::Training);
        let personal = self.personal.lock().expect("personal models")[self.id].clone();
        self.received = model.params.clone();
        let outcome = self.learner.train(TrainJob {
            client: self.id,
            params: model.params,
            personal,
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

deliver_to!(ClientActor, ClientEvent);

//! The client actor: receives the model, trains locally through the learner, uploads.
//!
//! Clients are many, so each keeps only what is its own (its drawn speed, its job
//! counter, the positions of its random streams, the model of the job under way); what
//! its device class shares lives in its [`Profile`], and the clients with their links are
//! hosted by the [`Crowd`].
//!
//! One file on purpose: the handler is one state machine (idle, downloading, training,
//! uploading, offline) whose transitions read best side by side; the crowd that hosts
//! clients lives in `crowd.rs`.

mod crowd;

pub(crate) use crowd::Crowd;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use rand::Rng;
use rustc_hash::FxHashMap;

use crate::device::{Availability, AvailabilityProcess, DeviceSpec};
use crate::event::{ClientEvent, Event, LinkEvent, Out, ServerEvent};
use crate::learner::{ClientId, Learner, Params, TrainJob};
use crate::link::LinkMetrics;
use crate::message::{AdapterUpdate, Message, ModelMsg, UpdateMsg};
use crate::net::{Direction, LinkId, LinkSpec};
use crate::record::{ActivityRecord, AvailabilityRecord, ClientState, Records};
use crate::rng::{ActorKey, Stream};
use crate::time::SimTime;
use crate::wire::{Encoder, Sender};

/// The clients' personal models, for those that have one (most algorithms keep none, so
/// a map costs nothing per client).
pub(crate) type PersonalModels = Rc<RefCell<FxHashMap<ClientId, Params>>>;

/// What the clients of one description share: their class, device, links and
/// availability (a trace's intervals are each client's own).
pub(crate) struct Profile {
    /// Index of the class's metric handles.
    class: usize,
    device: DeviceSpec,
    uplink: LinkSpec,
    downlink: LinkSpec,
    availability: Availability,
}

impl Profile {
    /// The link going `dir`.
    fn link(&self, dir: Direction) -> &LinkSpec {
        match dir {
            Direction::Up => &self.uplink,
            Direction::Down => &self.downlink,
        }
    }
}

/// The metric handles of one device class, registered once.
pub(crate) struct ClassMetrics {
    compute_seconds: metrics::Histogram,
    ineligible: metrics::Gauge,
    dropouts: metrics::Counter,
    up: LinkMetrics,
    down: LinkMetrics,
}

impl ClassMetrics {
    fn new(class: &str) -> Self {
        Self {
            compute_seconds: metrics::histogram!(crate::metrics::COMPUTE_SECONDS, "class" => class.to_string()),
            ineligible: metrics::gauge!(crate::metrics::CLIENTS_INELIGIBLE, "class" => class.to_string()),
            dropouts: metrics::counter!(crate::metrics::DROPOUTS, "class" => class.to_string()),
            up: LinkMetrics::new(class, Direction::Up),
            down: LinkMetrics::new(class, Direction::Down),
        }
    }

    /// The handles of the class's links going `dir`.
    fn link(&self, dir: Direction) -> &LinkMetrics {
        match dir {
            Direction::Up => &self.up,
            Direction::Down => &self.down,
        }
    }
}

/// What every client's handler reads: the learner, the records, the personal models,
/// the uplink's encoding and the clients-by-state gauges.
pub(crate) struct Shared {
    learner: Arc<dyn Learner>,
    records: Rc<RefCell<Records>>,
    personal: PersonalModels,
    uplink: Encoder,
    states: [metrics::Gauge; 5],
}

/// What one client's handler works with besides the client itself.
struct ClientCx<'a> {
    id: ClientId,
    shared: &'a Shared,
    profile: &'a Profile,
    metrics: &'a ClassMetrics,
}

/// A client: its drawn speed, its random streams, its current job.
pub(crate) struct ClientActor {
    profile: u32,
    /// Simulated time of each of its jobs.
    duration: SimTime,
    /// What its first job takes on top (the device's frozen prefix); zero once paid.
    first_extra: SimTime,
    /// Whether its device has the memory for a job: an ineligible client is never
    /// offered to the server.
    eligible: bool,
    /// Identifies the current task; a result for an older one is stale.
    task: u64,
    /// The round the server last chose this client for: transfers of other rounds are
    /// superseded.
    round: u32,
    state: ClientState,
    tracked: bool,
    availability: AvailabilityProcess,
    /// The client's own availability trace, where its class follows traces.
    trace: Option<Box<Availability>>,
    availability_rng: Stream,
    dropout_rng: Stream,
    job_seeds: Stream,
    wire: Sender,
    /// The models of the current job, as received, when its update is encoded against
    /// them (delta encodings); empty otherwise.
    received: Box<[Params]>,
}

impl ClientActor {
    /// Client `id` of `profile`, with `plan` for availability (its own trace, or its
    /// class's), its speed drawn from its own stream; records its initial state. Returns
    /// the client and when its availability first changes.
    fn new(
        id: ClientId,
        seed: u64,
        profile: u32,
        cx: &ClientCx<'_>,
        trace: Option<Box<Availability>>,
        tracked: bool,
    ) -> (Self, Option<SimTime>) {
        let plan = trace.as_deref().unwrap_or(&cx.profile.availability);
        let mut availability_rng = Stream::new(seed, ActorKey::Client(id), "availability");
        let (availability, first_change) =
            availability_rng.draw(|rng| AvailabilityProcess::start(plan, rng));
        let speed = Stream::new(seed, ActorKey::Client(id), "speed").draw(|rng| {
            cx.profile
                .device
                .speed
                .sample(rng, crate::device::MIN_SPEED, f64::MAX)
        });
        let device = &cx.profile.device;
        let work = cx.shared.learner.train_work(id);
        let (duration, first) = work.durations(speed, device.unit);
        let eligible = device.memory.is_none_or(|m| work.memory <= m);
        if !eligible {
            cx.metrics.ineligible.increment(1.0);
        }
        let state = if availability.online() {
            ClientState::Idle
        } else {
            ClientState::Offline
        };
        cx.shared.states[state as usize].increment(1.0);
        let mut records = cx.shared.records.borrow_mut();
        records.clients[id].speed = speed;
        records.clients[id].eligible = eligible;
        if tracked {
            records.activity.push(ActivityRecord {
                sim_seconds: 0.0,
                client: id,
                state,
            });
        }
        if first_change.is_some() || !availability.online() {
            records.on_availability(AvailabilityRecord {
                sim_seconds: 0.0,
                client: id,
                online: availability.online(),
            });
        }
        drop(records);
        let client = Self {
            profile,
            duration,
            first_extra: first - duration,
            eligible,
            task: 0,
            round: 0,
            state,
            tracked,
            availability,
            trace,
            availability_rng,
            dropout_rng: Stream::new(seed, ActorKey::Client(id), "dropout"),
            job_seeds: Stream::new(seed, ActorKey::Client(id), "job-seed"),
            wire: Sender::new(Stream::new(seed, ActorKey::Client(id), "wire")),
            received: Box::default(),
        };
        (client, first_change)
    }

    /// Whether the device is online.
    fn online(&self) -> bool {
        self.availability.online()
    }

    /// Whether the server may pick it: online, and with the memory for a job.
    fn selectable(&self) -> bool {
        self.online() && self.eligible
    }

    fn flip_availability(&mut self, cx: &ClientCx<'_>, out: &mut Out) {
        let id = cx.id;
        let plan = self.trace.as_deref().unwrap_or(&cx.profile.availability);
        let process = &mut self.availability;
        let next = self
            .availability_rng
            .draw(|rng| process.flip(plan, out.time(), rng));
        if let Some(at) = next {
            out.at(at, Event::Client(id, ClientEvent::Availability));
        }
        let online = self.availability.online();
        let mut records = cx.shared.records.borrow_mut();
        records.on_availability(AvailabilityRecord {
            sim_seconds: out.time().as_secs_f64(),
            client: id,
            online,
        });
        // The server learns of the change before it hears of any job it costs, so that
        // it never takes an offline client for an idle one.
        out.now(Event::Server(ServerEvent::CheckIn {
            client: id,
            online: online && self.eligible,
        }));
        if online {
            drop(records);
            self.set_state(cx, out.time(), ClientState::Idle);
            return;
        }
        // Everything in progress is lost with the connection: the job, and whatever is
        // on either link (a superseded job's upload included).
        self.task += 1;
        for dir in [Direction::Down, Direction::Up] {
            out.now(Event::Link(LinkId { client: id, dir }, LinkEvent::Cancel));
        }
        if matches!(
            self.state,
            ClientState::Downloading | ClientState::Training | ClientState::Uploading
        ) {
            records.dropouts += 1;
            records.clients[id].dropouts += 1;
            cx.metrics.dropouts.increment(1);
            out.now(self.failed(id));
        }
        drop(records);
        self.set_state(cx, out.time(), ClientState::Offline);
    }

    /// The event that tells the server this client's current job failed.
    fn failed(&self, client: ClientId) -> Event {
        Event::Server(ServerEvent::ClientFailed {
            client,
            round: self.round,
        })
    }

    fn set_state(&mut self, cx: &ClientCx<'_>, now: SimTime, state: ClientState) {
        if self.tracked && state != self.state {
            cx.shared
                .records
                .borrow_mut()
                .activity
                .push(ActivityRecord {
                    sim_seconds: now.as_secs_f64(),
                    client: cx.id,
                    state,
                });
        }
        cx.shared.states[self.state as usize].decrement(1.0);
        cx.shared.states[state as usize].increment(1.0);
        self.state = state;
    }

    fn handle(&mut self, cx: &ClientCx<'_>, out: &mut Out, event: ClientEvent) {
        let id = cx.id;
        match event {
            ClientEvent::Selected { round } => {
                self.round = round;
                if self.state == ClientState::Offline {
                    // Chosen at the instant it went offline: it declines (the model the
                    // server sends never starts down its link, see `Crowd::link`).
                    out.now(self.failed(id));
                    return;
                }
                if self.state == ClientState::Training {
                    // The server moved on: the job in progress will never be used.
                    cx.shared.records.borrow_mut().clients[id].abandoned += 1;
                    self.task += 1;
                }
                self.set_state(cx, out.time(), ClientState::Downloading);
            }
            ClientEvent::ModelArrived(model) => {
                // Only the model of the round it was last chosen for starts a job; an
                // older download still in flight is superseded.
                if self.state == ClientState::Downloading && model.round == self.round {
                    self.start_training(cx, out, model);
                }
            }
            ClientEvent::Availability => self.flip_availability(cx, out),
            ClientEvent::TrainDone {
                task,
                round,
                base_version,
                outcome,
            } => {
                if task != self.task {
                    return;
                }
                self.set_state(cx, out.time(), ClientState::Uploading);
                let outcome = outcome
                    .into_ready()
                    .expect("the clock resolves results before dispatch");
                if let Some(personal) = outcome.personal {
                    cx.shared
                        .personal
                        .borrow_mut()
                        .insert(id, Arc::new(personal));
                }
                cx.shared.records.borrow_mut().clients[id].updates_sent += 1;
                let mut bytes = 0;
                // The job is over: the models it started from are needed no more.
                let received = std::mem::take(&mut self.received);
                let adapters = outcome
                    .slots
                    .into_iter()
                    .enumerate()
                    .map(|(i, slot)| {
                        let base = received.get(i).map(|b| b.as_slice());
                        let encoded =
                            cx.shared
                                .uplink
                                .encode_update(&mut self.wire, i, slot.params, base);
                        bytes += encoded.bytes;
                        AdapterUpdate {
                            finite: crate::finite::all_finite(&encoded.values),
                            params: encoded.values,
                            num_samples: slot.num_samples,
                        }
                    })
                    .collect();
                let update = UpdateMsg {
                    client: id,
                    round,
                    base_version,
                    adapters,
                    bytes,
                };
                let link = LinkId {
                    client: id,
                    dir: Direction::Up,
                };
                out.now(Event::Link(link, LinkEvent::Send(Message::Update(update))));
            }
            ClientEvent::TransferEnded {
                dir,
                round,
                delivered,
            } => {
                let ends = match dir {
                    Direction::Up => ClientState::Uploading,
                    Direction::Down => ClientState::Downloading,
                };
                // Only the current job's transfer matters; a superseded job's, or one
                // that going offline already ended, changes nothing.
                if self.state != ends || round != self.round {
                    return;
                }
                // A delivered model starts training (handled on arrival); anything else
                // leaves the client idle, and a transfer given up fails the job.
                if !(dir == Direction::Down && delivered) {
                    self.set_state(cx, out.time(), ClientState::Idle);
                }
                if !delivered {
                    out.now(self.failed(id));
                }
            }
        }
    }

    fn start_training(&mut self, cx: &ClientCx<'_>, out: &mut Out, model: ModelMsg) {
        let id = cx.id;
        self.task += 1;
        // Draw both whatever happens, so the streams stay aligned across scenarios.
        let drops = self
            .dropout_rng
            .draw(|rng| rng.random::<f64>() < cx.profile.device.dropout);
        let seed = self.job_seeds.draw(|rng| rng.random::<u64>());
        let duration = self.duration + std::mem::replace(&mut self.first_extra, SimTime::ZERO);
        let mut records = cx.shared.records.borrow_mut();
        if drops {
            records.clients[id].dropouts += 1;
            records.dropouts += 1;
            drop(records);
            cx.metrics.dropouts.increment(1);
            self.set_state(cx, out.time(), ClientState::Idle);
            // The device leaves at a uniform point of the job; the server notices then.
            let left = self.dropout_rng.draw(|rng| rng.random::<f64>()) * duration.as_secs_f64();
            out.after(SimTime::from_secs_ceil(left), self.failed(id));
            return;
        }
        let stats = &mut records.clients[id];
        stats.trained += 1;
        stats.compute_seconds += duration.as_secs_f64();
        drop(records);
        cx.metrics.compute_seconds.record(duration.as_secs_f64());
        self.set_state(cx, out.time(), ClientState::Training);
        let personal = cx.shared.personal.borrow_mut().get(&id).cloned();
        if cx.shared.uplink.encodes_delta() {
            // The update will be encoded against what was received.
            self.received = model.params.as_slice().into();
        }
        let outcome = cx.shared.learner.train(TrainJob {
            client: id,
            params: model.params,
            personal,
            seed,
        });
        out.after(
            duration,
            Event::Client(
                id,
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

//! Events: what the clock delivers to actors, and what actors schedule in return.

use actix::Message as ActixMessage;

use crate::learner::{ClientId, EvalOutcome, LearnerFailed, Pending, TrainOutcome};
use crate::message::{Message, ModelMsg, UpdateMsg};
use crate::net::{Direction, LinkId, Transfer};
use crate::outcome::StopReason;
use crate::record::Progress;
use crate::time::SimTime;

/// Every event of a simulation, addressed to one actor.
#[derive(Debug)]
pub(crate) enum Event {
    Server(ServerEvent),
    Client(ClientId, ClientEvent),
    Link(LinkId, LinkEvent),
    Bottleneck(Direction, BottleneckEvent),
    /// Ends the run after every earlier event, for this reason.
    Stop(StopReason),
}

impl Event {
    /// The event that hands `msg`, carried by `link`, to its receiver.
    pub(crate) fn delivery(msg: Message, link: LinkId) -> Self {
        match msg {
            Message::Model(m) => Event::Client(link.client, ClientEvent::ModelArrived(m)),
            Message::Update(u) => Event::Server(ServerEvent::UpdateArrived(u)),
        }
    }

    /// The event that tells `link`'s client its transfer of a message of `round` ended,
    /// delivered or given up.
    pub(crate) fn transfer_ended(link: LinkId, round: u32, delivered: bool) -> Self {
        Event::Client(
            link.client,
            ClientEvent::TransferEnded {
                dir: link.dir,
                round,
                delivered,
            },
        )
    }

    /// Whether the event carries a pool result.
    pub(crate) fn awaits_result(&self) -> bool {
        matches!(
            self,
            Event::Client(_, ClientEvent::TrainDone { .. })
                | Event::Server(ServerEvent::EvalDone { .. })
        )
    }

    /// Whether the clock may deliver the event after later ones, once its result is in:
    /// an evaluation nothing in the run waits for.
    pub(crate) fn deferrable(&self) -> bool {
        matches!(
            self,
            Event::Server(ServerEvent::EvalDone {
                blocking: false,
                ..
            })
        )
    }

    /// Whether a deferred event's result is in, without waiting.
    pub(crate) fn poll_ready(&mut self) -> Result<bool, LearnerFailed> {
        match self {
            Event::Server(ServerEvent::EvalDone { outcome, .. }) => outcome.poll_ready(),
            _ => Ok(true),
        }
    }

    /// Waits for any pool result the event carries. The clock calls this only when the
    /// event is due, which is what lets earlier-submitted jobs run in parallel.
    pub(crate) async fn resolve(&mut self) -> Result<(), LearnerFailed> {
        match self {
            Event::Client(_, ClientEvent::TrainDone { outcome, .. }) => outcome.resolve().await,
            Event::Server(ServerEvent::EvalDone { outcome, .. }) => outcome.resolve().await,
            _ => Ok(()),
        }
    }
}

/// Events a client handles.
#[derive(Debug)]
pub(crate) enum ClientEvent {
    /// The server chose this client for `round` and started sending it the model.
    Selected { round: u32 },
    /// The global model arrived over the downlink.
    ModelArrived(ModelMsg),
    /// Local training finished at this simulated time.
    TrainDone {
        task: u64,
        round: u32,
        base_version: u64,
        outcome: Pending<TrainOutcome>,
    },
    /// A transfer to or from this client, of a message of `round`, ended: delivered, or
    /// given up after its retries.
    TransferEnded {
        dir: Direction,
        round: u32,
        delivered: bool,
    },
    /// The device goes offline or comes back online.
    Availability,
}

/// Events the server handles.
#[derive(Debug)]
pub(crate) enum ServerEvent {
    /// The run begins.
    Start,
    /// A client's update arrived.
    UpdateArrived(UpdateMsg),
    /// A timer the strategy set (a round deadline).
    Timer(u64),
    /// A client's job for `round` failed (it dropped out, went offline, declined, or a
    /// transfer was given up); the server notices the lost connection.
    ClientFailed { client: ClientId, round: u32 },
    /// A client came online or went offline.
    CheckIn { client: ClientId, online: bool },
    /// An evaluation of `version` finished.
    EvalDone {
        round: u32,
        version: u64,
        /// Boxed, as is `progress`: every event is as large as the largest, and this one
        /// comes once a round.
        outcome: Box<Pending<EvalOutcome>>,
        /// Whether the run waits for it: its result can stop the run (a target accuracy,
        /// the final evaluation). The clock may deliver any other evaluation later, as
        /// its result comes in, for it only writes records.
        blocking: bool,
        /// The records' counters as the evaluation started, for its timeline row.
        progress: Box<Progress>,
    },
    /// The virtual-time limit.
    Horizon,
    /// Time for a periodic evaluation.
    EvalTick,
    /// Nothing but periodic evaluations is left to happen: the run ends, and the server
    /// records what it waited for.
    Stalled,
}

/// Events a link handles.
#[derive(Debug)]
pub(crate) enum LinkEvent {
    /// Transmit a new message.
    Send(Message),
    /// An attempt's last bit arrived (or would have, had it not been lost).
    Arrived { attempt: u64 },
    /// The sender's timeout for a lost attempt expired: try again.
    Retry { attempt: u64 },
    /// The client went offline: every message in flight on this link is lost.
    Cancel,
}

/// Events the shared capacity handles.
#[derive(Debug)]
pub(crate) enum BottleneckEvent {
    /// A transfer begins.
    Start(Transfer),
    /// The earliest active transfer may have finished; stale wake-ups carry an old generation.
    Wake { generation: u64 },
    /// The link's client went offline: its transfers stop.
    Cancel(LinkId),
}

/// An event delivered to an actor at simulated time `now`.
pub(crate) struct Deliver<E> {
    pub now: SimTime,
    pub event: E,
}

impl<E: 'static> ActixMessage for Deliver<E> {
    type Result = Effects;
}

/// Events an actor schedules while handling one.
#[derive(Debug, Default, actix::MessageResponse)]
pub(crate) struct Effects(pub Vec<(SimTime, Event)>);

/// Collects the events a handler schedules, relative to the time it runs at.
pub(crate) struct Out {
    now: SimTime,
    effects: Vec<(SimTime, Event)>,
}

impl Out {
    /// A collector for a handler running at `now`.
    pub(crate) fn new(now: SimTime) -> Self {
        Self::with_buffer(now, Vec::new())
    }

    /// A collector that fills `buffer` (emptied first), so that a caller that hands each
    /// handler the last one's buffer allocates nothing per event.
    pub(crate) fn with_buffer(now: SimTime, mut buffer: Vec<(SimTime, Event)>) -> Self {
        buffer.clear();
        Self {
            now,
            effects: buffer,
        }
    }

    /// The time the handler runs at.
    pub(crate) fn time(&self) -> SimTime {
        self.now
    }

    /// Schedules `event` at `at` (never earlier than now).
    pub(crate) fn at(&mut self, at: SimTime, event: Event) {
        self.effects.push((at.max(self.now), event));
    }

    /// Schedules `event` after `delay`.
    pub(crate) fn after(&mut self, delay: SimTime, event: Event) {
        self.effects.push((self.now + delay, event));
    }

    /// Schedules `event` at the current time, after everything already due now.
    pub(crate) fn now(&mut self, event: Event) {
        self.effects.push((self.now, event));
    }

    /// The scheduled events, in the order they were scheduled.
    pub(crate) fn into_effects(self) -> Effects {
        Effects(self.effects)
    }
}

/// Implements actix's `Handler<Deliver<$event>>` for an actor with an inherent
/// `fn handle(&mut self, out: &mut Out, event: $event)`: every actor handles an event by
/// collecting what it schedules.
macro_rules! deliver_to {
    ($actor:ty, $event:ty) => {
        impl actix::Actor for $actor {
            type Context = actix::Context<Self>;
        }

        impl actix::Handler<$crate::event::Deliver<$event>> for $actor {
            type Result = $crate::event::Effects;
            fn handle(
                &mut self,
                msg: $crate::event::Deliver<$event>,
                _: &mut actix::Context<Self>,
            ) -> $crate::event::Effects {
                let mut out = $crate::event::Out::new(msg.now);
                <$actor>::handle(self, &mut out, msg.event);
                out.into_effects()
            }
        }
    };
}
pub(crate) use deliver_to;

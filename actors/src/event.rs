//! Events: what the clock delivers to actors, and what actors schedule in return.

use actix::Message as ActixMessage;

use crate::client::ClientEvent;
use crate::learner::{ClientId, LearnerFailed};
use crate::net::{BottleneckEvent, Direction, LinkEvent, LinkId};
use crate::server::ServerEvent;
use crate::time::SimTime;

/// Every event of a simulation, addressed to one actor.
#[derive(Debug)]
pub(crate) enum Event {
    Server(ServerEvent),
    Client(ClientId, ClientEvent),
    Link(LinkId, LinkEvent),
    Bottleneck(Direction, BottleneckEvent),
    /// Ends the run after every earlier event, for this reason.
    Stop(crate::clock::StopReason),
}

impl Event {
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

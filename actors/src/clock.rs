//! The clock actor: owns the event queue and dispatches events in simulated-time order.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix::{Actor, Addr, Context, Handler, Message as ActixMessage, ResponseFuture};

use crate::client::Crowd;
use crate::event::{ClientEvent, Deliver, Effects, Event, Out, ServerEvent};
use crate::learner::Learner;
use crate::link::BottleneckActor;
use crate::net::Direction;
use crate::outcome::{ClockOutcome, SimError, StopReason};
use crate::queue::EventQueue;
use crate::record::Records;
use crate::server::ServerActor;
use crate::time::SimTime;

/// Every actor, by role: the server behind its actix mailbox; the clients, their links
/// and the server's capacities hosted by the clock itself (see [`Crowd`]).
pub(crate) struct Actors {
    pub(crate) server: Addr<ServerActor>,
    pub(crate) crowd: Crowd,
    pub(crate) ingress: BottleneckActor,
    pub(crate) egress: BottleneckActor,
}

/// Watches a run's progress; called by the clock between events.
pub trait Observer {
    /// Called every few events and after each evaluation.
    fn progress(&mut self, now: SimTime, records: &Records);
}

impl Observer for () {
    fn progress(&mut self, _: SimTime, _: &Records) {}
}

/// The clock. It dispatches every event in `(time, sequence)` order and waits for each
/// handler before the next; a pool result carried by an event is awaited only when that
/// event is due, so jobs submitted earlier keep running in parallel meanwhile.
///
/// An evaluation that nothing in the run waits for (see [`Event::deferrable`]) is set
/// aside when due and delivered once its result is in, still at its own time and in order
/// with the other evaluations: the next round trains while it computes. Its handler only
/// writes records, so the simulation does not depend on when that happens.
pub(crate) struct ClockActor {
    state: Option<ClockState>,
}

struct ClockState {
    actors: Actors,
    queue: EventQueue<Event>,
    records: Rc<RefCell<Records>>,
    interrupt: Arc<AtomicBool>,
    observer: Box<dyn Observer>,
    learner: Arc<dyn Learner>,
    /// The last handler's emptied effects, for the next handler to fill.
    spare: Vec<(SimTime, Event)>,
    /// Periodic evaluation ticks in the queue: when nothing else is, nothing can change.
    ticks: usize,
}

impl ClockActor {
    /// A clock that starts the server at time zero, after the `initial` events due then.
    pub(crate) fn new(
        actors: Actors,
        initial: Vec<(SimTime, Event)>,
        records: Rc<RefCell<Records>>,
        interrupt: Arc<AtomicBool>,
        observer: Box<dyn Observer>,
        learner: Arc<dyn Learner>,
    ) -> Self {
        let mut queue = EventQueue::default();
        let mut ticks = 0;
        for (at, event) in initial {
            schedule(&mut queue, &mut ticks, at, event);
        }
        queue.push(SimTime::ZERO, Event::Server(ServerEvent::Start));
        Self {
            state: Some(ClockState {
                actors,
                queue,
                records,
                interrupt,
                observer,
                learner,
                spare: Vec::new(),
                ticks,
            }),
        }
    }
}

impl Actor for ClockActor {
    type Context = Context<Self>;
}

/// Runs the simulation to its end.
pub(crate) struct Run;

impl ActixMessage for Run {
    type Result = Result<ClockOutcome, SimError>;
}

impl Handler<Run> for ClockActor {
    type Result = ResponseFuture<Result<ClockOutcome, SimError>>;

    fn handle(&mut self, _: Run, _: &mut Context<Self>) -> Self::Result {
        let state = self.state.take();
        Box::pin(async move {
            let Some(state) = state else {
                return Err(SimError::Actor("clock"));
            };
            state.run().await
        })
    }
}

/// Queues `event` at `at`, counting evaluation ticks: an availability change ahead of
/// everything else due then, so that nothing happens at the instant a device goes offline
/// but what going offline does.
fn schedule(queue: &mut EventQueue<Event>, ticks: &mut usize, at: SimTime, event: Event) {
    match event {
        Event::Client(_, ClientEvent::Availability) => queue.push_first(at, event),
        Event::Server(ServerEvent::EvalTick) => {
            *ticks += 1;
            queue.push(at, event);
        }
        _ => queue.push(at, event),
    }
}

/// Progress is reported every this many events.
const OBSERVE_EVERY: u64 = 512;

impl ClockState {
    async fn run(mut self) -> Result<ClockOutcome, SimError> {
        let mut now = SimTime::ZERO;
        let mut events = 0u64;
        let mut deferred = VecDeque::new();
        let events_total = metrics::counter!(crate::metrics::EVENTS);
        let sim_seconds = metrics::gauge!(crate::metrics::SIM_SECONDS);
        let reason = loop {
            if self.interrupt.load(Ordering::Relaxed) {
                break StopReason::Interrupted;
            }
            if !self
                .deliver_deferred(now, &mut deferred, false, &mut events)
                .await?
            {
                break StopReason::PoolFailed;
            }
            // Evaluation ticks alone would only evaluate the same model forever.
            let next = (self.queue.len() > self.ticks)
                .then(|| self.queue.pop())
                .flatten();
            let Some((at, mut event)) = next else {
                self.stalled(now).await?;
                break StopReason::Stalled;
            };
            if matches!(event, Event::Server(ServerEvent::EvalTick)) {
                self.ticks -= 1;
            }
            now = at;
            if let Event::Stop(reason) = event {
                break reason;
            }
            if event.deferrable() {
                deferred.push_back((at, event));
                continue;
            }
            let evaluation = matches!(event, Event::Server(ServerEvent::EvalDone { .. }));
            // Evaluations are delivered in the order they started.
            if evaluation
                && !self
                    .deliver_deferred(now, &mut deferred, true, &mut events)
                    .await?
            {
                break StopReason::PoolFailed;
            }
            let observe = events.is_multiple_of(OBSERVE_EVERY) || evaluation;
            if event.awaits_result() {
                self.learner.flush();
            }
            if event.resolve().await.is_err() {
                break StopReason::PoolFailed;
            }
            let Effects(mut effects) = self.dispatch(now, event).await?;
            for (t, e) in effects.drain(..) {
                schedule(&mut self.queue, &mut self.ticks, t, e);
            }
            self.spare = effects;
            events += 1;
            events_total.increment(1);
            sim_seconds.set(now.as_secs_f64());
            if observe {
                self.observer.progress(now, &self.records.borrow());
            }
        };
        // What was set aside is delivered, up to the first evaluation the pool failed.
        let reason = match self
            .deliver_deferred(now, &mut deferred, true, &mut events)
            .await?
        {
            true => reason,
            false => StopReason::PoolFailed,
        };
        self.observer.progress(now, &self.records.borrow());
        Ok(ClockOutcome {
            end: now,
            reason,
            events,
        })
    }

    /// Has the server record why the run stalled at `now`.
    async fn stalled(&mut self, now: SimTime) -> Result<(), SimError> {
        self.actors
            .server
            .send(Deliver {
                now,
                event: ServerEvent::Stalled,
            })
            .await
            .map(|_effects| ())
            .map_err(|_| SimError::Actor("server"))
    }

    /// Delivers deferred evaluations in order, each at its own time, while their results
    /// are in (or, with `wait`, all of them, waiting for each), counting them in `events`;
    /// `false` when the pool dropped one (it and those after it stay undelivered).
    async fn deliver_deferred(
        &mut self,
        now: SimTime,
        deferred: &mut VecDeque<(SimTime, Event)>,
        wait: bool,
        events: &mut u64,
    ) -> Result<bool, SimError> {
        while let Some((_, event)) = deferred.front_mut() {
            match event.poll_ready() {
                Ok(false) if !wait => break,
                Ok(_) => {}
                Err(_) => return Ok(false),
            }
            let (at, mut event) = deferred.pop_front().expect("a front entry");
            if event.resolve().await.is_err() {
                return Ok(false);
            }
            let Effects(effects) = self.dispatch(at, event).await?;
            debug_assert!(
                effects.is_empty(),
                "a deferred evaluation schedules nothing"
            );
            metrics::counter!(crate::metrics::EVENTS).increment(1);
            self.observer.progress(now, &self.records.borrow());
            *events += 1;
        }
        Ok(true)
    }

    async fn dispatch(&mut self, now: SimTime, event: Event) -> Result<Effects, SimError> {
        let a = &mut self.actors;
        let mut out = Out::with_buffer(now, std::mem::take(&mut self.spare));
        match event {
            Event::Server(event) => {
                // A mailbox error means the actor stopped, which only happens when a
                // handler panicked.
                return a
                    .server
                    .send(Deliver { now, event })
                    .await
                    .map_err(|_| SimError::Actor("server"));
            }
            Event::Client(c, event) => a.crowd.client(c, &mut out, event),
            Event::Link(link, event) => a.crowd.link(link, &mut out, event),
            Event::Bottleneck(Direction::Up, event) => a.ingress.handle(&mut out, event),
            Event::Bottleneck(Direction::Down, event) => a.egress.handle(&mut out, event),
            Event::Stop(_) => {}
        }
        Ok(out.into_effects())
    }
}

//! The link actor: one per client and direction; it times attempts, loses and retries
//! them, their bits crossing the server's shared capacity (the bottleneck actor).

mod bottleneck;

pub(crate) use bottleneck::BottleneckActor;

use std::cell::RefCell;

use rand::Rng;

use crate::event::{BottleneckEvent, Event, LinkEvent, Out};
use crate::message::Message;
use crate::net::{
    Direction, LinkId, LinkSpec, LinkValue, MAX_LATENCY, MIN_BANDWIDTH, Rate, Transfer,
};
use crate::record::Records;
use crate::rng::{ActorKey, Stream};
use crate::time::SimTime;

struct InFlight {
    attempt: u64,
    msg: Message,
    retries_left: u32,
    lost: bool,
    /// When the message's first attempt started.
    first_sent: SimTime,
}

/// The metric handles of the links of one device class in one direction, registered once.
#[derive(Clone)]
pub(crate) struct LinkMetrics {
    bytes: metrics::Counter,
    lost: metrics::Counter,
    transfer_seconds: metrics::Histogram,
}

impl LinkMetrics {
    /// The handles for links of class `class` going `dir`.
    pub(crate) fn new(class: &str, dir: Direction) -> Self {
        let bytes_name = match dir {
            Direction::Up => crate::metrics::BYTES_UP,
            Direction::Down => crate::metrics::BYTES_DOWN,
        };
        let way = dir.as_str();
        Self {
            bytes: metrics::counter!(bytes_name, "class" => class.to_string()),
            lost: metrics::counter!(crate::metrics::MESSAGES_LOST, "direction" => way),
            transfer_seconds: metrics::histogram!(crate::metrics::TRANSFER_SECONDS, "direction" => way),
        }
    }
}

/// What a link needs besides its own state: its spec and metrics (its class's), the
/// records.
pub(crate) struct LinkCx<'a> {
    pub(crate) spec: &'a LinkSpec,
    pub(crate) metrics: &'a LinkMetrics,
    pub(crate) records: &'a RefCell<Records>,
}

/// A link actor: one per client and direction. Idle, it holds its random stream's
/// position and its attempt counter alone.
pub(crate) struct LinkActor {
    rng: Stream,
    next_attempt: u64,
    /// Attempts under way: rarely more than one, so a short list.
    in_flight: Vec<InFlight>,
}

impl LinkActor {
    /// The link `id` with the random stream of its seed.
    pub(crate) fn new(id: LinkId, seed: u64) -> Self {
        let key = ActorKey::Link {
            client: id.client,
            up: id.dir == Direction::Up,
        };
        Self {
            rng: Stream::new(seed, key, "link"),
            next_attempt: 0,
            in_flight: Vec::new(),
        }
    }

    fn start_attempt(
        &mut self,
        id: LinkId,
        cx: &LinkCx<'_>,
        out: &mut Out,
        msg: Message,
        retries_left: u32,
        first_sent: SimTime,
    ) {
        let attempt = self.next_attempt;
        self.next_attempt += 1;
        let now = out.time();
        let spec = cx.spec;
        // Always draw in the same order, so the stream does not depend on the outcome.
        let (latency, cap, lost) = self.rng.draw(|rng| {
            let latency = match &spec.latency {
                LinkValue::Draw(d) => d.sample(rng, 0.0, MAX_LATENCY),
                LinkValue::Steps(s) => s.at(now).clamp(0.0, MAX_LATENCY),
            };
            let cap = match &spec.bandwidth {
                LinkValue::Draw(d) => Rate::Fixed(d.sample(rng, MIN_BANDWIDTH, f64::MAX)),
                LinkValue::Steps(s) => Rate::Steps(s.clone()),
            };
            (latency, cap, rng.random::<f64>() < spec.loss)
        });
        let bytes = msg.bytes();
        cx.metrics.bytes.increment(bytes);
        cx.records.borrow_mut().on_attempt(id, bytes);
        out.now(Event::Bottleneck(
            id.dir,
            BottleneckEvent::Start(Transfer {
                link: id,
                attempt,
                bits: bytes as f64 * 8.0,
                cap,
                latency: SimTime::from_secs_ceil(latency),
            }),
        ));
        self.in_flight.push(InFlight {
            attempt,
            msg,
            retries_left,
            lost,
            first_sent,
        });
    }

    /// Removes and returns attempt `attempt`, if still in flight.
    fn take_flight(&mut self, attempt: u64) -> Option<InFlight> {
        let at = self.in_flight.iter().position(|f| f.attempt == attempt)?;
        let flight = self.in_flight.swap_remove(at);
        if self.in_flight.is_empty() {
            // An idle link keeps no buffer.
            self.in_flight = Vec::new();
        }
        Some(flight)
    }

    /// Handles `event` for link `id`.
    pub(crate) fn handle(&mut self, id: LinkId, cx: &LinkCx<'_>, out: &mut Out, event: LinkEvent) {
        match event {
            LinkEvent::Send(msg) => {
                let now = out.time();
                self.start_attempt(id, cx, out, msg, cx.spec.retries, now);
            }
            LinkEvent::Arrived { attempt } => {
                let Some(flight) = self.take_flight(attempt) else {
                    return;
                };
                if !flight.lost {
                    let took = out.time().saturating_sub(flight.first_sent);
                    cx.metrics.transfer_seconds.record(took.as_secs_f64());
                    let round = flight.msg.round();
                    out.now(Event::delivery(flight.msg, id));
                    out.now(Event::transfer_ended(id, round, true));
                    return;
                }
                cx.metrics.lost.increment(1);
                let mut records = cx.records.borrow_mut();
                records.on_lost(id);
                if flight.retries_left == 0 {
                    records.on_given_up(id);
                    drop(records);
                    let ended = Event::transfer_ended(id, flight.msg.round(), false);
                    out.after(cx.spec.timeout, ended);
                    return;
                }
                drop(records);
                out.after(
                    cx.spec.timeout,
                    Event::Link(id, LinkEvent::Retry { attempt }),
                );
                self.in_flight.push(flight);
            }
            LinkEvent::Cancel => {
                if !self.in_flight.is_empty() {
                    self.in_flight = Vec::new();
                    out.now(Event::Bottleneck(id.dir, BottleneckEvent::Cancel(id)));
                }
            }
            LinkEvent::Retry { attempt } => {
                if let Some(flight) = self.take_flight(attempt) {
                    self.start_attempt(
                        id,
                        cx,
                        out,
                        flight.msg,
                        flight.retries_left - 1,
                        flight.first_sent,
                    );
                }
            }
        }
    }
}

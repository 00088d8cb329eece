//! The link actor: one per client and direction; it times attempts, loses and retries them.

use std::sync::{Arc, Mutex};

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{BottleneckEvent, Direction, LinkId, Rate, Steps, Transfer};
use crate::dist::Dist;
use crate::event::{Event, Out, deliver_to};
use crate::message::Message;
use crate::record::Records;
use crate::rng::SimRng;
use crate::time::SimTime;

/// A link quantity: drawn afresh for every attempt, or following steps in simulated time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum LinkValue {
    /// A fresh draw for every attempt.
    Draw(Dist),
    /// The value at the time (latency: when an attempt starts; bandwidth: at every moment).
    Steps(Steps),
}

/// How a link behaves; latency in seconds, bandwidth in bits per second.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinkSpec {
    /// One-way latency per message: drawn per attempt, or its value when the attempt starts
    /// (seconds).
    pub latency: LinkValue,
    /// The link's own bandwidth: drawn per attempt, or following its steps while the
    /// attempt's bits flow (bits per second).
    pub bandwidth: LinkValue,
    /// Probability that an attempt is lost.
    pub loss: f64,
    /// How long after a lost attempt would have arrived the sender notices and retries.
    pub timeout: SimTime,
    /// Attempts after the first before the message is given up.
    pub retries: u32,
}

/// Smallest bandwidth a draw is clamped to (1 bit/s), so no transfer takes forever.
pub(super) const MIN_BANDWIDTH: f64 = 1.0;
/// Largest latency a draw is clamped to (one day), so no clock overflows.
pub(super) const MAX_LATENCY: f64 = 86_400.0;

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

struct InFlight {
    msg: Message,
    retries_left: u32,
    lost: bool,
    /// When the message's first attempt started.
    first_sent: SimTime,
}

/// A link's metric handles, registered once.
struct LinkMetrics {
    bytes: metrics::Counter,
    lost: metrics::Counter,
    transfer_seconds: metrics::Histogram,
}

/// A link actor: one per client and direction.
pub(crate) struct LinkActor {
    id: LinkId,
    spec: LinkSpec,
    rng: SimRng,
    next_attempt: u64,
    /// Attempts under way, by attempt number: rarely more than one, so a short list.
    in_flight: Vec<(u64, InFlight)>,
    records: Arc<Mutex<Records>>,
    metrics: LinkMetrics,
}

impl LinkActor {
    /// A link of a client of device class `class` (a metric label).
    pub(crate) fn new(
        id: LinkId,
        class: &str,
        spec: LinkSpec,
        rng: SimRng,
        records: Arc<Mutex<Records>>,
    ) -> Self {
        let class = class.to_string();
        let bytes_name = match id.dir {
            Direction::Up => crate::metrics::BYTES_UP,
            Direction::Down => crate::metrics::BYTES_DOWN,
        };
        let dir = id.dir.as_str();
        Self {
            id,
            spec,
            rng,
            next_attempt: 0,
            in_flight: Vec::new(),
            records,
            metrics: LinkMetrics {
                bytes: metrics::counter!(bytes_name, "class" => class),
                lost: metrics::counter!(crate::metrics::MESSAGES_LOST, "direction" => dir),
                transfer_seconds: metrics::histogram!(crate::metrics::TRANSFER_SECONDS, "direction" => dir),
            },
        }
    }

    fn start_attempt(
        &mut self,
        out: &mut Out,
        msg: Message,
        retries_left: u32,
        first_sent: SimTime,
    ) {
        let attempt = self.next_attempt;
        self.next_attempt += 1;
        // Always draw in the same order, so the stream does not depend on the outcome.
        let now = out.time();
        let latency = match &self.spec.latency {
            LinkValue::Draw(d) => d.sample(&mut self.rng, 0.0, MAX_LATENCY),
            LinkValue::Steps(s) => s.at(now).clamp(0.0, MAX_LATENCY),
        };
        let cap = match &self.spec.bandwidth {
            LinkValue::Draw(d) => Rate::Fixed(d.sample(&mut self.rng, MIN_BANDWIDTH, f64::MAX)),
            LinkValue::Steps(s) => Rate::Steps(s.clone()),
        };
        let lost = self.rng.random::<f64>() < self.spec.loss;
        let bytes = msg.bytes();
        self.metrics.bytes.increment(bytes);
        self.records
            .lock()
            .expect("records lock")
            .on_attempt(self.id, bytes);
        out.now(Event::Bottleneck(
            self.id.dir,
            BottleneckEvent::Start(Transfer {
                link: self.id,
                attempt,
                bits: bytes as f64 * 8.0,
                cap,
                latency: SimTime::from_secs_ceil(latency),
            }),
        ));
        self.in_flight.push((
            attempt,
            InFlight {
                msg,
                retries_left,
                lost,
                first_sent,
            },
        ));
    }

    /// Removes and returns attempt `attempt`, if still in flight.
    fn take_flight(&mut self, attempt: u64) -> Option<InFlight> {
        let at = self.in_flight.iter().position(|(a, _)| *a == attempt)?;
        Some(self.in_flight.swap_remove(at).1)
    }

    fn handle(&mut self, out: &mut Out, event: LinkEvent) {
        match event {
            LinkEvent::Send(msg) => {
                let now = out.time();
                self.start_attempt(out, msg, self.spec.retries, now);
            }
            LinkEvent::Arrived { attempt } => {
                let Some(flight) = self.take_flight(attempt) else {
                    return;
                };
                if !flight.lost {
                    let took = out.time().saturating_sub(flight.first_sent);
                    self.metrics.transfer_seconds.record(took.as_secs_f64());
                    out.now(flight.msg.delivery(self.id));
                    out.now(Message::transfer_ended(self.id, true));
                    return;
                }
                self.metrics.lost.increment(1);
                let mut records = self.records.lock().expect("records lock");
                records.on_lost(self.id);
                if flight.retries_left == 0 {
                    records.on_given_up(self.id);
                    drop(records);
                    out.after(self.spec.timeout, Message::transfer_ended(self.id, false));
                    return;
                }
                drop(records);
                out.after(
                    self.spec.timeout,
                    Event::Link(self.id, LinkEvent::Retry { attempt }),
                );
                self.in_flight.push((attempt, flight));
            }
            LinkEvent::Cancel => {
                if !self.in_flight.is_empty() {
                    self.in_flight.clear();
                    out.now(Event::Bottleneck(
                        self.id.dir,
                        BottleneckEvent::Cancel(self.id),
                    ));
                }
            }
            LinkEvent::Retry { attempt } => {
                if let Some(flight) = self.take_flight(attempt) {
                    self.start_attempt(out, flight.msg, flight.retries_left - 1, flight.first_sent);
                }
            }
        }
    }
}

deliver_to!(LinkActor, LinkEvent);

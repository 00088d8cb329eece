//! Links: latency, bandwidth, loss with timeout and retry, and the server's shared capacity.
//!
//! A message of N bytes sent over a link draws the link's latency and bandwidth, then its
//! bits flow through the server's ingress (uploads) or egress (downloads). Concurrent
//! transfers share that capacity max-min fairly, each also capped by its own link's
//! bandwidth (processor sharing): whenever a transfer starts or ends, the rates of the
//! others are recomputed and their remaining bits re-timed. The message arrives one
//! latency after its last bit has left the bottleneck.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::dist::Dist;
use crate::event::{Event, Out, deliver_to};
use crate::learner::ClientId;
use crate::message::Message;
use crate::record::Records;
use crate::rng::SimRng;
use crate::time::SimTime;

/// Which way a link carries messages.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Direction {
    /// Client to server (updates), through the server's ingress.
    Up,
    /// Server to client (models), through the server's egress.
    Down,
}

/// One link: a client and a direction.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkId {
    pub client: ClientId,
    pub dir: Direction,
}

/// How a link behaves; latency in seconds, bandwidth in bits per second.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinkSpec {
    /// One-way latency per message, drawn per attempt (seconds).
    pub latency: Dist,
    /// The link's own bandwidth, drawn per attempt (bits per second).
    pub bandwidth: Dist,
    /// Probability that an attempt is lost.
    pub loss: f64,
    /// How long after a lost attempt would have arrived the sender notices and retries.
    pub timeout: SimTime,
    /// Attempts after the first before the message is given up.
    pub retries: u32,
}

/// Smallest bandwidth a draw is clamped to (1 bit/s), so no transfer takes forever.
pub const MIN_BANDWIDTH: f64 = 1.0;
/// Largest latency a draw is clamped to (one day), so no clock overflows.
pub const MAX_LATENCY: f64 = 86_400.0;

/// Events a link handles.
#[derive(Debug)]
pub enum LinkEvent {
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

impl Direction {
    /// The direction as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }
}

/// A link actor: one per client and direction.
pub struct LinkActor {
    id: LinkId,
    spec: LinkSpec,
    rng: SimRng,
    next_attempt: u64,
    in_flight: BTreeMap<u64, InFlight>,
    records: Arc<Mutex<Records>>,
    metrics: LinkMetrics,
}

impl LinkActor {
    /// A link of a client of device class `class` (a metric label).
    pub fn new(
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
            in_flight: BTreeMap::new(),
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
        let latency = self.spec.latency.sample(&mut self.rng, 0.0, MAX_LATENCY);
        let bandwidth = self
            .spec
            .bandwidth
            .sample(&mut self.rng, MIN_BANDWIDTH, f64::MAX);
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
                cap_bps: bandwidth,
                latency: SimTime::from_secs_ceil(latency),
            }),
        ));
        self.in_flight.insert(
            attempt,
            InFlight {
                msg,
                retries_left,
                lost,
                first_sent,
            },
        );
    }

    fn handle(&mut self, out: &mut Out, event: LinkEvent) {
        match event {
            LinkEvent::Send(msg) => {
                let now = out.time();
                self.start_attempt(out, msg, self.spec.retries, now);
            }
            LinkEvent::Arrived { attempt } => {
                let Some(flight) = self.in_flight.remove(&attempt) else {
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
                self.in_flight.insert(attempt, flight);
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
                if let Some(flight) = self.in_flight.remove(&attempt) {
                    self.start_attempt(out, flight.msg, flight.retries_left - 1, flight.first_sent);
                }
            }
        }
    }
}

deliver_to!(LinkActor, LinkEvent);

/// One attempt's bits crossing the server's shared capacity.
#[derive(Clone, Debug)]
pub struct Transfer {
    pub link: LinkId,
    pub attempt: u64,
    pub bits: f64,
    /// The sending link's own bandwidth: this transfer never goes faster.
    pub cap_bps: f64,
    /// Added after the last bit leaves the bottleneck.
    pub latency: SimTime,
}

/// Events the shared capacity handles.
#[derive(Debug)]
pub enum BottleneckEvent {
    /// A transfer begins.
    Start(Transfer),
    /// The earliest active transfer may have finished; stale wake-ups carry an old generation.
    Wake { generation: u64 },
    /// The link's client went offline: its transfers stop.
    Cancel(LinkId),
}

struct Active {
    transfer: Transfer,
    remaining_bits: f64,
    rate_bps: f64,
}

/// Processor sharing of one capacity among concurrent transfers (max-min fair with caps).
///
/// ```
/// use flotilla_actors::net::{Direction, LinkId, SharedCapacity, Transfer};
/// use flotilla_actors::SimTime;
/// // 10 Mbit/s shared by two 1 Mbit transfers with fast links: each gets 5 Mbit/s.
/// let mut c = SharedCapacity::new(Some(10e6));
/// for client in 0..2 {
///     let link = LinkId { client, dir: Direction::Up };
///     c.start(SimTime::ZERO, Transfer { link, attempt: 0, bits: 1e6, cap_bps: 1e9, latency: SimTime::ZERO });
/// }
/// assert_eq!(c.next_completion(), Some(SimTime(200_000)));
/// ```
pub struct SharedCapacity {
    capacity_bps: Option<f64>,
    active: BTreeMap<u64, Active>,
    next_id: u64,
    last: SimTime,
}

impl SharedCapacity {
    /// A capacity of `capacity_bps` bits per second, or unlimited.
    pub fn new(capacity_bps: Option<f64>) -> Self {
        Self {
            capacity_bps,
            active: BTreeMap::new(),
            next_id: 0,
            last: SimTime::ZERO,
        }
    }

    /// Adds a transfer at `now` and re-times the others.
    pub fn start(&mut self, now: SimTime, transfer: Transfer) {
        self.advance(now);
        let id = self.next_id;
        self.next_id += 1;
        self.active.insert(
            id,
            Active {
                remaining_bits: transfer.bits,
                transfer,
                rate_bps: 0.0,
            },
        );
        self.reallocate();
    }

    /// Removes and returns the transfers whose last bit has left by `now`.
    pub fn finish_due(&mut self, now: SimTime) -> Vec<Transfer> {
        self.advance(now);
        // Less than half a microsecond of work left counts as done (float noise).
        let done: Vec<u64> = self
            .active
            .iter()
            .filter(|(_, a)| a.remaining_bits <= a.rate_bps * 0.5e-6)
            .map(|(&id, _)| id)
            .collect();
        let finished = done
            .into_iter()
            .filter_map(|id| self.active.remove(&id))
            .map(|a| a.transfer)
            .collect();
        self.reallocate();
        finished
    }

    /// Drops the transfers of `link` (its client went offline) and re-times the others.
    /// Returns how many were dropped.
    pub fn cancel(&mut self, now: SimTime, link: LinkId) -> usize {
        self.advance(now);
        let before = self.active.len();
        self.active.retain(|_, a| a.transfer.link != link);
        self.reallocate();
        before - self.active.len()
    }

    /// When the next transfer finishes at the current rates.
    pub fn next_completion(&self) -> Option<SimTime> {
        self.active
            .values()
            .map(|a| self.last + SimTime::from_secs_ceil(a.remaining_bits / a.rate_bps))
            .min()
    }

    fn advance(&mut self, now: SimTime) {
        let dt = now.saturating_sub(self.last).as_secs_f64();
        if dt > 0.0 {
            for a in self.active.values_mut() {
                a.remaining_bits = (a.remaining_bits - a.rate_bps * dt).max(0.0);
            }
        }
        self.last = self.last.max(now);
    }

    /// Max-min fair rates: transfers capped below the fair share keep their cap, and the
    /// rest split what is left equally.
    fn reallocate(&mut self) {
        let Some(capacity) = self.capacity_bps else {
            for a in self.active.values_mut() {
                a.rate_bps = a.transfer.cap_bps;
            }
            return;
        };
        let mut order: Vec<(f64, u64)> = self
            .active
            .iter()
            .map(|(&id, a)| (a.transfer.cap_bps, id))
            .collect();
        order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut left = capacity;
        let mut n = order.len();
        for (cap, id) in order {
            let share = left / n as f64;
            let rate = cap.min(share);
            self.active.get_mut(&id).expect("active transfer").rate_bps = rate;
            left -= rate;
            n -= 1;
        }
    }
}

/// The server's ingress or egress: a [`SharedCapacity`] as an actor.
pub struct BottleneckActor {
    dir: Direction,
    capacity: SharedCapacity,
    generation: u64,
}

impl BottleneckActor {
    pub fn new(dir: Direction, capacity_bps: Option<f64>) -> Self {
        Self {
            dir,
            capacity: SharedCapacity::new(capacity_bps),
            generation: 0,
        }
    }

    fn reschedule(&mut self, out: &mut Out) {
        self.generation += 1;
        if let Some(at) = self.capacity.next_completion() {
            out.at(
                at,
                Event::Bottleneck(
                    self.dir,
                    BottleneckEvent::Wake {
                        generation: self.generation,
                    },
                ),
            );
        }
    }
}

impl BottleneckActor {
    fn handle(&mut self, out: &mut Out, event: BottleneckEvent) {
        let now = out.time();
        match event {
            BottleneckEvent::Start(transfer) => self.capacity.start(now, transfer),
            BottleneckEvent::Cancel(link) => {
                self.capacity.cancel(now, link);
            }
            BottleneckEvent::Wake { generation } => {
                if generation != self.generation {
                    return;
                }
                for t in self.capacity.finish_due(now) {
                    out.after(
                        t.latency,
                        Event::Link(t.link, LinkEvent::Arrived { attempt: t.attempt }),
                    );
                }
            }
        }
        self.reschedule(out);
    }
}

deliver_to!(BottleneckActor, BottleneckEvent);

#[cfg(test)]
mod tests {
    use super::*;

    fn transfer(client: usize, bits: f64, cap: f64) -> Transfer {
        Transfer {
            link: LinkId {
                client,
                dir: Direction::Up,
            },
            attempt: 0,
            bits,
            cap_bps: cap,
            latency: SimTime::ZERO,
        }
    }

    fn drain(c: &mut SharedCapacity) -> Vec<(SimTime, usize)> {
        let mut done = vec![];
        while let Some(t) = c.next_completion() {
            for tr in c.finish_due(t) {
                done.push((t, tr.link.client));
            }
        }
        done
    }

    #[test]
    fn capped_transfer_frees_share_for_others() {
        // 30 Mbit/s shared; client 0 is capped at 5 Mbit/s, so 1 and 2 get 12.5 each.
        let mut c = SharedCapacity::new(Some(30e6));
        c.start(SimTime::ZERO, transfer(0, 5e6, 5e6));
        c.start(SimTime::ZERO, transfer(1, 12.5e6, 1e9));
        c.start(SimTime::ZERO, transfer(2, 25e6, 1e9));
        // t=1s: 0 and 1 finish. Then 2 has 12.5 Mbit left at 30 Mbit/s: 5/12 s more.
        assert_eq!(
            drain(&mut c),
            vec![
                (SimTime(1_000_000), 0),
                (SimTime(1_000_000), 1),
                (SimTime(1_416_667), 2)
            ]
        );
    }

    #[test]
    fn late_arrival_retimes_the_running_transfer() {
        // 8 Mbit/s: A (8 Mbit) alone for 0.5 s, then shares with B (2 Mbit).
        let mut c = SharedCapacity::new(Some(8e6));
        c.start(SimTime::ZERO, transfer(0, 8e6, 1e9));
        c.start(SimTime(500_000), transfer(1, 2e6, 1e9));
        // B: 2 Mbit at 4 Mbit/s -> t = 1.0 s; A has 4 - 2 = 2 Mbit left, alone -> t = 1.25 s.
        assert_eq!(
            drain(&mut c),
            vec![(SimTime(1_000_000), 1), (SimTime(1_250_000), 0)]
        );
    }
}

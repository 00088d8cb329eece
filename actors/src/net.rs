//! Links: latency, bandwidth, loss with timeout and retry, and the server's shared capacity.
//!
//! A message of N bytes sent over a link draws the link's latency and bandwidth, then its
//! bits flow through the server's ingress (uploads) or egress (downloads). Concurrent
//! transfers share that capacity max-min fairly, each also capped by its own link's
//! bandwidth (processor sharing): whenever a transfer starts or ends, the rates of the
//! others are recomputed and their remaining bits re-timed. The message arrives one
//! latency after its last bit has left the bottleneck.
//!
//! A link's latency and bandwidth, and the server's capacities, may follow [`Steps`] in
//! simulated time instead (a phone moving from Wi-Fi to 3G): transfers in flight are
//! re-timed at exactly the listed times.

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

/// A piecewise-constant value of simulated time: each point's value holds from its time
/// until the next point's; the first value also holds before its time.
///
/// ```
/// use flotilla_actors::net::Steps;
/// use flotilla_actors::SimTime;
/// let s = Steps::new(vec![(SimTime(0), 50e6), (SimTime(60_000_000), 2e6)]).unwrap();
/// assert_eq!(s.at(SimTime(59_999_999)), 50e6);
/// assert_eq!(s.at(SimTime(60_000_000)), 2e6);
/// assert_eq!(s.next_change_after(SimTime(1)), Some(SimTime(60_000_000)));
/// assert_eq!(s.next_change_after(SimTime(60_000_000)), None);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Steps(Arc<[(SimTime, f64)]>);

impl Steps {
    /// Steps through `points`, which must be non-empty with strictly increasing times.
    pub fn new(points: Vec<(SimTime, f64)>) -> Result<Self, String> {
        if points.is_empty() {
            return Err("needs at least one (time, value) point".into());
        }
        if let Some(w) = points.windows(2).find(|w| w[1].0 <= w[0].0) {
            return Err(format!(
                "times must increase: {} is not after {}",
                w[1].0, w[0].0
            ));
        }
        Ok(Self(points.into()))
    }

    /// The value at `t`.
    pub fn at(&self, t: SimTime) -> f64 {
        let i = self.0.partition_point(|(time, _)| *time <= t);
        self.0[i.saturating_sub(1)].1
    }

    /// The first time after `t` at which the value changes.
    pub fn next_change_after(&self, t: SimTime) -> Option<SimTime> {
        let i = self.0.partition_point(|(time, _)| *time <= t);
        self.0.get(i).map(|(time, _)| *time)
    }

    /// The points, in order.
    pub fn points(&self) -> &[(SimTime, f64)] {
        &self.0
    }
}

/// A link quantity: drawn afresh for every attempt, or following steps in simulated time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum LinkValue {
    Draw(Dist),
    Steps(Steps),
}

/// A rate over time: fixed, or following steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Rate {
    Fixed(f64),
    Steps(Steps),
}

impl Rate {
    /// The rate at `t`.
    pub fn at(&self, t: SimTime) -> f64 {
        match self {
            Rate::Fixed(v) => *v,
            Rate::Steps(s) => s.at(t),
        }
    }

    /// When the rate next changes after `t`.
    pub fn next_change_after(&self, t: SimTime) -> Option<SimTime> {
        match self {
            Rate::Fixed(_) => None,
            Rate::Steps(s) => s.next_change_after(t),
        }
    }
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
    /// Attempts under way, by attempt number: rarely more than one, so a short list.
    in_flight: Vec<(u64, InFlight)>,
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

/// One attempt's bits crossing the server's shared capacity.
#[derive(Clone, Debug)]
pub struct Transfer {
    pub link: LinkId,
    pub attempt: u64,
    pub bits: f64,
    /// The sending link's own bandwidth (bits/s): this transfer never goes faster.
    pub cap: Rate,
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
/// use flotilla_actors::net::{Direction, LinkId, Rate, SharedCapacity, Transfer};
/// use flotilla_actors::SimTime;
/// // 10 Mbit/s shared by two 1 Mbit transfers with fast links: each gets 5 Mbit/s.
/// let mut c = SharedCapacity::new(Some(Rate::Fixed(10e6)));
/// for client in 0..2 {
///     let link = LinkId { client, dir: Direction::Up };
///     let cap = Rate::Fixed(1e9);
///     c.start(SimTime::ZERO, Transfer { link, attempt: 0, bits: 1e6, cap, latency: SimTime::ZERO });
/// }
/// assert_eq!(c.next_completion(), Some(SimTime(200_000)));
/// ```
pub struct SharedCapacity {
    capacity: Option<Rate>,
    active: BTreeMap<u64, Active>,
    next_id: u64,
    last: SimTime,
}

impl SharedCapacity {
    /// A capacity in bits per second, or unlimited.
    pub fn new(capacity: Option<Rate>) -> Self {
        Self {
            capacity,
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

    /// When the next transfer finishes at the current rates, or the rates next change,
    /// whichever comes first.
    pub fn next_completion(&self) -> Option<SimTime> {
        let finish = self
            .active
            .values()
            .map(|a| self.last + SimTime::from_secs_ceil(a.remaining_bits / a.rate_bps))
            .min()?;
        let change = self
            .active
            .values()
            .filter_map(|a| a.transfer.cap.next_change_after(self.last))
            .chain(
                self.capacity
                    .as_ref()
                    .and_then(|c| c.next_change_after(self.last)),
            )
            .min();
        Some(change.map_or(finish, |c| c.min(finish)))
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
        let now = self.last;
        let cap = |a: &Active| a.transfer.cap.at(now).max(MIN_BANDWIDTH);
        let Some(capacity) = self.capacity.as_ref().map(|c| c.at(now).max(MIN_BANDWIDTH)) else {
            for a in self.active.values_mut() {
                a.rate_bps = cap(a);
            }
            return;
        };
        let mut order: Vec<(f64, u64)> = self.active.iter().map(|(&id, a)| (cap(a), id)).collect();
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
    pub fn new(dir: Direction, capacity: Option<Rate>) -> Self {
        Self {
            dir,
            capacity: SharedCapacity::new(capacity),
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
            cap: Rate::Fixed(cap),
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
        let mut c = SharedCapacity::new(Some(Rate::Fixed(30e6)));
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
    fn bandwidth_steps_retime_at_exactly_the_listed_times() {
        // 1 Mbit at 1 Mbit/s for 0.5 s, then 0.25 Mbit/s: 0.5 Mbit left takes 2 s more.
        let steps = Steps::new(vec![(SimTime::ZERO, 1e6), (SimTime(500_000), 0.25e6)]).unwrap();
        let mut c = SharedCapacity::new(None);
        let mut t = transfer(0, 1e6, 0.0);
        t.cap = Rate::Steps(steps);
        c.start(SimTime::ZERO, t);
        assert_eq!(c.next_completion(), Some(SimTime(500_000)));
        assert_eq!(drain(&mut c), vec![(SimTime(2_500_000), 0)]);
    }

    #[test]
    fn capacity_steps_reshare_running_transfers() {
        // 4 Mbit/s shared by two 2 Mbit transfers; at 0.5 s the capacity drops to 1 Mbit/s.
        // Each has 1 Mbit left at 0.5 Mbit/s: both finish at 2.5 s.
        let steps = Steps::new(vec![(SimTime::ZERO, 4e6), (SimTime(500_000), 1e6)]).unwrap();
        let mut c = SharedCapacity::new(Some(Rate::Steps(steps)));
        c.start(SimTime::ZERO, transfer(0, 2e6, 1e9));
        c.start(SimTime::ZERO, transfer(1, 2e6, 1e9));
        assert_eq!(
            drain(&mut c),
            vec![(SimTime(2_500_000), 0), (SimTime(2_500_000), 1)]
        );
    }

    #[test]
    fn steps_reject_unordered_times() {
        assert!(Steps::new(vec![]).is_err());
        assert!(Steps::new(vec![(SimTime(5), 1.0), (SimTime(5), 2.0)]).is_err());
    }

    #[test]
    fn late_arrival_retimes_the_running_transfer() {
        // 8 Mbit/s: A (8 Mbit) alone for 0.5 s, then shares with B (2 Mbit).
        let mut c = SharedCapacity::new(Some(Rate::Fixed(8e6)));
        c.start(SimTime::ZERO, transfer(0, 8e6, 1e9));
        c.start(SimTime(500_000), transfer(1, 2e6, 1e9));
        // B: 2 Mbit at 4 Mbit/s -> t = 1.0 s; A has 4 - 2 = 2 Mbit left, alone -> t = 1.25 s.
        assert_eq!(
            drain(&mut c),
            vec![(SimTime(1_000_000), 1), (SimTime(1_250_000), 0)]
        );
    }
}

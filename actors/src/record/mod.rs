//! What a run records: counters, per-client statistics, the evaluation timeline.
//!
//! Here the records and how events add to them; `rows.rs` holds the rows of the run's
//! CSV files (clients, updates, availability, activity, timeline, clusterings).

mod rows;

pub use rows::{
    ActivityRecord, AvailabilityRecord, ClientState, ClientStats, ClusteringRecord, TimelineRow,
    UpdateRecord,
};

use std::collections::BTreeMap;

use serde::Serialize;

use crate::learner::ClientId;
use crate::net::{Direction, LinkId};
use crate::time::SimTime;

/// Why an update was not applied.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DiscardReason {
    /// It arrived after its round had closed (deadline passed or enough updates in).
    Late,
    /// It was older than the strategy accepts (FedBuff's maximum staleness).
    Stale,
    /// It held a NaN or an infinite value (the client's training diverged).
    NonFinite,
    /// It was trained on no samples, so it carries no weight in any mean.
    Empty,
}

impl DiscardReason {
    /// Every reason.
    pub(crate) const ALL: [DiscardReason; 4] = [
        DiscardReason::Late,
        DiscardReason::Stale,
        DiscardReason::NonFinite,
        DiscardReason::Empty,
    ];

    /// The reason as a metric label (and in `summary.json`).
    pub fn as_str(self) -> &'static str {
        match self {
            DiscardReason::Late => "late",
            DiscardReason::Stale => "stale",
            DiscardReason::NonFinite => "non_finite",
            DiscardReason::Empty => "empty",
        }
    }
}

/// The nearest-rank `p`-quantile (`0 < p <= 1`) of sorted values; `None` when empty.
///
/// ```
/// use flotilla_actors::record::nearest_rank;
/// let v = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
/// assert_eq!(nearest_rank(&v, 0.1), Some(1));
/// assert_eq!(nearest_rank(&v, 0.5), Some(5));
/// assert_eq!(nearest_rank(&v, 0.99), Some(10));
/// assert_eq!(nearest_rank::<u64>(&[], 0.5), None);
/// ```
pub fn nearest_rank<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    let rank = ((p * sorted.len() as f64).ceil() as usize).max(1);
    sorted.get(rank - 1).copied()
}

/// The counters an evaluation's timeline row reports, as they stood when it started.
#[derive(Clone, Debug)]
pub(crate) struct Progress {
    pub(crate) cluster_purity: Option<f64>,
    pub(crate) updates_applied: u64,
    pub(crate) updates_discarded: u64,
    pub(crate) bytes_up: u64,
    pub(crate) bytes_down: u64,
}

/// Everything the actors record during a run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Records {
    /// Bytes sent from clients to the server, every attempt.
    pub bytes_up: u64,
    /// Bytes sent from the server to clients, every attempt.
    pub bytes_down: u64,
    /// Attempts to send an update.
    pub messages_up: u64,
    /// Attempts to send a model.
    pub messages_down: u64,
    /// Attempts lost on a link (each retried or given up).
    pub messages_lost: u64,
    /// Messages given up after their last retry.
    pub messages_given_up: u64,
    /// Updates that reached the server.
    pub updates_received: u64,
    /// Updates aggregated into a model.
    pub updates_applied: u64,
    /// Updates received but not aggregated, by reason.
    pub updates_discarded: BTreeMap<DiscardReason, u64>,
    /// Jobs and transfers lost to dropouts and devices going offline.
    pub dropouts: u64,
    /// Aggregations applied to the global model.
    pub model_version: u64,
    /// Rounds completed (synchronous algorithms; aggregations for asynchronous ones).
    pub rounds: u32,
    /// Simulated duration of each completed round.
    pub round_seconds: Vec<f64>,
    /// Per-client statistics, by client id.
    pub clients: Vec<ClientStats>,
    /// Every evaluation, in order.
    pub timeline: Vec<TimelineRow>,
    /// Every update that reached the server, in arrival order (empty when a
    /// [`RecordSink`] took them).
    pub updates: Vec<UpdateRecord>,
    /// Updates by staleness on arrival: `staleness[s]` arrived `s` versions old.
    pub staleness: Vec<u64>,
    /// Every change of a device's availability, and the initial state of those that
    /// change (empty when a [`RecordSink`] took them).
    pub availability: Vec<AvailabilityRecord>,
    /// Every clustering of adapters, in order.
    pub clusterings: Vec<ClusteringRecord>,
    /// Every change of state of the tracked clients (a sample, for timelines).
    pub activity: Vec<ActivityRecord>,
    /// Why the run stopped before its stop rule held, in words: what a stalled server
    /// waited for, or which aggregation made the model non-finite.
    pub stop_detail: Option<String>,
    /// Where the rows that grow with the run go instead, if anywhere.
    #[serde(skip)]
    pub(crate) sink: Sink,
}

/// Takes the rows that grow with a run's length as they happen (updates, availability
/// changes), so that a long run or a large population keeps none of them in memory:
/// flotilla writes them straight to their CSV files.
pub trait RecordSink: Send {
    /// An update reached the server.
    fn update(&mut self, row: &UpdateRecord);
    /// A device went online or offline (or starts offline, or will change).
    fn availability(&mut self, row: &AvailabilityRecord);
}

/// The records' sink, if any. A copy of the records has none: rows go where the run
/// sent them, once.
#[derive(Default)]
pub(crate) struct Sink(pub(crate) Option<Box<dyn RecordSink>>);

impl Clone for Sink {
    fn clone(&self) -> Self {
        Sink(None)
    }
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Sink(streaming)"
        } else {
            "Sink(in memory)"
        })
    }
}

impl Records {
    /// Records for `classes.len()` clients of the given device classes.
    pub(crate) fn new(classes: impl IntoIterator<Item = String>) -> Self {
        Self {
            clients: classes
                .into_iter()
                .enumerate()
                .map(|(client, class)| ClientStats {
                    client,
                    class,
                    ..ClientStats::default()
                })
                .collect(),
            ..Self::default()
        }
    }

    /// The counters a timeline row reports, as they stand now.
    pub(crate) fn progress(&self) -> Progress {
        Progress {
            cluster_purity: self.clusterings.last().map(|c| c.purity),
            updates_applied: self.updates_applied,
            updates_discarded: self.updates_discarded_total(),
            bytes_up: self.bytes_up,
            bytes_down: self.bytes_down,
        }
    }

    /// Total updates discarded, whatever the reason.
    pub fn updates_discarded_total(&self) -> u64 {
        self.updates_discarded.values().sum()
    }

    pub(crate) fn on_update(&mut self, row: UpdateRecord) {
        let s = row.staleness as usize;
        if self.staleness.len() <= s {
            self.staleness.resize(s + 1, 0);
        }
        self.staleness[s] += 1;
        match &mut self.sink.0 {
            Some(sink) => sink.update(&row),
            None => self.updates.push(row),
        }
    }

    pub(crate) fn on_availability(&mut self, row: AvailabilityRecord) {
        match &mut self.sink.0 {
            Some(sink) => sink.availability(&row),
            None => self.availability.push(row),
        }
    }

    pub(crate) fn on_attempt(&mut self, link: LinkId, bytes: u64) {
        let stats = &mut self.clients[link.client];
        match link.dir {
            Direction::Up => {
                self.bytes_up += bytes;
                self.messages_up += 1;
                stats.bytes_up += bytes;
            }
            Direction::Down => {
                self.bytes_down += bytes;
                self.messages_down += 1;
                stats.bytes_down += bytes;
            }
        }
    }

    pub(crate) fn on_lost(&mut self, link: LinkId) {
        self.messages_lost += 1;
        self.clients[link.client].messages_lost += 1;
    }

    pub(crate) fn on_given_up(&mut self, _link: LinkId) {
        self.messages_given_up += 1;
    }

    pub(crate) fn on_discard(&mut self, client: ClientId, reason: DiscardReason) {
        *self.updates_discarded.entry(reason).or_default() += 1;
        self.clients[client].updates_discarded += 1;
    }

    pub(crate) fn on_applied(&mut self, client: ClientId) {
        self.updates_applied += 1;
        self.clients[client].updates_applied += 1;
    }

    pub(crate) fn on_round_end(&mut self, started: SimTime, now: SimTime) {
        self.rounds += 1;
        self.round_seconds
            .push(now.saturating_sub(started).as_secs_f64());
    }
}

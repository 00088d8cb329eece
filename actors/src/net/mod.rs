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
//!
//! This module is the model alone (what a link is, how a capacity is shared); the actors
//! that run it are in `link/`.

mod capacity;
mod exact;
mod heap;
mod spec;
mod steps;

pub(crate) use capacity::{SharedCapacity, Transfer};
pub use spec::{LinkSpec, LinkValue, MAX_LATENCY, MIN_BANDWIDTH};
pub use steps::{Rate, Steps, StepsError};

use serde::{Deserialize, Serialize};

use crate::learner::ClientId;

/// Which way a link carries messages.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) enum Direction {
    /// Client to server (updates), through the server's ingress.
    Up,
    /// Server to client (models), through the server's egress.
    Down,
}

/// One link: a client and a direction.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct LinkId {
    pub client: ClientId,
    pub dir: Direction,
}

impl Direction {
    /// The direction as a metric label.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }
}

//! What a link is: its latency and bandwidth (drawn, or following steps), loss, timeout
//! and retries.

use serde::{Deserialize, Serialize};

use super::Steps;
use crate::dist::Dist;
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
pub const MIN_BANDWIDTH: f64 = 1.0;
/// Largest latency a draw is clamped to (one day), so no clock overflows.
pub const MAX_LATENCY: f64 = 86_400.0;

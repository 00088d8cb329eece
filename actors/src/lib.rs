//! flotilla's simulation engine: virtual time, actors (clock, server, clients, links),
//! the network and device models, and the FL strategies.
//!
//! The engine knows nothing of machine learning: it moves flat parameter vectors and asks
//! a [`Learner`] to train and evaluate them. Everything is deterministic: the same
//! [`SimConfig`] and learner give the same events at the same microseconds.
//!
//! The public API is what a learner or a front end needs: [`simulate`] and its
//! [`SimConfig`] (with the device, link, wire and strategy settings in [`device`],
//! [`net`], [`wire`] and [`config`]), the [`Learner`] trait and its jobs, [`SimTime`], and the
//! [`Records`] a run leaves. The actors, events and algorithms behind them stay private.

#![warn(missing_docs)]

mod client;
mod clock;
pub mod config;
pub mod device;
pub mod dist;
mod event;
mod finite;
pub mod learner;
mod link;
mod message;
pub mod metrics;
pub mod net;
mod outcome;
mod queue;
pub mod record;
mod rng;
mod server;
mod sim;
mod strategy;
pub mod time;
pub mod wire;

pub use clock::Observer;
pub use config::{AlgorithmSpec, ClientSpec, SimConfig, StopRule};
pub use device::{SpeedUnit, Work};
pub use dist::Dist;
pub use learner::{
    ClientId, EvalJob, EvalOutcome, Learner, LearnerFailed, Params, Pending, TrainJob, TrainOutcome,
};
pub use outcome::{ClockOutcome, SimError, SimOutcome, StopReason};
pub use record::{RecordSink, Records};
pub use rng::{SimRng, client_rng};
pub use sim::{simulate, simulate_streaming};
pub use time::SimTime;
pub use wire::{Encoding, Rounding, Wire};

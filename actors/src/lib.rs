//! flotilla's simulation engine: virtual time, actors (clock, server, clients, links),
//! the network and device models, and the FL strategies.
//!
//! The engine knows nothing of machine learning: it moves flat parameter vectors and asks
//! a [`Learner`] to train and evaluate them. Everything is deterministic: the same
//! [`SimConfig`] and learner give the same events at the same microseconds.

pub mod client;
pub mod clock;
pub mod config;
pub mod device;
pub mod dist;
pub mod event;
pub mod learner;
pub mod message;
pub mod metrics;
pub mod net;
pub mod payload;
pub mod queue;
pub mod record;
pub mod rng;
pub mod server;
pub mod sim;
pub mod strategy;
pub mod time;

pub use clock::{Observer, StopReason};
pub use config::{AlgorithmSpec, ClientSpec, SimConfig};
pub use dist::Dist;
pub use learner::{ClientId, EvalJob, EvalOutcome, Learner, Pending, TrainJob, TrainOutcome};
pub use payload::{Encoding, Params, Rounding, Wire};
pub use queue::EventQueue;
pub use record::Records;
pub use server::StopRule;
pub use sim::{SimOutcome, simulate};
pub use time::SimTime;

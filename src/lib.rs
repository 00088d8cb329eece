//! flotilla: an actor-based, discrete-event simulator for asynchronous, personalized,
//! parameter-efficient federated learning of pretrained vision models.
//!
//! This crate is everything ML, files and people touch: scenario files, data, the Burn
//! models and adapters, the training pool, and the reports. The simulation engine lives in
//! [`flotilla_actors`], which never sees Burn.

#![warn(missing_docs)]

pub mod data;
mod error;
pub mod measure;
pub mod model;
mod monitor;
pub mod notice;
pub mod pool;
pub mod pretrain;
pub mod report;
pub mod run;
pub mod scenario;
pub mod sweep;

pub use error::Chain;
pub use notice::Notice;

//! Integration tests of the whole program, one binary: each module is one concern (see
//! its own header); the support modules (`common`: the small scenario and run
//! comparisons, `toy`, `trains`, `checkpoints`, `fixtures`) are shared by all.

#![allow(clippy::unwrap_used)] // a test that unwraps fails with the error it met

mod checkpoints;
mod common;
mod fixtures;
mod toy;
mod trains;

mod adapters;
mod batching;
mod bench;
mod cache;
mod cli;
mod client_traces;
mod fedscale;
mod fltac;
mod fuzz;
mod layout;
mod model;
mod monitoring;
mod pretrained;
mod pretrained_errors;
mod pretrained_runs;
mod remote;
mod resources;
mod resume;
mod run;
mod scenario_errors;
mod source_errors;
mod sources;
mod studies;

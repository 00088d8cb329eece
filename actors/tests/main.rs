//! The engine's integration tests, one binary: `engine` against closed forms, `churn`
//! availability as an invariant for every algorithm; `common` is what both share.

#![allow(clippy::unwrap_used)] // a test that unwraps fails with the error it met

mod common;

mod churn;
mod engine;

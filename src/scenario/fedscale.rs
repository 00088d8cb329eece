//! FedScale's device traces, read from its pickles: `client_device_capacity` (client id
//! -> `{computation: ms per sample, communication: kbit/s}`) and `client_behave_trace`
//! (client id -> `{active: [s], inactive: [s], finish_time: s, ...}`, online from each
//! `active[i]` to `inactive[i]`, repeating every `finish_time`).
//!
//! Each file becomes its devices in the order of their ids; which device a client is
//! drawn from the scenario's seed (see `sim_config`).

use std::collections::BTreeMap;
use std::path::Path;

use serde_pickle::{DeOptions, HashableValue, Value};

/// One device's capacity.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Capacity {
    /// Inference latency of FedScale's reference model, milliseconds per sample.
    pub computation_ms: f64,
    /// Network throughput, kbit/s (FedScale times both a download and an upload by it).
    pub communication_kbps: f64,
}

/// One device's availability: online intervals of one period, in seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Behavior {
    /// `[active, inactive]` pairs, sorted and disjoint, within the period.
    pub online: Vec<(f64, f64)>,
    /// The period (`finish_time`).
    pub period: f64,
}

/// A trace file that could not be used, and why.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file cannot be read.
    #[error("cannot read it")]
    Read(#[source] std::io::Error),
    /// The file is not a pickle.
    #[error("cannot read it as a pickle")]
    Pickle(#[source] serde_pickle::Error),
    /// The pickle is not a dictionary of devices.
    #[error("expected a dictionary of client id -> device, found {0}")]
    NotDict(&'static str),
    /// A device's entry is unusable.
    #[error("client {client}: {problem}")]
    Device {
        /// The device's id in the file.
        client: String,
        /// What is wrong.
        problem: String,
    },
    /// The file lists no device.
    #[error("it lists no device")]
    Empty,
}

/// The devices of a `client_device_capacity` pickle, by increasing id.
pub(crate) fn read_capacity(path: &Path) -> Result<Vec<Capacity>, TraceError> {
    devices(path)?
        .into_iter()
        .map(|(id, fields)| {
            let number = |name: &str| positive(&id, &fields, name);
            Ok(Capacity {
                computation_ms: number("computation")?,
                communication_kbps: number("communication")?,
            })
        })
        .collect()
}

/// The devices of a `client_behave_trace` pickle, by increasing id.
pub(crate) fn read_behavior(path: &Path) -> Result<Vec<Behavior>, TraceError> {
    devices(path)?
        .into_iter()
        .map(|(id, fields)| {
            let period = positive(&id, &fields, "finish_time")?;
            let active = list(&id, &fields, "active")?;
            let inactive = list(&id, &fields, "inactive")?;
            let bad = |problem: String| TraceError::Device {
                client: id.clone(),
                problem,
            };
            if active.len() != inactive.len() {
                return Err(bad(format!(
                    "{} active times but {} inactive ones",
                    active.len(),
                    inactive.len()
                )));
            }
            let online: Vec<(f64, f64)> = active.into_iter().zip(inactive).collect();
            let mut end = 0.0;
            for &(on, off) in &online {
                if !(on >= end && off >= on && off <= period) {
                    return Err(bad(format!(
                        "the online interval [{on}, {off}] is not sorted, disjoint and within \
                         [0, finish_time = {period}]"
                    )));
                }
                end = off;
            }
            Ok(Behavior { online, period })
        })
        .collect()
}

/// A device's fields, by name.
type Fields = BTreeMap<String, Value>;

/// The file's devices: their ids as text and their fields.
fn devices(path: &Path) -> Result<Vec<(String, Fields)>, TraceError> {
    let file = std::fs::File::open(path).map_err(TraceError::Read)?;
    let value = serde_pickle::value_from_reader(std::io::BufReader::new(file), DeOptions::new())
        .map_err(TraceError::Pickle)?;
    let Value::Dict(entries) = value else {
        return Err(TraceError::NotDict(kind(&value)));
    };
    if entries.is_empty() {
        return Err(TraceError::Empty);
    }
    entries
        .into_iter()
        .map(|(key, device)| {
            let id = match &key {
                HashableValue::I64(i) => i.to_string(),
                HashableValue::Int(i) => i.to_string(),
                HashableValue::String(s) => s.clone(),
                other => format!("{other:?}"),
            };
            let Value::Dict(fields) = device else {
                return Err(TraceError::Device {
                    client: id,
                    problem: format!("expected a dictionary, found {}", kind(&device)),
                });
            };
            let fields = fields
                .into_iter()
                .filter_map(|(k, v)| match k {
                    HashableValue::String(name) => Some((name, v)),
                    _ => None,
                })
                .collect();
            Ok((id, fields))
        })
        .collect()
}

/// The field `name` as a number.
fn number(id: &str, fields: &Fields, name: &str) -> Result<f64, TraceError> {
    let bad = |problem: String| TraceError::Device {
        client: id.to_string(),
        problem,
    };
    match fields.get(name) {
        Some(Value::F64(v)) => Ok(*v),
        Some(Value::I64(v)) => Ok(*v as f64),
        Some(other) => Err(bad(format!(
            "`{name}` should be a number, found {}",
            kind(other)
        ))),
        None => Err(bad(format!("no `{name}`"))),
    }
}

/// The field `name` as a number above zero.
fn positive(id: &str, fields: &Fields, name: &str) -> Result<f64, TraceError> {
    let v = number(id, fields, name)?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(TraceError::Device {
            client: id.to_string(),
            problem: format!("`{name}` must be > 0, got {v}"),
        })
    }
}

/// The field `name` as a list of numbers.
fn list(id: &str, fields: &Fields, name: &str) -> Result<Vec<f64>, TraceError> {
    let bad = |problem: String| TraceError::Device {
        client: id.to_string(),
        problem,
    };
    let items = match fields.get(name) {
        Some(Value::List(items) | Value::Tuple(items)) => items,
        Some(other) => {
            return Err(bad(format!(
                "`{name}` should be a list, found {}",
                kind(other)
            )));
        }
        None => return Err(bad(format!("no `{name}`"))),
    };
    items
        .iter()
        .map(|v| match v {
            Value::F64(x) if x.is_finite() => Ok(*x),
            Value::I64(x) => Ok(*x as f64),
            other => Err(bad(format!("`{name}` holds {}, not a number", kind(other)))),
        })
        .collect()
}

/// A Python value's kind, for messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::None => "None",
        Value::Bool(_) => "a bool",
        Value::I64(_) | Value::Int(_) => "an int",
        Value::F64(_) => "a float",
        Value::Bytes(_) => "bytes",
        Value::String(_) => "a string",
        Value::List(_) => "a list",
        Value::Tuple(_) => "a tuple",
        Value::Set(_) | Value::FrozenSet(_) => "a set",
        Value::Dict(_) => "a dictionary",
    }
}

//! Trace files a scenario names: availability traces (`client,start,end`) and value
//! traces (`time,value`) for links and the server's capacity, as CSV; FedScale's device
//! traces, as pickles.

use flotilla_actors::SimTime;
use flotilla_actors::net::Steps;

use super::fedscale::{Behavior, Capacity, TraceError, read_behavior, read_capacity};
use super::units::{Duration, Quantity, Unit};
use super::{AvailabilitySection, DeviceClass, DistSpec};
use super::{Loaded, ScenarioError};
use flotilla_actors::device::Availability;

/// A trace file, read whole: rows of comma-separated cells, blank lines and `#` comments
/// skipped; errors name the scenario field, the file and the line.
struct TraceFile<'a> {
    loaded: &'a Loaded,
    field: &'a str,
    name: &'a str,
    text: String,
}

/// A problem of a file the scenario names, with the file's name as written there.
#[derive(Debug, thiserror::Error)]
#[error("{name}")]
struct InFile<E: std::error::Error + 'static> {
    name: String,
    source: E,
}

impl<'a> TraceFile<'a> {
    /// Reads `name` (relative to the scenario) for `field`.
    fn open(loaded: &'a Loaded, field: &'a str, name: &'a str) -> Result<Self, ScenarioError> {
        let path = loaded.path(name);
        let text = std::fs::read_to_string(&path).map_err(|source| ScenarioError::Unreadable {
            file: loaded.file.clone(),
            field: field.to_string(),
            name: name.to_string(),
            path,
            source,
        })?;
        Ok(Self {
            loaded,
            field,
            name,
            text,
        })
    }

    /// Each row: its line number (from 1), the trimmed line and its trimmed cells.
    fn rows(&self) -> impl Iterator<Item = (usize, &str, Vec<&str>)> {
        self.text.lines().enumerate().filter_map(|(n, line)| {
            let line = line.trim();
            (!line.is_empty() && !line.starts_with('#'))
                .then(|| (n + 1, line, line.split(',').map(str::trim).collect()))
        })
    }

    /// An error at line `line`.
    fn at(&self, line: usize, message: impl std::fmt::Display) -> ScenarioError {
        self.loaded
            .invalid(self.field, format!("{}:{line}: {message}", self.name))
    }

    /// An error about the whole file.
    fn whole(&self, message: impl std::fmt::Display) -> ScenarioError {
        self.loaded
            .invalid(self.field, format!("{}: {message}", self.name))
    }
}

impl Loaded {
    /// Reads population[`class`]'s availability trace: per client of the class, its online
    /// intervals, sorted.
    pub(super) fn read_trace(
        &self,
        class: usize,
        file: &str,
        count: usize,
    ) -> Result<Vec<Vec<(SimTime, SimTime)>>, ScenarioError> {
        let field = format!("population[{class}].availability.file");
        let trace = TraceFile::open(self, &field, file)?;
        let mut traces = vec![Vec::new(); count];
        for (n, line, cells) in trace.rows() {
            if n == 1 && cells[0].starts_with("client") {
                continue;
            }
            let [client, start, end] = cells[..] else {
                return Err(trace.at(n, format!("expected client,start,end, got \"{line}\"")));
            };
            let client: usize = client
                .parse()
                .map_err(|_| trace.at(n, format!("client \"{client}\" is not an index")))?;
            if client >= count {
                return Err(trace.at(
                    n,
                    format!("client {client} is not in the class (count {count})"),
                ));
            }
            let secs = |v: &str| {
                v.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && *x >= 0.0)
                    .ok_or_else(|| trace.at(n, format!("\"{v}\" is not a time in seconds")))
            };
            let (start, end) = (secs(start)?, secs(end)?);
            if end <= start {
                return Err(trace.at(n, format!("end ({end}) must be after start ({start})")));
            }
            traces[client].push((SimTime::from_secs_ceil(start), SimTime::from_secs_ceil(end)));
        }
        for (client, intervals) in traces.iter_mut().enumerate() {
            intervals.sort();
            if intervals.windows(2).any(|w| w[1].0 < w[0].1) {
                return Err(trace.whole(format!("client {client} has overlapping intervals")));
            }
        }
        Ok(traces)
    }

    /// Reads a `time,value` trace as steps; a first line that is not a time is a header.
    /// Cells may carry units; bare numbers are seconds and base units.
    pub(super) fn read_steps<U: Unit>(
        &self,
        file: &str,
        field: &str,
    ) -> Result<Steps, ScenarioError> {
        let trace = TraceFile::open(self, field, file)?;
        let mut points = Vec::new();
        for (n, line, cells) in trace.rows() {
            let [time, value] = cells[..] else {
                return Err(trace.at(n, format!("expected time,value, got \"{line}\"")));
            };
            match trace.point::<U>(n, time, value, points.is_empty())? {
                Some(point) => points.push(point),
                None => continue,
            }
        }
        Steps::new(points).map_err(|e| trace.whole(e))
    }

    /// Reads a `client,time,value` trace: the steps of each of the class's `count`
    /// clients (by index in the class), every one of which must have rows.
    pub(super) fn read_client_steps<U: Unit>(
        &self,
        file: &str,
        field: &str,
        count: usize,
    ) -> Result<Vec<Steps>, ScenarioError> {
        let trace = TraceFile::open(self, field, file)?;
        let mut points = vec![Vec::new(); count];
        for (n, line, cells) in trace.rows() {
            let [client, time, value] = cells[..] else {
                return Err(trace.at(n, format!("expected client,time,value, got \"{line}\"")));
            };
            let Ok(client) = client.parse::<usize>() else {
                if n == 1 && client.starts_with("client") {
                    continue;
                }
                return Err(trace.at(n, format!("client \"{client}\" is not an index")));
            };
            if client >= count {
                return Err(trace.at(
                    n,
                    format!("client {client} is not in the class (count {count})"),
                ));
            }
            if let Some(point) = trace.point::<U>(n, time, value, false)? {
                points[client].push(point);
            }
        }
        points
            .into_iter()
            .enumerate()
            .map(|(client, p)| {
                Steps::new(p).map_err(|source| {
                    trace.loaded.refused(
                        trace.field,
                        InFile {
                            name: format!("{}: client {client}", trace.name),
                            source,
                        },
                    )
                })
            })
            .collect()
    }
}

impl TraceFile<'_> {
    /// The `(time, value)` of line `n`; `None` for a header (a first line that is not a
    /// time, when `header` allows one).
    fn point<U: Unit>(
        &self,
        n: usize,
        time: &str,
        value: &str,
        header: bool,
    ) -> Result<Option<(SimTime, f64)>, ScenarioError> {
        let time = match (time.parse::<f64>(), Duration::parse(time)) {
            (Ok(t), _) if t.is_finite() && t >= 0.0 => t,
            (_, Ok(d)) => d.value(),
            _ if header && n == 1 => return Ok(None),
            (_, Err(e)) => return Err(self.at(n, e)),
        };
        let value = match (value.parse::<f64>(), Quantity::<U>::parse(value)) {
            (Ok(v), _) if v.is_finite() && v >= 0.0 => v,
            (_, Ok(q)) => q.value(),
            (_, Err(e)) => return Err(self.at(n, e)),
        };
        Ok(Some((SimTime::from_secs_ceil(time), value)))
    }
}

/// The class's FedScale traces that its fields use, read (each file once per class).
#[derive(Default)]
pub(super) struct ClassTraces {
    pub(super) capacity: Option<Vec<Capacity>>,
    pub(super) behavior: Option<Vec<Behavior>>,
}

/// A FedScale behaviour as the engine's periodic availability.
pub(super) fn periodic(b: &Behavior) -> Availability {
    Availability::Periodic {
        on: b
            .online
            .iter()
            .map(|&(on, off)| (SimTime::from_secs_ceil(on), SimTime::from_secs_ceil(off)))
            .collect(),
        period: SimTime::from_secs_ceil(b.period).max(SimTime(1)),
    }
}

impl Loaded {
    /// Reads the trace files class `i`'s `Traces` fields need; a field written `Traces`
    /// without its file is refused by name.
    pub(super) fn class_traces(
        &self,
        i: usize,
        c: &DeviceClass,
    ) -> Result<ClassTraces, ScenarioError> {
        let field = |f: &str| format!("population[{i}].{f}");
        let wants_capacity = matches!(c.speed, DistSpec::Traces)
            || matches!(c.uplink.bandwidth, DistSpec::Traces)
            || matches!(c.downlink.bandwidth, DistSpec::Traces);
        let wants_behavior = matches!(c.availability, AvailabilitySection::Traces);
        let section = c.traces.as_ref();
        let read = |want: bool, file: Option<&String>, what: &str| match (want, file.cloned()) {
            (false, _) => Ok(None),
            (true, None) => Err(self.invalid(
                field(&format!("traces.{what}")),
                format!("fields written `Traces` need the class's traces.{what} file"),
            )),
            (true, Some(name)) => {
                let path = self.path(&name);
                Ok(Some((name, path)))
            }
        };
        let refuse = |what: &str, name: &String, source: TraceError| {
            let name = name.clone();
            self.refused(field(&format!("traces.{what}")), InFile { name, source })
        };
        let mut out = ClassTraces::default();
        if let Some((name, path)) = read(
            wants_capacity,
            section.and_then(|t| t.capacity.as_ref()),
            "capacity",
        )? {
            out.capacity = Some(read_capacity(&path).map_err(|e| refuse("capacity", &name, e))?);
        }
        if let Some((name, path)) = read(
            wants_behavior,
            section.and_then(|t| t.behavior.as_ref()),
            "behavior",
        )? {
            out.behavior = Some(read_behavior(&path).map_err(|e| refuse("behavior", &name, e))?);
        }
        Ok(out)
    }
}

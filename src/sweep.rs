//! Sweeps: a scenario's `sweep` section expanded into points, each run to its own
//! directory, then `sweep.csv` (one row per point) and a comparison report.
//!
//! A field is named by its path in the scenario (`population[1].count`,
//! `algorithm.clients_per_round`); the path passes through enum variants, so
//! `algorithm.deadline` reaches FedAvg's deadline. Values are written as in the scenario.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::report::Summary;
use crate::report::plots::{self, LineChart, Series};
use crate::run::{RunError, RunOptions, run};
use crate::scenario::{Loaded, Scenario, ScenarioError, SweepAxis, SweepSection, SweepValue};

/// One point of a sweep: its scenario and its place in the grid.
#[derive(Clone, Debug)]
pub struct Point {
    /// Position in the grid, from 0 (the first axis varies slowest, repeats fastest).
    pub index: usize,
    /// One label per axis.
    pub labels: Vec<String>,
    pub repeat: u32,
    pub loaded: Loaded,
}

impl Point {
    /// The point's directory name: its index and labels.
    pub fn dir_name(&self) -> String {
        let mut name = format!("p{:03}", self.index);
        for l in &self.labels {
            name.push('-');
            name.extend(l.chars().map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' {
                    c
                } else {
                    '_'
                }
            }));
        }
        if self.repeat > 0 {
            name += &format!("-r{}", self.repeat);
        }
        name
    }
}

/// The axes' names (their `name`, else the field).
pub fn axis_names(sweep: &SweepSection) -> Vec<String> {
    sweep
        .axes
        .iter()
        .map(|a| a.name.clone().unwrap_or_else(|| a.field.clone()))
        .collect()
}

/// Expands the scenario's sweep into validated points; `None` without a sweep section.
pub fn points(loaded: &Loaded) -> Result<Option<Vec<Point>>, ScenarioError> {
    let Some(sweep) = &loaded.scenario.sweep else {
        return Ok(None);
    };
    let invalid = |field: String, message: String| ScenarioError::Invalid {
        file: loaded.file.clone(),
        field,
        message,
    };
    if sweep.axes.is_empty() {
        return Err(invalid(
            "sweep.axes".into(),
            "name at least one axis".into(),
        ));
    }
    if sweep.repeat == 0 {
        return Err(invalid("sweep.repeat".into(), "must be at least 1".into()));
    }
    let mut base = loaded.scenario.clone();
    base.sweep = None;
    let base = serde_json::to_value(&base).expect("a scenario serializes to JSON");
    // Check every axis's paths and values once, against the base scenario.
    let mut labels = Vec::new();
    for (a, axis) in sweep.axes.iter().enumerate() {
        let at = |f: &str| format!("sweep.axes[{a}].{f}");
        if axis.values.is_empty() {
            return Err(invalid(at("values"), "list at least one value".into()));
        }
        if !axis.labels.is_empty() && axis.labels.len() != axis.values.len() {
            return Err(invalid(
                at("labels"),
                format!(
                    "{} labels for {} values",
                    axis.labels.len(),
                    axis.values.len()
                ),
            ));
        }
        for (v, value) in axis.values.iter().enumerate() {
            let mut probe = base.clone();
            apply(&mut probe, axis, value).map_err(|e| invalid(at("field"), e))?;
            serde_json::from_value::<Scenario>(probe)
                .map_err(|e| invalid(format!("sweep.axes[{a}].values[{v}]"), e.to_string()))?;
        }
        labels.push(if axis.labels.is_empty() {
            axis.values
                .iter()
                .map(|SweepValue::Value(v)| label(v))
                .collect()
        } else {
            axis.labels.clone()
        });
    }
    let mut out = Vec::new();
    let sizes: Vec<usize> = sweep.axes.iter().map(|a| a.values.len()).collect();
    let combos: usize = sizes.iter().product();
    for combo in 0..combos {
        // Mixed-radix digits, the first axis most significant.
        let mut rest = combo;
        let mut choice = vec![0; sizes.len()];
        for (i, &n) in sizes.iter().enumerate().rev() {
            choice[i] = rest % n;
            rest /= n;
        }
        let mut json = base.clone();
        for (axis, &c) in sweep.axes.iter().zip(&choice) {
            apply(&mut json, axis, &axis.values[c]).expect("checked above");
        }
        let scenario: Scenario = serde_json::from_value(json).expect("checked above");
        let point_labels: Vec<String> = choice
            .iter()
            .enumerate()
            .map(|(a, &c)| labels[a][c].clone())
            .collect();
        for repeat in 0..sweep.repeat {
            let mut scenario = scenario.clone();
            scenario.seed = scenario.seed.wrapping_add(repeat as u64);
            // Points share one process: only a single run may serve metrics.
            scenario.monitoring.prometheus = None;
            let point = Loaded {
                scenario,
                file: loaded.file.clone(),
                base: loaded.base.clone(),
            };
            point.validate().map_err(|e| {
                invalid(
                    "sweep".into(),
                    format!("the point {} is invalid: {e}", point_labels.join(", ")),
                )
            })?;
            out.push(Point {
                index: out.len(),
                labels: point_labels.clone(),
                repeat,
                loaded: point,
            });
        }
    }
    Ok(Some(out))
}

/// Sets the axis's field(s) to `value` in a scenario's JSON form.
fn apply(
    json: &mut Value,
    axis: &SweepAxis,
    SweepValue::Value(value): &SweepValue,
) -> Result<(), String> {
    let fields: Vec<&str> = axis.field.split(',').map(str::trim).collect();
    if fields.len() == 1 {
        return set(json, fields[0], value.clone());
    }
    let Value::Array(parts) = value else {
        return Err(format!(
            "{} fields are set together, so each value must list {} entries, e.g. ({}), got {value}",
            fields.len(),
            fields.len(),
            vec!["..."; fields.len()].join(", ")
        ));
    };
    if parts.len() != fields.len() {
        return Err(format!(
            "{} fields but a value with {} entries: {value}",
            fields.len(),
            parts.len()
        ));
    }
    for (f, v) in fields.iter().zip(parts) {
        set(json, f, v.clone())?;
    }
    Ok(())
}

/// The scenario with `assignments` applied in order (see [`override_field`]).
pub fn override_fields(loaded: Loaded, assignments: &[String]) -> Result<Loaded, ScenarioError> {
    assignments
        .iter()
        .try_fold(loaded, |l, assignment| override_field(&l, assignment))
}

/// The scenario with one field changed: `assignment` is `path=value`, the value written as
/// in the scenario (RON), e.g. `pool.backend=Tch` or `training.batch_size=64`.
pub fn override_field(loaded: &Loaded, assignment: &str) -> Result<Loaded, ScenarioError> {
    let invalid = |message: String| ScenarioError::Invalid {
        file: loaded.file.clone(),
        field: format!("--set {assignment}"),
        message,
    };
    let Some((path, text)) = assignment.split_once('=') else {
        return Err(invalid(
            "write it as path=value, e.g. pool.backend=Tch".into(),
        ));
    };
    let SweepValue::Value(value) = crate::scenario::ron_options()
        .from_str::<SweepValue>(text.trim())
        .map_err(|e| invalid(format!("the value is not RON: {e}")))?;
    let mut json = serde_json::to_value(&loaded.scenario).expect("a scenario serializes to JSON");
    set(&mut json, path.trim(), value).map_err(invalid)?;
    let mut scenario: Scenario =
        serde_json::from_value(json).map_err(|e| invalid(e.to_string()))?;
    scenario.sweep = loaded.scenario.sweep.clone();
    let out = Loaded {
        scenario,
        file: loaded.file.clone(),
        base: loaded.base.clone(),
    };
    out.validate()?;
    Ok(out)
}

/// Sets the field at `path` (`a.b[2].c`) of `root` to `value`; enum variants are passed
/// through. Errors name the path and list the valid fields where it went wrong.
pub fn set(root: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let mut node = root;
    let mut walked = String::new();
    for seg in segments(path)? {
        node = step(node, &seg, &walked)?;
        match seg {
            Seg::Key(k) => {
                if !walked.is_empty() {
                    walked.push('.');
                }
                walked += &k;
            }
            Seg::Index(i) => walked += &format!("[{i}]"),
        }
    }
    *node = value;
    Ok(())
}

#[derive(Debug)]
enum Seg {
    Key(String),
    Index(usize),
}

fn segments(path: &str) -> Result<Vec<Seg>, String> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = part.split_at(part.find('[').unwrap_or(part.len()));
        if key.is_empty() && (out.is_empty() || rest.is_empty()) {
            return Err(format!(
                "`{path}` is not a field path (like `population[0].count`)"
            ));
        }
        if !key.is_empty() {
            out.push(Seg::Key(key.to_string()));
        }
        while let Some(r) = rest.strip_prefix('[') {
            let end = r
                .find(']')
                .ok_or_else(|| format!("`{path}`: unclosed `[`"))?;
            let i = r[..end]
                .parse()
                .map_err(|_| format!("`{path}`: `{}` is not an index", &r[..end]))?;
            out.push(Seg::Index(i));
            rest = &r[end + 1..];
        }
        if !rest.is_empty() {
            return Err(format!("`{path}`: unexpected `{rest}`"));
        }
    }
    Ok(out)
}

/// Whether `map` is an enum variant's JSON form: a single key naming the variant.
fn variant(map: &serde_json::Map<String, Value>) -> bool {
    map.len() == 1 && map.keys().all(|k| k.starts_with(char::is_uppercase))
}

fn step<'a>(node: &'a mut Value, seg: &Seg, walked: &str) -> Result<&'a mut Value, String> {
    let here = if walked.is_empty() {
        "the scenario"
    } else {
        walked
    };
    // An enum variant is passed through unless the segment names it.
    let through = matches!(&*node, Value::Object(map)
        if variant(map) && !matches!(seg, Seg::Key(k) if map.contains_key(k)));
    if through {
        let inner = match node {
            Value::Object(map) => map.values_mut().next(),
            _ => None,
        };
        return step(inner.expect("a variant holds one value"), seg, walked);
    }
    match (node, seg) {
        (Value::Object(map), Seg::Key(k)) => {
            if map.contains_key(k) {
                return Ok(map.get_mut(k).expect("present"));
            }
            let mut valid: Vec<&str> = map.keys().map(String::as_str).collect();
            valid.sort_unstable();
            Err(format!(
                "{here} has no field `{k}`; valid fields: {}",
                valid.join(", ")
            ))
        }
        (Value::Array(items), Seg::Index(i)) => {
            let n = items.len();
            items
                .get_mut(*i)
                .ok_or_else(|| format!("{here} has {n} entries, so [{i}] is out of range"))
        }
        (Value::Array(_), Seg::Key(k)) => Err(format!(
            "{here} is a list: pick an entry first, e.g. `{walked}[0].{k}`"
        )),
        (other, seg) => Err(format!(
            "{here} is {}, which has no {}",
            match other {
                Value::Null => "not set (none)".to_string(),
                Value::String(s) => format!("the value \"{s}\""),
                v => format!("the value {v}"),
            },
            match seg {
                Seg::Key(k) => format!("field `{k}`"),
                Seg::Index(i) => format!("entry [{i}]"),
            }
        )),
    }
}

/// A short label for a value: strings as they are, enum variants with their scalars.
pub fn label(v: &Value) -> String {
    match v {
        Value::Null => "none".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => items.iter().map(label).collect::<Vec<_>>().join("/"),
        Value::Object(map) if variant(map) => {
            let (name, inner) = map.iter().next().expect("one variant");
            let scalars: Vec<String> = match inner {
                Value::Object(fields) => fields
                    .values()
                    .filter(|f| !f.is_object() && !f.is_array())
                    .map(label)
                    .collect(),
                Value::Array(_) => vec![],
                other => vec![label(other)],
            };
            if scalars.is_empty() {
                name.clone()
            } else {
                format!("{name}({})", scalars.join(", "))
            }
        }
        Value::Object(map) => map.values().map(label).collect::<Vec<_>>().join("/"),
    }
}

/// Options of a sweep.
pub struct SweepOptions {
    pub out: Option<PathBuf>,
    /// Print a line as each point ends.
    pub progress: bool,
    pub interrupt: Arc<AtomicBool>,
}

/// Runs every point (several at once when `sweep.parallel` says so), then writes
/// `sweep.csv` and the report. Returns the sweep's directory and its data.
pub fn run_sweep(
    loaded: &Loaded,
    points: Vec<Point>,
    opts: SweepOptions,
) -> Result<(PathBuf, SweepData), RunError> {
    let sweep = loaded.scenario.sweep.as_ref().expect("a sweep scenario");
    let dir = opts.out.clone().unwrap_or_else(|| {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Path::new("runs").join(format!("{}-{secs}", loaded.scenario.name))
    });
    let failed = |e: std::io::Error| RunError::Failed(format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(&dir).map_err(failed)?;
    std::fs::copy(&loaded.file, dir.join("sweep.ron")).map_err(failed)?;
    let parallel = sweep.parallel.clamp(1, points.len().max(1));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Summary, String>>>> = Mutex::new(vec![None; points.len()]);
    std::thread::scope(|scope| {
        for _ in 0..parallel {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= points.len() || opts.interrupt.load(Ordering::Relaxed) {
                        break;
                    }
                    let p = &points[i];
                    let mut loaded = p.loaded.clone();
                    if loaded.scenario.pool.workers == 0 {
                        loaded.scenario.pool.workers = (cores / parallel).max(1);
                    }
                    let result = run(
                        &loaded,
                        RunOptions {
                            out: Some(dir.join(p.dir_name())),
                            progress: false,
                            interrupt: opts.interrupt.clone(),
                            metrics_addr: None,
                        },
                    )
                    .map(|r| r.summary)
                    .map_err(|e| e.to_string());
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if opts.progress {
                        let what = match &result {
                            Ok(s) => format!(
                                "accuracy {}, time to target {}, {:.0} s wall",
                                s.global_accuracy
                                    .map_or("-".into(), |a| format!("{:.2}%", a * 100.0)),
                                s.time_to_target.map_or("-".into(), |t| format!("{t:.1} s")),
                                s.wall.wall_seconds
                            ),
                            Err(e) => format!("failed: {e}"),
                        };
                        eprintln!("[{n}/{}] {}: {what}", points.len(), p.labels.join(", "));
                    }
                    results.lock().expect("results lock")[i] = Some(result);
                }
            });
        }
    });
    let results = results.into_inner().expect("results lock");
    let names = axis_names(sweep);
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (p, r) in points.iter().zip(results) {
        match r {
            Some(Ok(summary)) => rows.push(SweepRow::new(p, summary)),
            Some(Err(e)) => errors.push(format!("{}: {e}", p.dir_name())),
            None => {}
        }
    }
    let data = SweepData {
        dir: dir.clone(),
        name: loaded.scenario.name.clone(),
        axes: names,
        rows,
    };
    data.write_csv().map_err(failed)?;
    write_sweep_report(&data).map_err(failed)?;
    if !errors.is_empty() {
        return Err(RunError::Failed(format!(
            "{} of {} points failed (the others are in {}): {}",
            errors.len(),
            points.len(),
            dir.display(),
            errors.join("; ")
        )));
    }
    Ok((dir, data))
}

/// One point's row of `sweep.csv`.
#[derive(Clone, Debug)]
pub struct SweepRow {
    pub dir: String,
    /// One label per axis.
    pub labels: Vec<String>,
    pub repeat: u32,
    pub seed: u64,
    pub global_accuracy: Option<f64>,
    pub personalized_accuracy: Option<f64>,
    pub time_to_target: Option<f64>,
    pub sim_seconds: f64,
    pub rounds: u32,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub staleness_p90: Option<u64>,
    pub wall_seconds: f64,
}

/// The columns of `sweep.csv` after `point,dir,<axes...>`.
const FIGURES: [&str; 11] = [
    "repeat",
    "seed",
    "global_accuracy",
    "personalized_accuracy",
    "time_to_target",
    "sim_seconds",
    "rounds",
    "bytes_up",
    "bytes_down",
    "staleness_p90",
    "wall_seconds",
];

impl SweepRow {
    fn new(p: &Point, s: Summary) -> Self {
        Self {
            dir: p.dir_name(),
            labels: p.labels.clone(),
            repeat: p.repeat,
            seed: s.seed,
            global_accuracy: s.global_accuracy,
            personalized_accuracy: s.personalized_accuracy,
            time_to_target: s.time_to_target,
            sim_seconds: s.sim_seconds,
            rounds: s.rounds.max(s.model_version as u32),
            bytes_up: s.bytes_up,
            bytes_down: s.bytes_down,
            staleness_p90: s.staleness.p90,
            wall_seconds: s.wall.wall_seconds,
        }
    }

    fn fields(&self) -> Vec<String> {
        let opt = |v: Option<f64>| v.map_or(String::new(), |x| x.to_string());
        vec![
            self.repeat.to_string(),
            self.seed.to_string(),
            opt(self.global_accuracy),
            opt(self.personalized_accuracy),
            opt(self.time_to_target),
            self.sim_seconds.to_string(),
            self.rounds.to_string(),
            self.bytes_up.to_string(),
            self.bytes_down.to_string(),
            self.staleness_p90.map_or(String::new(), |v| v.to_string()),
            self.wall_seconds.to_string(),
        ]
    }
}

/// A sweep directory's results.
#[derive(Clone, Debug)]
pub struct SweepData {
    pub dir: PathBuf,
    pub name: String,
    /// The axes' names, in order.
    pub axes: Vec<String>,
    pub rows: Vec<SweepRow>,
}

/// A sweep directory whose `sweep.csv` cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct SweepReadError {
    pub path: PathBuf,
    pub message: String,
}

impl SweepData {
    fn write_csv(&self) -> std::io::Result<()> {
        let mut w = csv::Writer::from_path(self.dir.join("sweep.csv"))?;
        let mut header = vec!["point".to_string(), "dir".to_string()];
        header.extend(self.axes.iter().cloned());
        header.extend(FIGURES.iter().map(|f| f.to_string()));
        w.write_record(&header)?;
        for (i, r) in self.rows.iter().enumerate() {
            let mut rec = vec![i.to_string(), r.dir.clone()];
            rec.extend(r.labels.iter().cloned());
            rec.extend(r.fields());
            w.write_record(&rec)?;
        }
        w.flush()
    }

    /// Reads `sweep.csv` back: the axes are the columns between `dir` and `repeat`.
    pub fn read(dir: &Path) -> Result<Self, SweepReadError> {
        let path = dir.join("sweep.csv");
        let fail = |message: String| SweepReadError {
            path: path.clone(),
            message,
        };
        let mut r = csv::Reader::from_path(&path).map_err(|e| fail(e.to_string()))?;
        let header: Vec<String> = r
            .headers()
            .map_err(|e| fail(e.to_string()))?
            .iter()
            .map(String::from)
            .collect();
        let first = header.iter().position(|h| h == "repeat");
        let (Some(first), true) = (first, header.len() == first.unwrap_or(0) + FIGURES.len())
        else {
            return Err(fail(format!(
                "expected columns point,dir,<axes...>,{}",
                FIGURES.join(",")
            )));
        };
        let axes = header[2..first].to_vec();
        let mut rows = Vec::new();
        for (n, rec) in r.records().enumerate() {
            let rec = rec.map_err(|e| fail(e.to_string()))?;
            let at = |m: &str| fail(format!("row {}: {m}", n + 1));
            let col = |i: usize| rec.get(first + i).unwrap_or("");
            let num = |i: usize| -> Result<Option<f64>, SweepReadError> {
                let c = col(i);
                if c.is_empty() {
                    return Ok(None);
                }
                c.parse()
                    .map(Some)
                    .map_err(|_| at(&format!("{} is not a number", FIGURES[i])))
            };
            let req = |i: usize| num(i)?.ok_or_else(|| at(&format!("{} is empty", FIGURES[i])));
            rows.push(SweepRow {
                dir: rec.get(1).unwrap_or("").to_string(),
                labels: (2..first)
                    .map(|i| rec.get(i).unwrap_or("").to_string())
                    .collect(),
                repeat: req(0)? as u32,
                seed: req(1)? as u64,
                global_accuracy: num(2)?,
                personalized_accuracy: num(3)?,
                time_to_target: num(4)?,
                sim_seconds: req(5)?,
                rounds: req(6)? as u32,
                bytes_up: req(7)? as u64,
                bytes_down: req(8)? as u64,
                staleness_p90: num(9)?.map(|v| v as u64),
                wall_seconds: req(10)?,
            });
        }
        let name = std::fs::read_to_string(dir.join("sweep.ron"))
            .ok()
            .and_then(|t| crate::scenario::parse(&t).ok())
            .map_or_else(
                || {
                    dir.file_name()
                        .map_or(String::new(), |n| n.to_string_lossy().into())
                },
                |s| s.name,
            );
        Ok(Self {
            dir: dir.to_path_buf(),
            name,
            axes,
            rows,
        })
    }

    /// The first axis whose labels all start with a number: the plots' x axis, with the
    /// unit its labels share.
    fn numeric_axis(&self) -> Option<(usize, String)> {
        (0..self.axes.len()).find_map(|a| {
            let parsed: Option<Vec<(f64, &str)>> = self
                .rows
                .iter()
                .map(|r| leading_number(&r.labels[a]))
                .collect();
            let parsed = parsed?;
            let unit = parsed.first().map_or("", |p| p.1);
            parsed
                .iter()
                .all(|p| p.1 == unit)
                .then(|| (a, unit.to_string()))
        })
    }

    /// The markdown table of the sweep: one row per point, repeats averaged.
    pub fn table(&self) -> String {
        let mut t = format!(
            "| {} | repeats | global acc. | personalized | time to target (s) | simulated (s) | rounds | MB up | MB down | staleness p90 |\n",
            self.axes.join(" | ")
        );
        t += &format!("|{}", " --- |".repeat(self.axes.len()));
        t += &" ---: |".repeat(9);
        t.push('\n');
        for group in self.groups() {
            let rows: Vec<&SweepRow> = group.iter().map(|&i| &self.rows[i]).collect();
            let mean = |f: &dyn Fn(&SweepRow) -> Option<f64>| {
                let v: Vec<f64> = rows.iter().filter_map(|r| f(r)).collect();
                (v.len() == rows.len() && !v.is_empty())
                    .then(|| v.iter().sum::<f64>() / v.len() as f64)
            };
            let pct = |v: Option<f64>| v.map_or("-".into(), |a| format!("{:.2}%", a * 100.0));
            let num = |v: Option<f64>, d: usize| v.map_or("-".into(), |a| format!("{a:.d$}"));
            let _ = writeln!(
                t,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                rows[0].labels.join(" | "),
                rows.len(),
                pct(mean(&|r| r.global_accuracy)),
                pct(mean(&|r| r.personalized_accuracy)),
                num(mean(&|r| r.time_to_target), 1),
                num(mean(&|r| Some(r.sim_seconds)), 1),
                num(mean(&|r| Some(r.rounds as f64)), 0),
                num(mean(&|r| Some(r.bytes_up as f64 / 1e6)), 1),
                num(mean(&|r| Some(r.bytes_down as f64 / 1e6)), 1),
                num(mean(&|r| r.staleness_p90.map(|v| v as f64)), 0),
            );
        }
        t
    }

    /// Row indices grouped by point (all repeats of one label combination), in order.
    fn groups(&self) -> Vec<Vec<usize>> {
        let mut groups: Vec<(Vec<String>, Vec<usize>)> = Vec::new();
        for (i, r) in self.rows.iter().enumerate() {
            match groups.iter_mut().find(|g| g.0 == r.labels) {
                Some(g) => g.1.push(i),
                None => groups.push((r.labels.clone(), vec![i])),
            }
        }
        groups.into_iter().map(|g| g.1).collect()
    }

    /// One series per combination of the other axes: `y` (averaged over repeats, points
    /// where it is missing in any repeat left out) against the x axis.
    fn series(&self, x_axis: usize, y: &dyn Fn(&SweepRow) -> Option<f64>) -> Vec<Series> {
        let mut series: Vec<Series> = Vec::new();
        for group in self.groups() {
            let rows: Vec<&SweepRow> = group.iter().map(|&i| &self.rows[i]).collect();
            let ys: Vec<f64> = rows.iter().filter_map(|r| y(r)).collect();
            let others: Vec<&str> = rows[0]
                .labels
                .iter()
                .enumerate()
                .filter(|(a, _)| *a != x_axis)
                .map(|(_, l)| l.as_str())
                .collect();
            let name = others.join(", ");
            let idx = match series.iter().position(|s| s.name == name) {
                Some(i) => i,
                None => {
                    series.push(Series {
                        name,
                        points: Vec::new(),
                    });
                    series.len() - 1
                }
            };
            let x = leading_number(&rows[0].labels[x_axis]).map_or(f64::NAN, |p| p.0);
            if ys.len() == rows.len() && !ys.is_empty() {
                let mean = ys.iter().sum::<f64>() / ys.len() as f64;
                series[idx].points.push((x, mean));
            }
        }
        for s in &mut series {
            s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        series
    }
}

/// The number a label starts with and the unit after it ("0.5 Mbit/s" is 0.5 and
/// "Mbit/s"; "20%" is 20 and "%").
fn leading_number(label: &str) -> Option<(f64, &str)> {
    let t = label.trim();
    let end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(t.len());
    let n: f64 = t[..end].parse().ok()?;
    Some((n, t[end..].trim()))
}

/// A figure of a sweep's row, plotted against the numeric axis.
type Figure = fn(&SweepRow) -> Option<f64>;

/// Writes the sweep's plots and `report.md`; returns the files written.
pub fn write_sweep_report(data: &SweepData) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut md = format!("# Sweep: {}\n\n", data.name);
    let _ = writeln!(
        md,
        "{} points over {}. Figures are means over repeats; time to target is left out \
         where any repeat missed the target.\n",
        data.rows.len(),
        data.axes.join(" × ")
    );
    md += &data.table();
    if let Some((x, unit)) = data.numeric_axis() {
        let xs: Vec<f64> = data
            .rows
            .iter()
            .filter_map(|r| leading_number(&r.labels[x]).map(|p| p.0))
            .collect();
        let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = xs.iter().copied().fold(0.0f64, f64::max);
        let x_log = lo > 0.0 && hi / lo >= 20.0;
        let x_label = if unit.is_empty() {
            data.axes[x].clone()
        } else {
            format!("{} ({unit})", data.axes[x])
        };
        let plots: [(&str, &str, &str, Figure); 2] = [
            (
                "time-to-target",
                "time to target",
                "simulated time to target accuracy (s)",
                |r| r.time_to_target,
            ),
            (
                "final-accuracy",
                "final accuracy",
                "final global accuracy (%)",
                |r| r.global_accuracy.map(|a| a * 100.0),
            ),
        ];
        for (stem, what, y_label, y) in &plots {
            let series = data.series(x, y);
            files.extend(plots::line_chart(
                &data.dir.join(stem),
                &LineChart {
                    title: &format!("{}: {what} vs {}", data.name, data.axes[x]),
                    x_label: &x_label,
                    y_label,
                    series: &series,
                    x_log,
                    y_range: None,
                    legend: plots::SeriesLabelPosition::UpperRight,
                },
            )?);
            let _ = write!(md, "\n![{what} vs {}]({stem}.png)\n", data.axes[x]);
        }
    }
    md += "\n## Points\n\n";
    for r in &data.rows {
        let _ = writeln!(md, "- [{}]({}/report.md)", r.labels.join(", "), r.dir);
    }
    let path = data.dir.join("report.md");
    std::fs::write(&path, md)?;
    files.push(path);
    Ok(files)
}

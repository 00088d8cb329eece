//! Scenario files: RON parsed with serde, then checked field by field.
//!
//! Every problem becomes one [`ScenarioError`] naming the file and either the line and
//! column (syntax, unknown fields, wrong types, bad units) or the field path (values that
//! parse but make no sense together).

mod schema;
mod units;

pub use schema::*;
pub use units::{BitRate, Bytes, Duration, Quantity, Rate, SampleRate, Secs, Size, Speed, Unit};

use std::path::{Path, PathBuf};

use flotilla_actors::device::{Availability, DeviceSpec};
use flotilla_actors::net::{LinkSpec, LinkValue, Rate as RateOverTime, Steps};
use flotilla_actors::strategy::{
    Clustering, FedAsyncConfig, FedAvgConfig, FedBuffConfig, MAX_CLUSTERS, Staleness,
};
use flotilla_actors::{
    AlgorithmSpec, ClientSpec, Dist, Encoding, SimConfig, SimTime, StopRule, Wire,
};

use crate::model::{Adaptation, AdapterSpec, HeadSpec, Optimizer, PersonalStep, VitConfig};
use crate::pool::Personalization;

/// Clients whose every change of state a run records, for the timeline plot.
pub const TIMELINE_CLIENTS: usize = 20;

/// A scenario that cannot be used, and where the problem is.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}: {field}: {message}")]
    Invalid {
        file: PathBuf,
        field: String,
        message: String,
    },
}

/// A parsed and validated scenario, with the directory its relative paths start from.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub scenario: Scenario,
    pub file: PathBuf,
    pub base: PathBuf,
}

/// Reads, parses and validates a scenario file.
pub fn load(file: &Path) -> Result<Loaded, ScenarioError> {
    let text = std::fs::read_to_string(file).map_err(|source| ScenarioError::Read {
        file: file.to_path_buf(),
        source,
    })?;
    let scenario = parse(&text).map_err(|e| ScenarioError::Syntax {
        file: file.to_path_buf(),
        line: e.span.start.line,
        column: e.span.start.col,
        message: e.code.to_string(),
    })?;
    let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let loaded = Loaded {
        scenario,
        file: file.to_path_buf(),
        base,
    };
    loaded.validate()?;
    Ok(loaded)
}

/// Parses RON text (with `Some(..)` optional around optional values).
pub fn parse(text: &str) -> Result<Scenario, ron::error::SpannedError> {
    ron_options().from_str(text)
}

/// How scenario text is read: RON with `Some(..)` optional around optional values.
pub fn ron_options() -> ron::Options {
    ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
}

impl Loaded {
    fn invalid(&self, field: impl Into<String>, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            file: self.file.clone(),
            field: field.into(),
            message: message.into(),
        }
    }

    /// A path from the scenario, resolved against the scenario's directory.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.base.join(relative)
    }

    /// Checks everything that parsing cannot: ranges, consistency, files that must exist.
    /// The pool's backend must be built in and fit its device; counts must be positive.
    fn validate_pool(&self) -> Result<(), ScenarioError> {
        use crate::pool::{Backend, DeviceKind};
        let pool = &self.scenario.pool;
        if pool.backend == Backend::Tch && !cfg!(feature = "tch") {
            return Err(self.invalid(
                "pool.backend",
                "this flotilla was built without LibTorch; build it with `--features tch` \
                 (see scripts/setup-libtorch.sh)",
            ));
        }
        if pool.device == DeviceKind::Cuda && pool.backend != Backend::Tch {
            return Err(self.invalid(
                "pool.device",
                "CUDA devices need the LibTorch backend (backend: Tch)",
            ));
        }
        for (field, value) in [
            ("pool.per_gpu", pool.per_gpu),
            ("pool.batch_clients", pool.batch_clients),
        ] {
            if value == 0 {
                return Err(self.invalid(field, "must be at least 1"));
            }
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<(), ScenarioError> {
        let s = &self.scenario;
        let DataSource::Idx { dir } = &s.data.source;
        let dir_path = self.path(dir);
        if !dir_path.is_dir() {
            return Err(self.invalid(
                "data.source.dir",
                format!(
                    "directory \"{dir}\" not found (looked in {})",
                    dir_path.display()
                ),
            ));
        }
        for name in [
            "train-images-idx3-ubyte",
            "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte",
            "t10k-labels-idx1-ubyte",
        ] {
            if !crate::data::idx_file(&dir_path, name).exists() {
                return Err(
                    self.invalid("data.source.dir", format!("\"{dir}\" has no {name}[.gz]"))
                );
            }
        }
        if s.data.clients == 0 {
            return Err(self.invalid("data.clients", "must be at least 1"));
        }
        self.validate_pool()?;
        if let crate::data::PartitionSpec::Dirichlet { alpha } = s.data.partition
            && !(alpha.is_finite() && alpha > 0.0)
        {
            return Err(self.invalid("data.partition.alpha", format!("must be > 0, got {alpha}")));
        }
        if let crate::data::PartitionSpec::Shots { shots, classes } = s.data.partition {
            if shots == 0 {
                return Err(self.invalid("data.partition.shots", "must be at least 1"));
            }
            if classes == Some(0) {
                return Err(self.invalid("data.partition.classes", "must be at least 1"));
            }
        }
        self.validate_tasks()?;
        let f = s.data.local_test_fraction;
        if !(0.0..1.0).contains(&f) {
            return Err(self.invalid(
                "data.local_test_fraction",
                format!("must be in [0, 1), got {f}"),
            ));
        }

        let Backbone::Vit {
            patch,
            dim,
            depth,
            heads,
            ..
        } = s.model.backbone;
        if patch == 0 || 28 % patch != 0 {
            return Err(self.invalid(
                "model.backbone.patch",
                format!("must divide the image side (28), got {patch}"),
            ));
        }
        if heads == 0 || dim % heads != 0 {
            return Err(self.invalid(
                "model.backbone.heads",
                format!("must divide dim ({dim}), got {heads}"),
            ));
        }
        if depth == 0 {
            return Err(self.invalid("model.backbone.depth", "must be at least 1"));
        }
        if let Some(w) = &s.model.weights
            && !self.path(w).is_file()
        {
            return Err(self.invalid(
                "model.weights",
                format!(
                    "file \"{w}\" not found (looked for {}); `flotilla pretrain` writes one",
                    self.path(w).display()
                ),
            ));
        }
        self.validate_model(dim, depth)?;

        let t = &s.training;
        if t.epochs == 0 {
            return Err(self.invalid("training.epochs", "must be at least 1"));
        }
        if t.batch_size == 0 {
            return Err(self.invalid("training.batch_size", "must be at least 1"));
        }
        let (Optimizer::Sgd { lr } | Optimizer::Adam { lr }) = t.optimizer;
        if !(lr.is_finite() && lr > 0.0) {
            return Err(self.invalid("training.optimizer.lr", format!("must be > 0, got {lr}")));
        }

        let total: usize = s.population.iter().map(|c| c.count).sum();
        if s.population.is_empty() {
            return Err(self.invalid("population", "needs at least one device class"));
        }
        if total != s.data.clients {
            return Err(self.invalid(
                "population",
                format!(
                    "device class counts add up to {total}, but data.clients is {}",
                    s.data.clients
                ),
            ));
        }
        let mut any_dropout = false;
        for (i, c) in s.population.iter().enumerate() {
            let at = |f: &str| format!("population[{i}].{f}");
            to_dist(&c.speed)
                .ok_or_else(|| {
                    self.invalid(
                        at("speed"),
                        "a device's speed is drawn once: Steps and Trace apply to links",
                    )
                })?
                .validate()
                .map_err(|e| self.invalid(at("speed"), e.to_string()))?;
            for (name, link) in [("uplink", &c.uplink), ("downlink", &c.downlink)] {
                // Latency and bandwidth are checked where `sim_config` converts them.
                if !(0.0..1.0).contains(&link.loss) {
                    return Err(self.invalid(
                        at(&format!("{name}.loss")),
                        format!("must be in [0, 1), got {}", link.loss),
                    ));
                }
                if link.loss > 0.0 && link.timeout.value() <= 0.0 {
                    return Err(
                        self.invalid(at(&format!("{name}.timeout")), "must be > 0 when loss > 0")
                    );
                }
            }
            if !(0.0..=1.0).contains(&c.dropout) {
                return Err(self.invalid(
                    at("dropout"),
                    format!("must be in [0, 1], got {}", c.dropout),
                ));
            }
            if let AvailabilitySection::Markov { mean_on, mean_off } = &c.availability
                && (mean_on.value() <= 0.0 || mean_off.value() <= 0.0)
            {
                return Err(self.invalid(at("availability"), "mean_on and mean_off must be > 0"));
            }
            any_dropout |= c.dropout > 0.0
                || c.uplink.loss > 0.0
                || c.downlink.loss > 0.0
                || c.availability != AvailabilitySection::Always;
        }

        self.validate_algorithm(any_dropout)?;

        let stop = &s.stop;
        if stop.rounds.is_none() && stop.virtual_time.is_none() {
            return Err(self.invalid(
                "stop",
                "set rounds or virtual_time (target_accuracy alone may never be reached)",
            ));
        }
        if stop.rounds == Some(0) {
            return Err(self.invalid("stop.rounds", "must be at least 1"));
        }
        if stop.virtual_time.as_ref().is_some_and(|t| t.value() <= 0.0) {
            return Err(self.invalid("stop.virtual_time", "must be > 0"));
        }
        if let Some(a) = stop.target_accuracy
            && !(a > 0.0 && a <= 1.0)
        {
            return Err(self.invalid(
                "stop.target_accuracy",
                format!("must be in (0, 1], got {a}"),
            ));
        }
        if s.eval.every_rounds == Some(0) {
            return Err(self.invalid("eval.every_rounds", "must be at least 1"));
        }
        if s.eval.every.as_ref().is_some_and(|t| t.value() <= 0.0) {
            return Err(self.invalid("eval.every", "must be > 0"));
        }
        self.validate_wire()?;
        // Also checks links, traces and server capacities as it converts them.
        self.sim_config()?;
        if let Some(addr) = &s.monitoring.prometheus {
            crate::monitor::parse_addr(addr)
                .map_err(|e| self.invalid("monitoring.prometheus", e.to_string()))?;
        }
        Ok(())
    }

    /// The adapter and head, against the backbone's width `dim` and `depth`.
    fn validate_model(&self, dim: usize, depth: usize) -> Result<(), ScenarioError> {
        let s = &self.scenario;
        match &s.model.adapter {
            AdapterSpec::Lora {
                rank,
                alpha,
                targets,
            } => {
                if *rank == 0 || *rank > dim {
                    return Err(self.invalid(
                        "model.adapter.rank",
                        format!("must be in 1..={dim}, got {rank}"),
                    ));
                }
                if !(alpha.is_finite() && *alpha > 0.0) {
                    return Err(
                        self.invalid("model.adapter.alpha", format!("must be > 0, got {alpha}"))
                    );
                }
                if targets.is_empty() {
                    return Err(
                        self.invalid("model.adapter.targets", "name at least one of Q, K, V, O")
                    );
                }
            }
            AdapterSpec::Prompt { tokens }
            | AdapterSpec::AdaptivePrompt { tokens, .. }
            | AdapterSpec::Memory { tokens } => {
                if *tokens == 0 {
                    return Err(self.invalid("model.adapter.tokens", "must be at least 1"));
                }
            }
            AdapterSpec::Blocks { blocks } => {
                if blocks.is_empty() {
                    return Err(self.invalid("model.adapter.blocks", "name at least one block"));
                }
                if let Some(b) = blocks.iter().find(|&&b| b >= depth) {
                    return Err(self.invalid(
                        "model.adapter.blocks",
                        format!("blocks are numbered 0..{depth}, got {b}"),
                    ));
                }
                if (1..blocks.len()).any(|i| blocks[..i].contains(&blocks[i])) {
                    return Err(self.invalid("model.adapter.blocks", "lists a block twice"));
                }
            }
            AdapterSpec::Film | AdapterSpec::HeadOnly | AdapterSpec::Full => {}
        }
        if let Some(w) = s.model.adapter.key_loss()
            && !(w.is_finite() && w >= 0.0)
        {
            return Err(self.invalid("model.adapter.key_loss", format!("must be >= 0, got {w}")));
        }
        match &s.model.head {
            HeadSpec::Linear => {}
            HeadSpec::Frozen | HeadSpec::NaiveBayes { .. }
                if s.model.adapter == AdapterSpec::HeadOnly =>
            {
                return Err(self.invalid(
                    "model.head",
                    "HeadOnly trains nothing but the head, which this head kind never trains",
                ));
            }
            HeadSpec::Frozen => {}
            HeadSpec::NaiveBayes { shrinkage, .. } => {
                if !(*shrinkage > 0.0 && *shrinkage <= 1.0) {
                    return Err(self.invalid(
                        "model.head.shrinkage",
                        format!("must be in (0, 1], got {shrinkage}"),
                    ));
                }
                if s.eval.personalize.is_some() {
                    return Err(self.invalid(
                        "eval.personalize",
                        "the naive Bayes head is always fitted on each client's own data; \
                         remove eval.personalize",
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_wire(&self) -> Result<(), ScenarioError> {
        let w = &self.scenario.wire;
        for (field, e) in [
            ("wire.encoding", Some(w.encoding)),
            ("wire.up", w.up),
            ("wire.down", w.down),
        ] {
            if let Some(Encoding::TopK(f)) = e
                && !(f > 0.0 && f <= 1.0)
            {
                return Err(
                    self.invalid(field, format!("TopK's fraction must be in (0, 1], got {f}"))
                );
            }
        }
        if w.down().needs_reference() {
            let field = if w.down.is_some() {
                "wire.down"
            } else {
                "wire.encoding"
            };
            return Err(self.invalid(
                field,
                "TopK sparsifies updates against the model the client received; models going \
                 down need a dense encoding (e.g. `encoding: F32, up: TopK(0.1)`)",
            ));
        }
        Ok(())
    }

    /// A link quantity: a distribution, or steps written inline or read from a CSV trace.
    /// Checked: a distribution must be valid, and steps of a `positive` quantity (a
    /// bandwidth) above zero.
    fn link_value<U: Unit>(
        &self,
        d: &DistSpec<U>,
        field: &str,
        positive: bool,
    ) -> Result<LinkValue, ScenarioError> {
        let steps = |s: Steps| {
            if positive && s.points().iter().any(|p| p.1 <= 0.0) {
                return Err(self.invalid(field, "every value must be > 0"));
            }
            Ok(LinkValue::Steps(s))
        };
        Ok(match d {
            DistSpec::Steps(points) => steps(self.steps(points, field)?)?,
            DistSpec::Trace(file) => steps(self.read_steps::<U>(file, field)?)?,
            d => {
                let dist = to_dist(d).expect("a distribution");
                dist.validate()
                    .map_err(|e| self.invalid(field, e.to_string()))?;
                LinkValue::Draw(dist)
            }
        })
    }

    /// The server capacity `name`: fixed, scheduled, or unlimited.
    fn capacity(
        &self,
        fixed: &Option<Rate>,
        schedule: &Option<Schedule<BitRate>>,
        name: &str,
    ) -> Result<Option<RateOverTime>, ScenarioError> {
        let field = format!("server.{name}_schedule");
        let steps = match (fixed, schedule) {
            (Some(_), Some(_)) => {
                return Err(self.invalid(
                    &field,
                    format!("give server.{name} or server.{name}_schedule, not both"),
                ));
            }
            (Some(r), None) if r.value() <= 0.0 => {
                return Err(self.invalid(format!("server.{name}"), "must be > 0"));
            }
            (Some(r), None) => return Ok(Some(RateOverTime::Fixed(r.value()))),
            (None, None) => return Ok(None),
            (None, Some(Schedule::Steps(points))) => self.steps(points, &field)?,
            (None, Some(Schedule::Trace(file))) => self.read_steps::<BitRate>(file, &field)?,
        };
        if steps.points().iter().any(|p| p.1 <= 0.0) {
            return Err(self.invalid(&field, "every capacity must be > 0"));
        }
        Ok(Some(RateOverTime::Steps(steps)))
    }

    fn steps<U: Unit>(
        &self,
        points: &[(Duration, Quantity<U>)],
        field: &str,
    ) -> Result<Steps, ScenarioError> {
        Steps::new(
            points
                .iter()
                .map(|(t, v)| (SimTime::from_secs_ceil(t.value()), v.value()))
                .collect(),
        )
        .map_err(|e| self.invalid(field, e))
    }

    /// Reads a `time,value` CSV trace; a first line that is not a time is a header.
    fn read_steps<U: Unit>(&self, file: &str, field: &str) -> Result<Steps, ScenarioError> {
        let path = self.path(file);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            self.invalid(
                field,
                format!("cannot read \"{file}\" ({}): {e}", path.display()),
            )
        })?;
        let mut points = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = |m: String| self.invalid(field, format!("{file}:{}: {m}", n + 1));
            let cols: Vec<&str> = line.split(',').map(str::trim).collect();
            let [time, value] = cols[..] else {
                return Err(at(format!("expected time,value, got \"{line}\"")));
            };
            let time = match (time.parse::<f64>(), Duration::parse(time)) {
                (Ok(t), _) if t.is_finite() && t >= 0.0 => t,
                (_, Ok(d)) => d.value(),
                _ if points.is_empty() && n == 0 => continue,
                (_, Err(e)) => return Err(at(e)),
            };
            let value = match (value.parse::<f64>(), Quantity::<U>::parse(value)) {
                (Ok(v), _) if v.is_finite() && v >= 0.0 => v,
                (_, Ok(q)) => q.value(),
                (_, Err(e)) => return Err(at(e)),
            };
            points.push((SimTime::from_secs_ceil(time), value));
        }
        Steps::new(points).map_err(|e| self.invalid(field, format!("{file}: {e}")))
    }

    /// The adapter, head and number of clients the model is built for.
    pub fn adaptation(&self) -> Adaptation {
        let m = &self.scenario.model;
        Adaptation {
            adapter: m.adapter.clone(),
            head: m.head.clone(),
            clients: self.scenario.data.clients,
        }
    }

    /// How clients personalize the served model before their evaluation.
    pub fn personalization(&self) -> Option<Personalization> {
        self.scenario.eval.personalize.as_ref().map(|p| match *p {
            Personalize::FineTune { steps, lr } => Personalization {
                steps,
                lr,
                head_only: false,
            },
            Personalize::FineTuneHead { steps, lr } => Personalization {
                steps,
                lr,
                head_only: true,
            },
        })
    }

    fn validate_tasks(&self) -> Result<(), ScenarioError> {
        let s = &self.scenario;
        let clients = s.data.clients;
        let mut held = vec![false; clients];
        for (t, task) in s.data.tasks.iter().enumerate() {
            let at = |f: &str| format!("data.tasks[{t}].{f}");
            if task.name.is_empty() {
                return Err(self.invalid(at("name"), "must not be empty"));
            }
            if s.data.tasks[..t].iter().any(|o| o.name == task.name) {
                return Err(self.invalid(
                    at("name"),
                    format!("\"{}\" names an earlier task too", task.name),
                ));
            }
            if task.clients.is_empty() {
                return Err(self.invalid(at("clients"), "list at least one client"));
            }
            for (k, &c) in task.clients.iter().enumerate() {
                if c >= clients {
                    return Err(self.invalid(
                        at("clients"),
                        format!("client {c} does not exist (data.clients is {clients})"),
                    ));
                }
                if task.clients[..k].contains(&c) {
                    return Err(self.invalid(at("clients"), format!("client {c} is listed twice")));
                }
                held[c] = true;
            }
            for (d, domain) in task.domain.iter().enumerate() {
                domain
                    .check()
                    .map_err(|m| self.invalid(at(&format!("domain[{d}]")), m))?;
            }
        }
        if !s.data.tasks.is_empty()
            && let Some(c) = held.iter().position(|h| !h)
        {
            return Err(self.invalid(
                "data.tasks",
                format!("client {c} holds no task; every client needs at least one"),
            ));
        }
        Ok(())
    }

    fn validate_algorithm(&self, any_failure: bool) -> Result<(), ScenarioError> {
        let s = &self.scenario;
        let clients = s.data.clients;
        let in_range = |field: &str, n: usize| {
            if n == 0 || n > clients {
                Err(self.invalid(field, format!("must be in 1..={clients}, got {n}")))
            } else {
                Ok(())
            }
        };
        let staleness = |st: &Staleness| -> Result<(), ScenarioError> {
            let bad = match *st {
                Staleness::Constant => None,
                Staleness::Polynomial { exponent } => (!(exponent.is_finite() && exponent >= 0.0))
                    .then(|| format!("exponent must be >= 0, got {exponent}")),
                Staleness::Hinge { a, b } => {
                    (!(a.is_finite() && a >= 0.0 && b.is_finite() && b >= 0.0))
                        .then(|| format!("a and b must be >= 0, got a = {a}, b = {b}"))
                }
            };
            bad.map_or(Ok(()), |m| Err(self.invalid("algorithm.staleness", m)))
        };
        self.validate_algorithm_section(&s.algorithm, any_failure, &in_range, &staleness)
    }

    fn validate_algorithm_section(
        &self,
        algorithm: &AlgorithmSection,
        any_failure: bool,
        in_range: &dyn Fn(&str, usize) -> Result<(), ScenarioError>,
        staleness: &dyn Fn(&Staleness) -> Result<(), ScenarioError>,
    ) -> Result<(), ScenarioError> {
        match algorithm {
            AlgorithmSection::PersAfl { server, personal } => {
                if !matches!(
                    **server,
                    AlgorithmSection::FedAsync { .. } | AlgorithmSection::FedBuff { .. }
                ) {
                    return Err(
                        self.invalid("algorithm.server", "must be FedAsync(..) or FedBuff(..)")
                    );
                }
                let lr = {
                    let (Optimizer::Sgd { lr } | Optimizer::Adam { lr }) =
                        self.scenario.training.optimizer;
                    lr
                };
                match *personal {
                    PersonalStep::Maml { inner_lr }
                        if !(inner_lr.is_finite() && inner_lr > 0.0) =>
                    {
                        return Err(self.invalid(
                            "algorithm.personal.inner_lr",
                            format!("must be > 0, got {inner_lr}"),
                        ));
                    }
                    PersonalStep::Moreau {
                        lambda,
                        inner_steps,
                    } => {
                        if !(lambda.is_finite() && lambda > 0.0 && lr * lambda <= 1.0) {
                            return Err(self.invalid(
                                "algorithm.personal.lambda",
                                format!("must be > 0 with training lr x lambda <= 1 (the pull toward the personal model would overshoot), got {lambda} with lr {lr}"),
                            ));
                        }
                        if inner_steps == 0 {
                            return Err(self
                                .invalid("algorithm.personal.inner_steps", "must be at least 1"));
                        }
                    }
                    PersonalStep::Maml { .. } => {}
                }
                return self.validate_algorithm_section(server, any_failure, in_range, staleness);
            }
            AlgorithmSection::FlTac {
                k,
                iterations,
                restarts,
                server,
                ..
            } => {
                if !matches!(
                    **server,
                    AlgorithmSection::FedAvg { .. } | AlgorithmSection::FedBuff { .. }
                ) {
                    return Err(
                        self.invalid("algorithm.server", "must be FedAvg(..) or FedBuff(..)")
                    );
                }
                if *k == 0 || *k > MAX_CLUSTERS {
                    return Err(self.invalid(
                        "algorithm.k",
                        format!("must be in 1..={MAX_CLUSTERS}, got {k}"),
                    ));
                }
                if *iterations == 0 {
                    return Err(self.invalid("algorithm.iterations", "must be at least 1"));
                }
                if *restarts == 0 {
                    return Err(self.invalid("algorithm.restarts", "must be at least 1"));
                }
                return self.validate_algorithm_section(server, any_failure, in_range, staleness);
            }
            AlgorithmSection::FedAvg {
                clients_per_round,
                over_selection,
                deadline,
            } => {
                in_range("algorithm.clients_per_round", *clients_per_round)?;
                if !(over_selection.is_finite() && *over_selection >= 0.0) {
                    return Err(self.invalid(
                        "algorithm.over_selection",
                        format!("must be >= 0, got {over_selection}"),
                    ));
                }
                if any_failure && deadline.is_none() && *over_selection == 0.0 {
                    return Err(self.invalid(
                        "algorithm.deadline",
                        "required when clients can drop out, go offline or lose messages: without a deadline or over-selection a round can wait forever",
                    ));
                }
                if deadline.as_ref().is_some_and(|d| d.value() <= 0.0) {
                    return Err(self.invalid("algorithm.deadline", "must be > 0"));
                }
            }
            AlgorithmSection::FedAsync {
                concurrency,
                alpha,
                staleness: st,
            } => {
                in_range("algorithm.concurrency", *concurrency)?;
                if !(*alpha > 0.0 && *alpha <= 1.0) {
                    return Err(
                        self.invalid("algorithm.alpha", format!("must be in (0, 1], got {alpha}"))
                    );
                }
                staleness(st)?;
            }
            AlgorithmSection::FedBuff {
                concurrency,
                buffer,
                server_lr,
                staleness: st,
                ..
            } => {
                in_range("algorithm.concurrency", *concurrency)?;
                if *buffer == 0 {
                    return Err(self.invalid("algorithm.buffer", "must be at least 1"));
                }
                if !(server_lr.is_finite() && *server_lr > 0.0) {
                    return Err(self.invalid(
                        "algorithm.server_lr",
                        format!("must be > 0, got {server_lr}"),
                    ));
                }
                staleness(st)?;
            }
        }
        Ok(())
    }

    /// The ViT configuration for images of `side` pixels and `classes` classes.
    pub fn vit(&self, side: usize, channels: usize, classes: usize) -> VitConfig {
        let Backbone::Vit {
            patch,
            dim,
            depth,
            heads,
            mlp,
        } = self.scenario.model.backbone;
        VitConfig {
            image: side,
            channels,
            patch,
            dim,
            depth,
            heads,
            mlp,
            classes,
        }
    }

    /// The engine's view of the scenario.
    pub fn sim_config(&self) -> Result<SimConfig, ScenarioError> {
        let s = &self.scenario;
        let mut clients = Vec::with_capacity(s.data.clients);
        let mut slots = self.slot_tasks().into_iter();
        for (i, c) in s.population.iter().enumerate() {
            let link = |l: &LinkSection, name: &str| -> Result<LinkSpec, ScenarioError> {
                let at = |q: &str| format!("population[{i}].{name}.{q}");
                Ok(LinkSpec {
                    latency: self.link_value(&l.latency, &at("latency"), false)?,
                    bandwidth: self.link_value(&l.bandwidth, &at("bandwidth"), true)?,
                    loss: l.loss,
                    timeout: SimTime::from_secs_ceil(l.timeout.value()),
                    retries: l.retries,
                })
            };
            let (uplink, downlink) = (link(&c.uplink, "uplink")?, link(&c.downlink, "downlink")?);
            let speed = to_dist(&c.speed).ok_or_else(|| {
                self.invalid(format!("population[{i}].speed"), "must be a distribution")
            })?;
            let traces = match &c.availability {
                AvailabilitySection::Trace { file } => Some(self.read_trace(i, file, c.count)?),
                _ => None,
            };
            for k in 0..c.count {
                let availability = match (&c.availability, &traces) {
                    (AvailabilitySection::Markov { mean_on, mean_off }, _) => {
                        Availability::Markov {
                            mean_on: mean_on.value(),
                            mean_off: mean_off.value(),
                        }
                    }
                    (AvailabilitySection::Trace { .. }, Some(t)) => {
                        Availability::Trace(t[k].clone())
                    }
                    _ => Availability::Always,
                };
                clients.push(ClientSpec {
                    class: c.class.clone(),
                    device: DeviceSpec {
                        speed: speed.clone(),
                        dropout: c.dropout,
                    },
                    availability,
                    uplink: uplink.clone(),
                    downlink: downlink.clone(),
                    slots: slots.next().unwrap_or_default(),
                });
            }
        }
        let algorithm = Self::algorithm_spec(&s.algorithm);
        Ok(SimConfig {
            seed: s.seed,
            clients,
            ingress: self.capacity(&s.server.ingress, &s.server.ingress_schedule, "ingress")?,
            egress: self.capacity(&s.server.egress, &s.server.egress_schedule, "egress")?,
            wire: Wire {
                up: s.wire.up(),
                down: s.wire.down(),
                layout: std::sync::Arc::from([]),
            },
            algorithm,
            clustering: match &s.algorithm {
                AlgorithmSection::FlTac {
                    k,
                    iterations,
                    restarts,
                    warm_start,
                    ..
                } => Some(Clustering {
                    k: *k,
                    iterations: *iterations,
                    restarts: *restarts,
                    warm_start: *warm_start,
                }),
                _ => None,
            },
            tasks: s.data.tasks.len().max(1),
            stop: StopRule {
                rounds: s.stop.rounds,
                virtual_time: s
                    .stop
                    .virtual_time
                    .as_ref()
                    .map(|t| SimTime::from_secs_ceil(t.value())),
                target_accuracy: s.stop.target_accuracy,
            },
            eval_every_rounds: match (s.eval.every_rounds, &s.eval.every) {
                (None, None) => Some(1),
                (rounds, _) => rounds,
            },
            eval_every: s
                .eval
                .every
                .as_ref()
                .map(|t| SimTime::from_secs_ceil(t.value())),
            tracked_clients: TIMELINE_CLIENTS,
        })
    }

    /// The engine's algorithm for a scenario's (PersA-FL runs its server's).
    fn algorithm_spec(algorithm: &AlgorithmSection) -> AlgorithmSpec {
        match algorithm {
            AlgorithmSection::FedAvg {
                clients_per_round,
                over_selection,
                deadline,
            } => AlgorithmSpec::FedAvg(FedAvgConfig {
                clients_per_round: *clients_per_round,
                over_selection: *over_selection,
                deadline: deadline
                    .as_ref()
                    .map(|d| SimTime::from_secs_ceil(d.value())),
            }),
            AlgorithmSection::FedAsync {
                concurrency,
                alpha,
                staleness,
            } => AlgorithmSpec::FedAsync(FedAsyncConfig {
                concurrency: *concurrency,
                alpha: *alpha,
                staleness: staleness.clone(),
            }),
            AlgorithmSection::FedBuff {
                concurrency,
                buffer,
                server_lr,
                staleness,
                max_staleness,
            } => AlgorithmSpec::FedBuff(FedBuffConfig {
                concurrency: *concurrency,
                buffer: *buffer,
                server_lr: *server_lr,
                staleness: staleness.clone(),
                max_staleness: *max_staleness,
            }),
            AlgorithmSection::PersAfl { server, .. } | AlgorithmSection::FlTac { server, .. } => {
                Self::algorithm_spec(server)
            }
        }
    }

    /// Whether clients train one adapter per task they hold (FL-TAC).
    pub fn separate_slots(&self) -> bool {
        matches!(self.scenario.algorithm, AlgorithmSection::FlTac { .. })
    }

    /// The true task behind each client's slots.
    pub fn slot_tasks(&self) -> Vec<Vec<Option<usize>>> {
        let d = &self.scenario.data;
        crate::data::slot_tasks(&d.tasks, d.clients, self.separate_slots())
    }

    /// The clients' personalized-FL procedure, for PersA-FL.
    pub fn personal_step(&self) -> Option<PersonalStep> {
        match &self.scenario.algorithm {
            AlgorithmSection::PersAfl { personal, .. } => Some(personal.clone()),
            _ => None,
        }
    }

    /// Reads population[`class`]'s availability trace: per client of the class, its online
    /// intervals, sorted.
    fn read_trace(
        &self,
        class: usize,
        file: &str,
        count: usize,
    ) -> Result<Vec<Vec<(SimTime, SimTime)>>, ScenarioError> {
        let field = format!("population[{class}].availability.file");
        let path = self.path(file);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            self.invalid(
                &field,
                format!("cannot read \"{file}\" ({}): {e}", path.display()),
            )
        })?;
        let mut traces = vec![Vec::new(); count];
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || (n == 0 && line.starts_with("client")) {
                continue;
            }
            let at = |m: String| self.invalid(&field, format!("{file}:{}: {m}", n + 1));
            let cols: Vec<&str> = line.split(',').map(str::trim).collect();
            let [client, start, end] = cols[..] else {
                return Err(at(format!("expected client,start,end, got \"{line}\"")));
            };
            let client: usize = client
                .parse()
                .map_err(|_| at(format!("client \"{client}\" is not an index")))?;
            if client >= count {
                return Err(at(format!(
                    "client {client} is not in the class (count {count})"
                )));
            }
            let secs = |v: &str| -> Result<f64, ScenarioError> {
                v.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && *x >= 0.0)
                    .ok_or_else(|| at(format!("\"{v}\" is not a time in seconds")))
            };
            let (start, end) = (secs(start)?, secs(end)?);
            if end <= start {
                return Err(at(format!("end ({end}) must be after start ({start})")));
            }
            traces[client].push((SimTime::from_secs_ceil(start), SimTime::from_secs_ceil(end)));
        }
        for (client, intervals) in traces.iter_mut().enumerate() {
            intervals.sort();
            if intervals.windows(2).any(|w| w[1].0 < w[0].1) {
                return Err(self.invalid(
                    &field,
                    format!("{file}: client {client} has overlapping intervals"),
                ));
            }
        }
        Ok(traces)
    }
}

/// A distribution with units, in base units; `None` for schedules.
pub fn to_dist<U: Unit>(d: &DistSpec<U>) -> Option<Dist> {
    Some(match d {
        DistSpec::Const(v) => Dist::Const(v.value()),
        DistSpec::Uniform { low, high } => Dist::Uniform {
            low: low.value(),
            high: high.value(),
        },
        DistSpec::Normal { mean, std } => Dist::Normal {
            mean: mean.value(),
            std: std.value(),
        },
        DistSpec::LogNormal { median, sigma } => Dist::LogNormal {
            median: median.value(),
            sigma: *sigma,
        },
        DistSpec::Exponential { mean } => Dist::Exponential { mean: mean.value() },
        DistSpec::Pareto { scale, shape } => Dist::Pareto {
            scale: scale.value(),
            shape: *shape,
        },
        DistSpec::Steps(_) | DistSpec::Trace(_) => return None,
    })
}

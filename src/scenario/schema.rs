//! The scenario file's schema. Unknown fields are errors everywhere.

use serde::{Deserialize, Serialize};

use super::units::{Duration, Quantity, Rate, Size, Unit};
use crate::data::{PartitionSpec, TaskSpec};
use crate::model::{AdapterSpec, HeadSpec, PersonalStep, TrainConfig};
use crate::pool::{Backend, DeviceKind};
use flotilla_actors::Encoding;
use flotilla_actors::strategy::Staleness;

/// One experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    pub seed: u64,
    pub data: DataSection,
    pub model: ModelSection,
    pub training: TrainConfig,
    pub algorithm: AlgorithmSection,
    pub population: Vec<DeviceClass>,
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub wire: WireSection,
    pub stop: StopSection,
    #[serde(default)]
    pub eval: EvalSection,
    #[serde(default)]
    pub monitoring: MonitoringSection,
    #[serde(default)]
    pub pool: PoolSection,
    /// Run the scenario at every point of a grid of field values (see `flotilla::sweep`).
    /// Each point's resolved scenario has no sweep section.
    #[serde(default, skip_serializing)]
    pub sweep: Option<SweepSection>,
}

/// A grid of scenarios: the product of the axes' values, each point run `repeat` times
/// with seeds `seed`, `seed + 1`, ...
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSection {
    pub axes: Vec<SweepAxis>,
    #[serde(default = "one_u32")]
    pub repeat: u32,
    /// Points run at once, each with its share of the cores (0 or 1: one at a time).
    #[serde(default)]
    pub parallel: usize,
}

fn one_u32() -> u32 {
    1
}

/// One axis of a sweep: a field (or several, set together) and its values.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepAxis {
    /// The field's path, e.g. `population[0].uplink.bandwidth` or `model.adapter`; several
    /// paths separated by commas are set together, each value then listing one entry per
    /// path, e.g. `(45, 5)`.
    pub field: String,
    /// The values, written as in the scenario.
    pub values: Vec<SweepValue>,
    /// Short names of the values for sweep.csv and the plots; a leading number makes the
    /// axis numeric (e.g. "0.5 Mbit/s", "20%"). Default: written from the values.
    #[serde(default)]
    pub labels: Vec<String>,
    /// The axis's column in sweep.csv; default: the field.
    #[serde(default)]
    pub name: Option<String>,
}

/// A value of any field, kept as its JSON form (enums as `{"Variant": ...}`), which is
/// how a sweep writes it into the scenario.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum SweepValue {
    // An untagged enum makes RON hand serde its buffered content, which keeps enum variant
    // names (a plain `serde_json::Value` would lose them).
    Value(serde_json::Value),
}

/// Live monitoring.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitoringSection {
    /// Serve Prometheus metrics on this address (a bare port listens on 127.0.0.1).
    #[serde(default)]
    pub prometheus: Option<String>,
}

/// Where the data comes from and how it is split among clients.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    pub source: DataSource,
    pub partition: PartitionSpec,
    /// Number of clients; the population's counts must add up to it.
    pub clients: usize,
    /// Fewest samples any client may hold.
    #[serde(default = "default_min_samples")]
    pub min_samples: usize,
    /// Share of each client's samples held out as its local test split.
    #[serde(default = "default_local_test_fraction")]
    pub local_test_fraction: f64,
    /// Tasks (class subsets under domain shifts) and the clients holding each; without
    /// any, one task covers all the data and every client holds it.
    #[serde(default)]
    pub tasks: Vec<TaskSpec>,
}

fn default_min_samples() -> usize {
    10
}
fn default_local_test_fraction() -> f64 {
    0.2
}

/// A data set on disk (paths relative to the scenario file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum DataSource {
    /// A directory of MNIST-style IDX files (train-* and t10k-*, gzip or not).
    Idx { dir: String },
}

/// The backbone, its pretrained weights and the adapter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    pub backbone: Backbone,
    /// A checkpoint written by `flotilla pretrain`; without one the backbone is random.
    #[serde(default)]
    pub weights: Option<String>,
    pub adapter: AdapterSpec,
    /// The classifier on the class token; a trained linear layer unless said otherwise.
    #[serde(default)]
    pub head: HeadSpec,
}

/// Backbone architectures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Backbone {
    Vit {
        patch: usize,
        dim: usize,
        depth: usize,
        heads: usize,
        mlp: usize,
    },
}

/// The federated algorithm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum AlgorithmSection {
    /// Synchronous rounds.
    FedAvg {
        clients_per_round: usize,
        #[serde(default)]
        over_selection: f64,
        #[serde(default)]
        deadline: Option<Duration>,
    },
    /// Every update mixed in on arrival with weight `alpha * s(staleness)`.
    FedAsync {
        concurrency: usize,
        alpha: f64,
        #[serde(default = "constant_staleness")]
        staleness: Staleness,
    },
    /// `buffer` deltas averaged, then applied with `server_lr`.
    FedBuff {
        concurrency: usize,
        buffer: usize,
        #[serde(default = "one")]
        server_lr: f64,
        #[serde(default = "constant_staleness")]
        staleness: Staleness,
        #[serde(default)]
        max_staleness: Option<u64>,
    },
    /// PersA-FL: asynchronous aggregation (`server` is FedAsync or FedBuff) of clients
    /// that run a personalized-FL procedure and keep their personal state.
    #[serde(rename = "PersAFL")]
    PersAfl {
        server: Box<AlgorithmSection>,
        personal: PersonalStep,
    },
    /// FL-TAC: clients train one adapter per task they hold; the server (`server` is
    /// FedAvg or FedBuff) clusters the adapters into `k` groups with k-means (the best of
    /// `restarts` k-means++ seedings, each followed by at most `iterations` Lloyd steps)
    /// and aggregates inside each.
    #[serde(rename = "FLTAC")]
    FlTac {
        k: usize,
        #[serde(default = "default_iterations")]
        iterations: usize,
        #[serde(default = "default_restarts")]
        restarts: usize,
        /// Once the cluster models differ, start k-means from them instead of fresh
        /// seedings (for FedBuff flushes or partial rounds that may lack a task).
        #[serde(default)]
        warm_start: bool,
        server: Box<AlgorithmSection>,
    },
}

fn default_iterations() -> usize {
    20
}
fn default_restarts() -> usize {
    10
}

fn constant_staleness() -> Staleness {
    Staleness::Constant
}
fn one() -> f64 {
    1.0
}

/// A distribution of a quantity with units. A link's latency and bandwidth may instead
/// follow a schedule in simulated time (`Steps` or `Trace`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, bound(serialize = "", deserialize = "U: Unit"))]
pub enum DistSpec<U> {
    Const(Quantity<U>),
    Uniform {
        low: Quantity<U>,
        high: Quantity<U>,
    },
    Normal {
        mean: Quantity<U>,
        std: Quantity<U>,
    },
    LogNormal {
        median: Quantity<U>,
        sigma: f64,
    },
    Exponential {
        mean: Quantity<U>,
    },
    Pareto {
        scale: Quantity<U>,
        shape: f64,
    },
    /// `(time, value)` points, times increasing: each value holds from its time until the
    /// next point's (links only).
    Steps(Vec<(Duration, Quantity<U>)>),
    /// A CSV file of `time,value` rows read as `Steps` (links only); cells may carry units,
    /// bare numbers are seconds and base units (bit/s, s).
    Trace(String),
}

/// A value over simulated time, for the server's capacities.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, bound(serialize = "", deserialize = "U: Unit"))]
pub enum Schedule<U> {
    /// `(time, value)` points, as [`DistSpec::Steps`].
    Steps(Vec<(Duration, Quantity<U>)>),
    /// A CSV file of `time,value` rows, as [`DistSpec::Trace`].
    Trace(String),
}

/// A class of devices: how many, how fast, how connected, how reliable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceClass {
    pub class: String,
    pub count: usize,
    pub speed: DistSpec<super::units::SampleRate>,
    pub uplink: LinkSection,
    pub downlink: LinkSection,
    /// Probability that a training job fails.
    #[serde(default)]
    pub dropout: f64,
    /// When the devices are online; offline devices lose the work in progress.
    #[serde(default)]
    pub availability: AvailabilitySection,
}

/// When a class's devices are online.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum AvailabilitySection {
    #[default]
    Always,
    /// Exponential online and offline periods with these means.
    Markov {
        mean_on: Duration,
        mean_off: Duration,
    },
    /// A CSV file of `client,start,end` rows: online intervals in seconds, `client` being
    /// the index within the class.
    Trace { file: String },
}

/// One direction of a client's connection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSection {
    pub latency: DistSpec<super::units::Secs>,
    pub bandwidth: DistSpec<super::units::BitRate>,
    #[serde(default)]
    pub loss: f64,
    /// After a lost attempt would have arrived, the sender waits this long, then retries.
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
    #[serde(default = "default_retries")]
    pub retries: u32,
}

fn default_timeout() -> Duration {
    Duration::parse("1s").expect("valid default")
}
fn default_retries() -> u32 {
    3
}

/// The server's network capacity, shared by concurrent transfers; absent is unlimited.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    #[serde(default)]
    pub ingress: Option<Rate>,
    #[serde(default)]
    pub egress: Option<Rate>,
    /// The ingress capacity over time, instead of a fixed `ingress`.
    #[serde(default)]
    pub ingress_schedule: Option<Schedule<super::units::BitRate>>,
    /// The egress capacity over time, instead of a fixed `egress`.
    #[serde(default)]
    pub egress_schedule: Option<Schedule<super::units::BitRate>>,
}

/// How parameters are encoded on the wire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireSection {
    /// Both ways, unless `up` or `down` says otherwise.
    #[serde(default = "f32_encoding")]
    pub encoding: Encoding,
    /// Updates, client to server (the only way `TopK` can go).
    #[serde(default)]
    pub up: Option<Encoding>,
    /// Models, server to client.
    #[serde(default)]
    pub down: Option<Encoding>,
}

fn f32_encoding() -> Encoding {
    Encoding::F32
}

impl WireSection {
    /// The uplink's encoding.
    pub fn up(&self) -> Encoding {
        self.up.unwrap_or(self.encoding)
    }

    /// The downlink's encoding.
    pub fn down(&self) -> Encoding {
        self.down.unwrap_or(self.encoding)
    }
}

impl Default for WireSection {
    fn default() -> Self {
        Self {
            encoding: Encoding::F32,
            up: None,
            down: None,
        }
    }
}

/// When the run ends: whichever limit comes first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopSection {
    #[serde(default)]
    pub rounds: Option<u32>,
    #[serde(default)]
    pub virtual_time: Option<Duration>,
    /// Stop early once the global accuracy reaches this value; also sets `time_to_target`.
    #[serde(default)]
    pub target_accuracy: Option<f64>,
}

/// How often the global model is evaluated.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSection {
    /// Evaluate every this many rounds (model versions for asynchronous algorithms);
    /// 1 unless `every` is given.
    #[serde(default)]
    pub every_rounds: Option<u32>,
    /// Also evaluate at every multiple of this simulated time (when the model changed).
    #[serde(default)]
    pub every: Option<Duration>,
    /// How each client's personalized model is made for evaluation; absent, it is the
    /// global model itself.
    #[serde(default)]
    pub personalize: Option<Personalize>,
}

/// Personalization at evaluation time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Personalize {
    /// Fine-tune the global model's trainable parameters for `steps` local steps on the
    /// client's own training split (the scenario's batch size; plain SGD at `lr` when
    /// given, else the scenario's optimizer).
    FineTune {
        steps: usize,
        #[serde(default)]
        lr: Option<f64>,
    },
    /// FedBABU: fine-tune the head alone, the body as served, for `steps` local steps.
    FineTuneHead {
        steps: usize,
        #[serde(default)]
        lr: Option<f64>,
    },
}

/// The training pool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSection {
    /// Worker threads on the CPU; 0 means one per available core.
    #[serde(default)]
    pub workers: usize,
    /// The tensor library: `Flex` (built in) or `Tch` (LibTorch, the `tch` feature).
    #[serde(default)]
    pub backend: Backend,
    /// `Cpu`, or `Cuda`: every CUDA GPU, `per_gpu` workers each.
    #[serde(default)]
    pub device: DeviceKind,
    #[serde(default = "one_usize")]
    pub per_gpu: usize,
    /// Most clients' jobs trained together in one batch (jobs started at the same point of
    /// simulated time, see `Learner::flush`); 1 trains every job alone.
    #[serde(default = "one_usize")]
    pub batch_clients: usize,
    /// Memory for cached activations of the frozen prefix (e.g. "256MB"; "0B": none).
    #[serde(default = "default_cache")]
    pub cache: Size,
}

fn one_usize() -> usize {
    1
}

fn default_cache() -> Size {
    Size::parse("256MB").expect("valid default")
}

impl Default for PoolSection {
    fn default() -> Self {
        Self {
            workers: 0,
            backend: Backend::default(),
            device: DeviceKind::default(),
            per_gpu: 1,
            batch_clients: 1,
            cache: default_cache(),
        }
    }
}

//! The devices: classes with counts, speeds, links and availability; the server's
//! network capacity.

use flotilla_actors::SpeedUnit;
use serde::{Deserialize, Serialize};

use crate::scenario::units::{
    Bandwidth, BitRate, Duration, FlopCount, Quantity, Secs, Size, Throughput, Unit,
};

/// A distribution of a quantity with units. A link's latency and bandwidth may instead
/// follow a schedule in simulated time (`Steps` or `Trace`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, bound(serialize = "", deserialize = "U: Unit"))]
pub enum DistSpec<U> {
    /// Always this value.
    Const(Quantity<U>),
    /// Uniform on `[low, high]`.
    Uniform {
        /// Smallest value.
        low: Quantity<U>,
        /// Largest value.
        high: Quantity<U>,
    },
    /// Gaussian, clamped to valid values.
    Normal {
        /// Mean.
        mean: Quantity<U>,
        /// Standard deviation.
        std: Quantity<U>,
    },
    /// Log-normal: a heavy right tail.
    LogNormal {
        /// Median.
        median: Quantity<U>,
        /// Standard deviation of the logarithm.
        sigma: f64,
    },
    /// Exponential.
    Exponential {
        /// Mean.
        mean: Quantity<U>,
    },
    /// Pareto (type I): heavy-tailed stragglers.
    Pareto {
        /// Smallest value.
        scale: Quantity<U>,
        /// Tail index: the smaller, the heavier the tail.
        shape: f64,
    },
    /// `(time, value)` points, times increasing: each value holds from its time until the
    /// next point's (links only).
    Steps(Vec<(Duration, Quantity<U>)>),
    /// A CSV file of `time,value` rows read as `Steps` (links only); cells may carry units,
    /// bare numbers are seconds and base units (bit/s, s).
    Trace(String),
    /// A CSV file of `client,time,value` rows (links only): each client of the class (by
    /// its index in the class) follows its own steps.
    ClientTrace(String),
    /// A value drawn once per client from the distribution, times the factors of a
    /// shared `time,factor` CSV profile (links only): per-client levels that follow one
    /// daily shape.
    Scaled(Box<DistSpec<U>>, String),
    /// The value of the client's own device in its class's `traces` (a speed or a link's
    /// bandwidth, from FedScale's capacity trace).
    Traces,
}

impl DistSpec<Throughput> {
    /// What the speed counts: `None` when its values mix samples and FLOPs.
    pub fn unit(&self) -> Option<SpeedUnit> {
        let values: Vec<&Quantity<Throughput>> = match self {
            DistSpec::Const(v) => vec![v],
            DistSpec::Uniform { low, high } => vec![low, high],
            DistSpec::Normal { mean, std } => vec![mean, std],
            DistSpec::LogNormal { median, .. } => vec![median],
            DistSpec::Exponential { mean } => vec![mean],
            DistSpec::Pareto { scale, .. } => vec![scale],
            DistSpec::Steps(points) => points.iter().map(|(_, v)| v).collect(),
            DistSpec::Scaled(inner, _) => return inner.unit(),
            DistSpec::Trace(_) | DistSpec::ClientTrace(_) | DistSpec::Traces => vec![],
        };
        let flops = values.iter().filter(|v| v.counts_flops()).count();
        match flops {
            0 => Some(SpeedUnit::Samples),
            n if n == values.len() => Some(SpeedUnit::Flops),
            _ => None,
        }
    }
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
    /// Names the class in reports and metric labels.
    pub class: String,
    /// Clients of the class.
    pub count: usize,
    /// Training throughput, drawn once per client: `"150 samples/s"` (samples of the
    /// scenario's own model) or `"2.5 GFLOP/s"` (the device's effective training
    /// throughput, against the FLOPs counted for the scenario's model and method).
    pub speed: DistSpec<Throughput>,
    /// Memory a training job may use on the device; a client whose job needs more (its
    /// model, gradients and optimiser state, activations of a batch) is never selected.
    #[serde(default)]
    pub memory: Option<Size>,
    /// Client to server.
    pub uplink: LinkSection,
    /// Server to client.
    pub downlink: LinkSection,
    /// Probability that a training job fails.
    #[serde(default)]
    pub dropout: f64,
    /// When the devices are online; offline devices lose the work in progress.
    #[serde(default)]
    pub availability: AvailabilitySection,
    /// FedScale's device traces, for the fields written `Traces`: each client is one of
    /// their devices, drawn from the seed.
    #[serde(default)]
    pub traces: Option<TracesSection>,
}

/// FedScale's trace files for one class (see the README's "Device traces").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracesSection {
    /// A `client_device_capacity` pickle: each device's compute latency (ms per sample of
    /// FedScale's reference model, inference) and network throughput (kbit/s, both ways).
    #[serde(default)]
    pub capacity: Option<String>,
    /// A `client_behave_trace` pickle: each device's online intervals, periodic.
    #[serde(default)]
    pub behavior: Option<String>,
    /// The forward FLOPs of one sample of the model the latencies were measured with:
    /// a device then trains at `reference / latency` FLOP/s against the scenario's
    /// counted FLOPs. Without it, FedScale's own rule: a training sample of the
    /// scenario's model takes three times the latency.
    #[serde(default)]
    pub reference: Option<FlopCount>,
}

/// When a class's devices are online.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum AvailabilitySection {
    #[default]
    /// Always online.
    Always,
    /// Exponential online and offline periods with these means.
    Markov {
        /// Mean online period.
        mean_on: Duration,
        /// Mean offline period.
        mean_off: Duration,
    },
    /// A CSV file of `client,start,end` rows: online intervals in seconds, `client` being
    /// the index within the class.
    Trace {
        /// The CSV file, relative to the scenario.
        file: String,
    },
    /// The client's own device in its class's `traces.behavior`: online during its
    /// intervals, repeating every `finish_time`.
    Traces,
}

/// One direction of a client's connection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSection {
    /// One-way latency per attempt.
    pub latency: DistSpec<Secs>,
    /// The link's own bandwidth.
    pub bandwidth: DistSpec<BitRate>,
    /// Probability that an attempt is lost.
    #[serde(default)]
    pub loss: f64,
    /// After a lost attempt would have arrived, the sender waits this long, then retries.
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
    /// Attempts after the first before a message is given up.
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
    /// Shared by uploads.
    #[serde(default)]
    pub ingress: Option<Bandwidth>,
    /// Shared by downloads.
    #[serde(default)]
    pub egress: Option<Bandwidth>,
    /// The ingress capacity over time, instead of a fixed `ingress`.
    #[serde(default)]
    pub ingress_schedule: Option<Schedule<BitRate>>,
    /// The egress capacity over time, instead of a fixed `egress`.
    #[serde(default)]
    pub egress_schedule: Option<Schedule<BitRate>>,
}

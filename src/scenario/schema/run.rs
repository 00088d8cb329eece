//! How the run goes: the wire encoding, the stop rule, evaluation, the training pool.

use serde::{Deserialize, Serialize};

use crate::pool::{Backend, DeviceKind};
use crate::scenario::units::{Duration, Size};
use flotilla_actors::Encoding;

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
    /// After this many rounds (model versions for asynchronous algorithms).
    #[serde(default)]
    pub rounds: Option<u32>,
    /// At this simulated time.
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
    /// The personalization runs on the client's device: after each training job the
    /// client fine-tunes the copy it will be tested with, and its steps' FLOPs add to the
    /// job's compute time. False: personalization costs no device time.
    #[serde(default)]
    pub personalize_on_device: bool,
}

/// Personalization at evaluation time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Personalize {
    /// Fine-tune the global model's trainable parameters for `steps` local steps on the
    /// client's own training split (the scenario's batch size; plain SGD at `lr` when
    /// given, else the scenario's optimizer).
    FineTune {
        /// Optimiser steps.
        steps: usize,
        /// Plain SGD at this rate, else the training optimiser.
        #[serde(default)]
        lr: Option<f64>,
    },
    /// FedBABU: fine-tune the head alone, the body as served, for `steps` local steps.
    FineTuneHead {
        /// Optimiser steps.
        steps: usize,
        /// Plain SGD at this rate, else the training optimiser.
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
    /// Workers per GPU with `device: Cuda`.
    #[serde(default = "one_usize")]
    pub per_gpu: usize,
    /// Most clients' jobs trained together in one batch (jobs started at the same point of
    /// simulated time, see `Learner::flush`); 1 trains every job alone.
    #[serde(default = "one_usize")]
    pub batch_clients: usize,
    /// Memory for cached activations of the frozen prefix (e.g. "256MB"; "0B": none).
    #[serde(default = "default_cache")]
    pub cache: Size,
    /// Send the jobs to `flotilla worker` processes instead of training in this one.
    #[serde(default)]
    pub remote: Option<RemoteSection>,
}

/// Where a remote pool's workers take their jobs from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RemoteSection {
    /// A NATS server with JetStream: jobs go to its work queue, answers come back.
    Nats {
        /// The server, e.g. `"nats://127.0.0.1:4222"`.
        url: String,
        /// How long a worker may go without acknowledging a job before it is delivered
        /// to another (workers acknowledge progress three times in that span).
        #[serde(default = "default_ack_wait")]
        ack_wait: Duration,
        /// How long the run waits without word from any worker before it fails.
        #[serde(default = "default_deadline")]
        deadline: Duration,
    },
}

fn default_ack_wait() -> Duration {
    Duration::parse("30s").expect("valid default")
}

fn default_deadline() -> Duration {
    Duration::parse("10min").expect("valid default")
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
            remote: None,
        }
    }
}

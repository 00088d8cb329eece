//! Whether a run fits this machine: its peak memory estimated from the scenario and the
//! data files' headers alone, before anything is loaded or allocated.
//!
//! The estimate adds what a run holds at its peak: the images (raw and as floats, plus
//! each task's shifted test copy), every worker's model with its gradients and optimiser
//! state and the activations of one training batch and one evaluation batch, the frozen
//! prefix cache, the engine's per-client state and updates in flight, and the process
//! itself. It is meant to be right within a factor of two (a test holds it to that on
//! shipped scenarios), which is all refusing absurd sizes needs.

use crate::data::PartitionSpec;
use crate::model::AdapterSpec;
use crate::pool::Backend;
use crate::scenario::{AlgorithmSection, Loaded, ScenarioError};

/// Images an evaluation chunk forwards at once (the pool's evaluation batch).
const EVAL_BATCH: f64 = 250.0;
/// What the process holds besides the run: code, allocator, runtimes, thread stacks.
const PROCESS: f64 = 60e6;
/// LibTorch's own libraries and caches, when it is the backend.
const LIBTORCH: f64 = 400e6;
/// The engine's state per client (client, links, statistics, routes), measured at about
/// 0.8 kB with W1's adapter (`flotilla bench`); rounded up.
const PER_CLIENT: f64 = 1_000.0;

/// A run's estimated peak memory, by part.
#[derive(Clone, Debug, PartialEq)]
pub struct Footprint {
    /// `(what, bytes)` for every part.
    pub parts: Vec<(&'static str, f64)>,
}

impl Footprint {
    /// Bytes in all.
    pub fn total(&self) -> f64 {
        self.parts.iter().map(|(_, b)| b).sum()
    }
}

/// Every size the estimate reads, as floats so that no product overflows.
#[derive(Clone, Copy, Debug)]
struct Sizes {
    train_images: f64,
    test_images: f64,
    side: f64,
    channels: f64,
    classes: f64,
    patch: f64,
    dim: f64,
    depth: f64,
    heads: f64,
    mlp: f64,
    /// Tokens the adapter adds to every block's sequence (prompts, memory).
    extra_tokens: f64,
    batch: f64,
    batch_clients: f64,
    workers: f64,
    cache: f64,
    clients: f64,
    samples_per_client: f64,
    tasks: f64,
    /// Whether the data is laid out by tasks (and so shifted into floats).
    shifted: bool,
    at_work: f64,
    buffered: f64,
    personal: bool,
    libtorch: bool,
}

impl Sizes {
    fn tokens(&self) -> f64 {
        (self.side / self.patch.max(1.0)).floor().powi(2) + 1.0 + self.extra_tokens
    }

    /// Values of the backbone and head.
    fn model_values(&self) -> f64 {
        let (d, m) = (self.dim, self.mlp);
        let block = 4.0 * d * d + 2.0 * d * m + 10.0 * d + m;
        self.patch * self.patch * self.channels * d
            + self.tokens() * d
            + self.depth * block
            + d * self.classes
    }

    /// The largest trainable vector any adapter of this backbone has: the whole model
    /// (full fine-tuning) bounds it, a block's worth of values is typical.
    fn trainable_values(&self, adapter: &AdapterSpec) -> f64 {
        let (d, depth) = (self.dim, self.depth);
        let head = d * self.classes + self.classes;
        head + match adapter {
            AdapterSpec::Lora { rank, targets, .. } => {
                depth * targets.len() as f64 * 2.0 * *rank as f64 * d
            }
            AdapterSpec::Film => depth * 4.0 * d,
            AdapterSpec::Prompt { tokens } => *tokens as f64 * d,
            AdapterSpec::AdaptivePrompt { tokens, .. } => *tokens as f64 * d + 2.0 * d * d,
            AdapterSpec::Memory { tokens } => depth * *tokens as f64 * d,
            AdapterSpec::Full => self.model_values(),
            AdapterSpec::Blocks { blocks } => {
                blocks.len() as f64 * (4.0 * d * d + 2.0 * d * self.mlp)
            }
            _ => 0.0,
        }
    }

    fn footprint(&self, adapter: &AdapterSpec) -> Footprint {
        let f32s = 4.0;
        let pixels = self.side * self.side * self.channels;
        let t = self.tokens();
        let trainable = self.trainable_values(adapter);
        // The decoded bytes, kept; with tasks, every task's images domain-shifted into
        // floats (the training images dealt out once, the test set once per task).
        let images = self.train_images + self.test_images;
        let shifted = if self.shifted {
            (self.train_images + self.tasks * self.test_images) * pixels * f32s
        } else {
            0.0
        };
        let data = images * pixels + shifted;
        // The model, plus gradients, two optimiser moments and a copy of what trains.
        let model = self.model_values() * f32s + trainable * 4.0 * f32s;
        // What backward keeps per block and token: projections, attention, MLP.
        let per_token = 12.0 * self.dim + 2.0 * self.mlp + 2.0 * self.heads * t;
        let train = self.batch * self.batch_clients * t * self.depth * per_token * f32s;
        // Forward only: about two blocks' worth live at once.
        let eval = EVAL_BATCH * t * (4.0 * self.dim + self.heads * t + self.mlp) * 2.0 * f32s;
        // The cache holds the frozen prefix's output: the patch embeddings, the backbone's
        // features when only the head trains (whose workers then forward nothing but
        // the cache's fill chunks, each the size of an evaluation batch), nothing when
        // everything trains.
        let (activations, cached) = match adapter {
            AdapterSpec::HeadOnly => (eval, images * self.dim * f32s),
            AdapterSpec::Full => (train + eval, 0.0),
            _ => (train + eval, images * (t - 1.0) * self.dim * f32s),
        };
        let workers = self.workers * (model + activations);
        let cache = self.cache.min(cached);
        let engine = self.clients * (PER_CLIENT + 2.0 * f32s * self.samples_per_client)
            + (self.at_work + self.buffered) * 2.0 * trainable * f32s
            + if self.personal {
                self.clients * trainable * f32s
            } else {
                0.0
            };
        let process = PROCESS + if self.libtorch { LIBTORCH } else { 0.0 };
        Footprint {
            parts: vec![
                ("the data set", data),
                (
                    "the workers' models, optimiser state and activations",
                    workers,
                ),
                ("the prefix cache", cache),
                ("the clients' state", engine),
                ("the process", process),
            ],
        }
    }
}

/// Sets one field of the sizes to a modest value.
type Modest = fn(&mut Sizes);

/// The fields an absurd value most often hides in, each with a modest value: the one
/// whose modest value shrinks the estimate most is named in the refusal.
const SUSPECTS: [(&str, Modest); 12] = [
    ("data.source", |s| {
        s.train_images = s.train_images.min(60_000.0);
        s.test_images = s.test_images.min(10_000.0);
        s.side = s.side.min(64.0);
    }),
    ("model.backbone.dim", |s| s.dim = 64.0),
    ("model.backbone.depth", |s| s.depth = 4.0),
    ("model.backbone.mlp", |s| s.mlp = 128.0),
    ("model.backbone.heads", |s| s.heads = 4.0),
    ("model.backbone.patch", |s| s.patch = s.side.min(4.0)),
    ("model.adapter.tokens", |s| {
        s.extra_tokens = s.extra_tokens.min(8.0)
    }),
    ("training.batch_size", |s| s.batch = 32.0),
    ("pool.workers", |s| s.workers = 2.0),
    ("pool.batch_clients", |s| s.batch_clients = 1.0),
    ("pool.cache", |s| s.cache = 256e6),
    ("data.clients", |s| s.clients = 100.0),
];

impl Loaded {
    /// This run's estimated peak memory; `None` when the data's headers cannot be read
    /// (the data check reports that).
    pub fn footprint(&self) -> Option<Footprint> {
        let (sizes, adapter) = self.sizes()?;
        Some(sizes.footprint(adapter))
    }

    /// Refuses a run whose estimated peak memory exceeds this machine's, naming the field
    /// most to blame. Runs before anything allocates per client.
    pub(super) fn validate_resources(&self) -> Result<(), ScenarioError> {
        let (Some((sizes, adapter)), Some(available)) = (self.sizes(), available_memory()) else {
            return Ok(());
        };
        let estimate = sizes.footprint(adapter).total();
        if estimate <= available {
            return Ok(());
        }
        let (field, _) = SUSPECTS
            .iter()
            .map(|(field, modest)| {
                let mut s = sizes;
                modest(&mut s);
                (*field, s.footprint(adapter).total())
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .expect("suspects are listed");
        Err(self.invalid(
            field,
            format!(
                "the run would need about {} of memory, and this machine has {} available",
                human_bytes(estimate),
                human_bytes(available)
            ),
        ))
    }

    fn sizes(&self) -> Option<(Sizes, &AdapterSpec)> {
        let s = &self.scenario;
        let extent = s.data.source.extent(&self.base, s.data.image)?;
        let (n_train, n_test) = (extent.train, extent.test);
        // Labels are bytes: at most 256 classes (the head is small either way).
        // A pretrained backbone's file is checked last: without it, nothing is estimated.
        let vit = self
            .backbone(extent.side, extent.channels, 256)
            .ok()?
            .config;
        let extra_tokens = match &s.model.adapter {
            AdapterSpec::Prompt { tokens }
            | AdapterSpec::AdaptivePrompt { tokens, .. }
            | AdapterSpec::Memory { tokens } => *tokens as f64,
            _ => 0.0,
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let workers = if s.pool.workers == 0 {
            cores
        } else {
            s.pool.workers
        };
        let clients = s.data.clients as f64;
        // A client never holds more than the whole training set: the partition refuses
        // a larger draw, with a clearer message than a memory estimate would give.
        let samples_per_client = match s.data.partition {
            PartitionSpec::Sampled { samples, .. } => samples.min(n_train) as f64,
            _ => n_train as f64 / clients.max(1.0),
        };
        let (at_work, buffered, personal) = algorithm_state(&s.algorithm);
        let sizes = Sizes {
            train_images: n_train as f64,
            test_images: n_test as f64,
            side: vit.image as f64,
            channels: vit.channels as f64,
            classes: vit.classes as f64,
            patch: vit.patch as f64,
            dim: vit.dim as f64,
            depth: vit.depth as f64,
            heads: vit.heads as f64,
            mlp: vit.mlp as f64,
            extra_tokens,
            batch: s.training.batch_size as f64,
            batch_clients: s.pool.batch_clients as f64,
            workers: workers as f64,
            cache: s.pool.cache.value(),
            clients,
            samples_per_client,
            tasks: s.data.tasks.len().max(1) as f64,
            shifted: !s.data.tasks.is_empty(),
            at_work: at_work.unwrap_or(clients),
            buffered,
            personal,
            libtorch: s.pool.backend == Backend::Tch,
        };
        Some((sizes, &s.model.adapter))
    }
}

/// Clients at work at once (`None`: a FedAvg round's worth, at most every client),
/// updates buffered, and whether clients keep personal models.
fn algorithm_state(algorithm: &AlgorithmSection) -> (Option<f64>, f64, bool) {
    match algorithm {
        AlgorithmSection::FedAvg {
            clients_per_round,
            over_selection,
            ..
        } => (
            Some(*clients_per_round as f64 * (1.0 + over_selection.max(0.0))),
            *clients_per_round as f64,
            false,
        ),
        AlgorithmSection::FedAsync { concurrency, .. } => (Some(*concurrency as f64), 0.0, false),
        AlgorithmSection::FedBuff {
            concurrency,
            buffer,
            ..
        } => (Some(*concurrency as f64), *buffer as f64, false),
        AlgorithmSection::PersAfl { server, .. } => {
            let (at_work, buffered, _) = algorithm_state(server);
            (at_work, buffered, true)
        }
        AlgorithmSection::FlTac { server, .. } => algorithm_state(server),
    }
}

/// Memory this machine can give a new process now (`MemAvailable`), if known.
fn available_memory() -> Option<f64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0)
}

/// Bytes for people: "740 MB", "3.2 TB".
pub fn human_bytes(bytes: f64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = bytes;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    if v >= 100.0 || u == 0 {
        format!("{v:.0} {}", units[u])
    } else {
        format!("{v:.1} {}", units[u])
    }
}

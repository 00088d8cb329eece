//! A scenario's learner, ready to train: its data loaded, its model built, its pool
//! started (in this process, or remote), and the digest of what its jobs share. Shared by
//! runs, remote workers and benchmarks, so that all three build the same pieces.

use std::path::Path;
use std::sync::Arc;

use crate::data::{Layout, TaskData};
use crate::model::build_model;
use crate::notice::Notice;
use crate::pool::remote::{Context, Remote, RemoteOptions, hex};
use crate::pool::{
    ContextParts, DeviceKind, JobStore, Key, LearnerSetup, PoolLearner, Stored, context_digest,
    worker_devices,
};
use crate::report::ModelSize;
use crate::scenario::{Loaded, RemoteSection};

use super::RunError;

/// What a job store must have been written by to be trusted: this flotilla, backend,
/// device kind and architecture (results differ in their last bits between them).
pub(crate) fn store_identity(s: &crate::scenario::Scenario) -> String {
    format!(
        "flotilla {} {:?} {:?} {}",
        env!("CARGO_PKG_VERSION"),
        s.pool.backend,
        s.pool.device,
        std::env::consts::ARCH
    )
}

/// A scenario's learner, ready to train, and what the run reports about its model.
pub(crate) struct Prepared {
    /// The learner, its pool started.
    pub learner: PoolLearner,
    /// The data, laid out by task and client.
    pub tasks: Arc<TaskData>,
    /// The model's sizes, for the summary.
    pub size: ModelSize,
    /// The trainable vector's tensor lengths (for per-tensor wire scales).
    pub layout: Arc<[usize]>,
    /// The digest of what every job shares (see [`context_digest`]).
    pub context: Key,
}

/// Loads the data and the model and starts the pool on the scenario's devices; with a
/// store, finished jobs are kept in it and taken from it.
pub(crate) fn prepare(
    loaded: &Loaded,
    store: Option<Arc<JobStore>>,
    images: Option<&Path>,
    notice: Notice,
) -> Result<Prepared, RunError> {
    let pool = &loaded.scenario.pool;
    // With a remote pool this process only builds the model, on its CPU: the GPUs are
    // the workers'.
    let devices = match pool.remote {
        Some(_) => worker_devices(pool.backend, DeviceKind::Cpu, 1, 1),
        None => worker_devices(pool.backend, pool.device, pool.workers, pool.per_gpu),
    }
    .map_err(|e| loaded.refused("pool", e))?;
    prepare_with(loaded, store, images, devices, notice)
}

/// Loads the data and the model and starts the pool on `devices`, without a store or an
/// image cache (a remote worker's pool).
pub(crate) fn prepare_on(
    loaded: &Loaded,
    store: Option<Arc<JobStore>>,
    devices: Vec<burn::tensor::Device>,
) -> Result<Prepared, RunError> {
    prepare_with(loaded, store, None, devices, crate::notice::ignored())
}

fn prepare_with(
    loaded: &Loaded,
    store: Option<Arc<JobStore>>,
    images: Option<&Path>,
    devices: Vec<burn::tensor::Device>,
    notice: Notice,
) -> Result<Prepared, RunError> {
    let s = &loaded.scenario;
    let data = s
        .data
        .source
        .load_cached(&loaded.base, s.data.image, images)
        .and_then(|l| l.into_split())
        .map_err(|e| loaded.refused("data.source", e))?;
    let backbone = loaded.backbone(data.train.side, data.train.channels, data.train.classes)?;
    let vit = &backbone.config;
    if data.train.side % vit.patch != 0 {
        return Err(loaded
            .invalid(
                "model.backbone.patch",
                format!(
                    "must divide the image side ({}), got {}",
                    data.train.side, vit.patch
                ),
            )
            .into());
    }
    let tasks = Arc::new(
        Layout {
            tasks: &s.data.tasks,
            clients: s.data.clients,
            partition: &s.data.partition,
            min_samples: s.data.min_samples,
            test_fraction: s.data.local_test_fraction,
            seed: s.seed,
            separate: loaded.separate_slots(),
        }
        .apply(data)
        .map_err(|e| loaded.refused(e.field(), e))?,
    );
    let pool = &s.pool;
    let device = devices[0].clone();
    let adaptation = loaded.adaptation();
    let model = build_model(vit, backbone.weights(), &adaptation, s.seed, &device)
        .map_err(|e| loaded.refused(backbone.field, e))?;
    let trainable = adaptation.trainable();
    let (adapter_params, model_params) = trainable.count(&model);
    let layout: Arc<[usize]> = trainable.layout(&model).into();
    let size = ModelSize {
        adapter_params,
        model_params,
        update_bytes: s.wire.up().encoded_bytes(&layout),
    };
    let weights = match &backbone.file {
        Some(w) => std::fs::read(w).map_err(|e| loaded.refused(backbone.field, e))?,
        None => Vec::new(),
    };
    let personalization = loaded.personalization();
    let procedure = loaded.personal_step();
    let context = context_digest(ContextParts {
        identity: &store_identity(s),
        // The checkpoint's settings too: its normalisation is folded into the model.
        vit: &format!("{vit:?} {:?}", backbone.pretrained),
        weights: &weights,
        seed: s.seed,
        settings: &format!(
            "{adaptation:?} {:?} {personalization:?} {procedure:?}",
            s.training
        ),
        data: &tasks,
    });
    let remote = match &pool.remote {
        Some(RemoteSection::Nats {
            url,
            ack_wait,
            deadline,
        }) => Some(Remote::connect(
            RemoteOptions {
                url: url.clone(),
                ack_wait: std::time::Duration::from_secs_f64(ack_wait.value()),
                deadline: std::time::Duration::from_secs_f64(deadline.value()),
                notice,
            },
            remote_context(loaded, s, &context)?,
        )?),
        None => None,
    };
    let learner = PoolLearner::new(LearnerSetup {
        model,
        adaptation,
        patch: vit.patch,
        train: s.training.clone(),
        data: tasks.clone(),
        personalize: loaded.personalization(),
        personalize_on_device: s.eval.personalize_on_device,
        procedure: loaded.personal_step(),
        devices,
        batch_clients: pool.batch_clients,
        cache_budget: pool.cache.value() as u64,
        store: store.map(|store| Stored { store, context }),
        remote,
    });
    Ok(Prepared {
        learner,
        tasks,
        size,
        layout,
        context,
    })
}

/// What a worker needs to build the run's model and data: the scenario as resolved, where
/// its paths start, and what it must come to.
pub(super) fn remote_context(
    loaded: &Loaded,
    s: &crate::scenario::Scenario,
    context: &Key,
) -> Result<Context, RunError> {
    let base = match loaded.base.as_os_str().is_empty() {
        true => Path::new("."),
        false => loaded.base.as_path(),
    };
    let base = std::path::absolute(base).map_err(|e| loaded.refused("pool.remote", e))?;
    Ok(Context {
        identity: store_identity(s),
        digest: hex(context),
        scenario: crate::scenario::to_json(s),
        file: loaded.file.display().to_string(),
        base: base.display().to_string(),
    })
}

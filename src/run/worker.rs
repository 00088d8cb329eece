//! What a remote worker builds for a run: the run's learner, from the context the run
//! published, on the worker's own device and files, checked against the run's.

use std::path::PathBuf;
use std::sync::Arc;

use super::{RunError, prepare_on, store_identity};
use crate::pool::remote::{Compute, Context, WorkerDevice, WorkerOptions, hex};
use crate::pool::{Backend, BackendError, DeviceKind, gpu_devices, worker_devices};
use crate::scenario::{Loaded, Scenario};

/// Why a worker refuses a run's jobs.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The run's scenario is not one this version reads.
    #[error("the run's scenario cannot be read")]
    Scenario(#[source] serde_json::Error),
    /// The worker would compute with another version, backend, device kind or
    /// architecture, whose results differ in their last bits.
    #[error("the run computes as \"{run}\", this worker as \"{worker}\"")]
    Identity {
        /// The run's identity.
        run: String,
        /// This worker's.
        worker: String,
    },
    /// The worker's devices cannot be used.
    #[error("this worker's devices cannot be used")]
    Devices(#[source] BackendError),
    /// The run's model or data cannot be built here.
    #[error("this worker cannot build the run's model and data")]
    Build(#[source] Box<RunError>),
    /// What the worker built differs from what the run built.
    #[error(
        "this worker's model and data differ from the run's (digest {here} here, {there} there): are the files under {base} the same on this machine?"
    )]
    Digest {
        /// The digest here.
        here: String,
        /// The run's.
        there: String,
        /// The directory the run's paths start from.
        base: String,
    },
}

/// Builds the learner of the run that published `ctx`, on the worker's device and
/// threads, and checks that it is the run's own: the [`Build`](crate::pool::remote::Build)
/// that `flotilla worker` serves with.
pub fn worker_learner(ctx: &Context, opts: &WorkerOptions) -> Result<Arc<dyn Compute>, Refused> {
    let mut scenario: Scenario =
        serde_json::from_value(ctx.scenario.clone()).map_err(Refused::Scenario)?;
    let pool = &mut scenario.pool;
    pool.remote = None;
    pool.batch_clients = 1;
    pool.workers = opts.threads;
    let devices = match opts.device {
        WorkerDevice::Cpu => {
            pool.device = DeviceKind::Cpu;
            worker_devices(pool.backend, DeviceKind::Cpu, opts.threads, 1)
        }
        WorkerDevice::Cuda(gpu) => {
            pool.device = DeviceKind::Cuda;
            pool.backend = Backend::Tch;
            gpu_devices(gpu, opts.threads)
        }
    };
    let mine = store_identity(&scenario);
    if mine != ctx.identity {
        return Err(Refused::Identity {
            run: ctx.identity.clone(),
            worker: mine,
        });
    }
    let devices = devices.map_err(Refused::Devices)?;
    let loaded = Loaded {
        scenario,
        file: PathBuf::from(&ctx.file),
        base: PathBuf::from(&ctx.base),
    };
    let prepared = prepare_on(&loaded, None, devices).map_err(|e| Refused::Build(Box::new(e)))?;
    let here = hex(&prepared.context);
    if here != ctx.digest {
        return Err(Refused::Digest {
            here,
            there: ctx.digest.clone(),
            base: ctx.base.clone(),
        });
    }
    Ok(Arc::new(prepared.learner))
}

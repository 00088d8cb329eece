//! Which tensor library and which devices the pool's workers train on.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

/// The tensor library behind the pool.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Backend {
    /// Burn's pure-Rust CPU backend, always built in.
    #[default]
    Flex,
    /// LibTorch through burn-tch, on the CPU or CUDA GPUs; needs the `tch` cargo feature.
    Tch,
}

/// A backend name that is neither `flex` nor `tch`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("expected flex or tch, got \"{0}\"")]
pub struct UnknownBackend(pub String);

impl std::str::FromStr for Backend {
    type Err = UnknownBackend;

    /// `flex` or `tch`, in any case.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_lowercase().as_str() {
            "flex" => Ok(Backend::Flex),
            "tch" => Ok(Backend::Tch),
            _ => Err(UnknownBackend(text.to_string())),
        }
    }
}

/// The kind of device the workers own.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceKind {
    /// The CPU: `workers` workers share its cores.
    #[default]
    Cpu,
    /// Every CUDA GPU, each owned by `per_gpu` workers (LibTorch only).
    Cuda,
}

/// Why the pool's devices cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// LibTorch is asked for but not built in.
    #[error(
        "this flotilla was built without LibTorch; build it with `--features tch` (see scripts/setup-libtorch.sh)"
    )]
    NotBuilt,
    /// CUDA is asked for on Burn's CPU backend.
    #[error("CUDA devices need the LibTorch backend (backend: Tch)")]
    CudaNeedsTch,
    /// No GPU to put the workers on.
    #[error("no CUDA device is visible to LibTorch")]
    NoCuda,
}

/// One autodiff device per worker: `workers` on the CPU (0: one per core), or `per_gpu`
/// per CUDA device. LibTorch on the CPU gets the cores split between its workers.
pub(crate) fn worker_devices(
    backend: Backend,
    kind: DeviceKind,
    workers: usize,
    per_gpu: usize,
) -> Result<Vec<Device>, BackendError> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = if workers == 0 { cores } else { workers };
    match (backend, kind) {
        (Backend::Flex, DeviceKind::Cpu) => Ok(vec![Device::flex().autodiff(); workers]),
        (Backend::Flex, DeviceKind::Cuda) => Err(BackendError::CudaNeedsTch),
        (Backend::Tch, kind) => libtorch(kind, workers, per_gpu.max(1), cores),
    }
}

/// `per_gpu` LibTorch workers on CUDA GPU `index` alone (a remote worker's `cuda:N`).
pub(crate) fn gpu_devices(index: usize, per_gpu: usize) -> Result<Vec<Device>, BackendError> {
    gpu(index, per_gpu.max(1))
}

#[cfg(feature = "tch")]
#[allow(deprecated)] // burn-tch is deprecated upstream but still Burn's LibTorch backend
fn gpu(index: usize, per_gpu: usize) -> Result<Vec<Device>, BackendError> {
    let gpus = tch::Cuda::device_count().max(0) as usize;
    if index >= gpus {
        return Err(BackendError::NoCuda);
    }
    Ok(vec![Device::libtorch_cuda(index).autodiff(); per_gpu])
}

#[cfg(not(feature = "tch"))]
fn gpu(_: usize, _: usize) -> Result<Vec<Device>, BackendError> {
    Err(BackendError::NotBuilt)
}

#[cfg(feature = "tch")]
#[allow(deprecated)] // burn-tch is deprecated upstream but still Burn's LibTorch backend
fn libtorch(
    kind: DeviceKind,
    workers: usize,
    per_gpu: usize,
    cores: usize,
) -> Result<Vec<Device>, BackendError> {
    match kind {
        DeviceKind::Cpu => {
            // One intra-op thread each when workers fill the cores: one job per core beats
            // intra-op threads on small models.
            tch::set_num_threads((cores / workers).max(1) as i32);
            keep_freed_memory();
            Ok(vec![Device::libtorch().autodiff(); workers])
        }
        DeviceKind::Cuda => {
            let gpus = tch::Cuda::device_count().max(0) as usize;
            if gpus == 0 {
                return Err(BackendError::NoCuda);
            }
            Ok((0..gpus)
                .flat_map(|i| std::iter::repeat_n(Device::libtorch_cuda(i).autodiff(), per_gpu))
                .collect())
        }
    }
}

/// LibTorch's CPU tensors come from the C allocator. glibc maps every block over its
/// threshold afresh and unmaps it when freed, so each step's activations would fault in
/// zeroed pages again (a tenth of W1's CPU time, in the kernel); raising the thresholds
/// keeps freed blocks for reuse.
#[cfg(feature = "tch")]
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const MMAP_THRESHOLD: i32 = 256 << 20;
        const TRIM_THRESHOLD: i32 = 512 << 20;
        // SAFETY: mallopt only sets allocator parameters; any value is valid input.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        }
    }
}

#[cfg(not(feature = "tch"))]
fn libtorch(_: DeviceKind, _: usize, _: usize, _: usize) -> Result<Vec<Device>, BackendError> {
    Err(BackendError::NotBuilt)
}

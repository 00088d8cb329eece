//! A safetensors file: its header's shapes, and its tensors as `f32`.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use safetensors::tensor::Metadata;
use safetensors::{Dtype, SafeTensors};

use super::Problem;
use super::layout::Shapes;

/// The largest header read (the format's own limit is 100 MB).
const MAX_HEADER: u64 = 100 << 20;

/// The shapes of every tensor in the file at `path`, from its header alone.
pub(super) fn shapes(path: &Path) -> Result<Shapes, Problem> {
    let mut file = File::open(path).map_err(Problem::Read)?;
    let length = file.metadata().map_err(Problem::Read)?.len();
    let mut prefix = [0u8; 8];
    file.read_exact(&mut prefix)
        .map_err(|_| Problem::TooShort)?;
    let n = u64::from_le_bytes(prefix);
    if n > MAX_HEADER || n + 8 > length {
        return Err(Problem::HeaderLength { header: n, length });
    }
    let mut header = vec![0u8; n as usize];
    file.read_exact(&mut header).map_err(Problem::Read)?;
    let metadata: Metadata = serde_json::from_slice(&header).map_err(Problem::Header)?;
    Ok(metadata
        .tensors()
        .into_iter()
        .map(|(name, info)| (name, info.shape.clone()))
        .collect())
}

/// The whole file, its tensors readable by name.
pub(super) struct Tensors {
    bytes: Vec<u8>,
}

impl Tensors {
    /// Reads the file at `path`.
    pub(super) fn read(path: &Path) -> Result<Self, Problem> {
        let bytes = std::fs::read(path).map_err(Problem::Read)?;
        SafeTensors::deserialize(&bytes).map_err(Problem::Format)?;
        Ok(Self { bytes })
    }

    /// The values of tensor `name`, row-major, as `f32` (from F32, F16, BF16 or F64).
    pub(super) fn get(&self, name: &str) -> Result<Vec<f32>, Problem> {
        let file = SafeTensors::deserialize(&self.bytes).map_err(Problem::Format)?;
        let view = file.tensor(name).map_err(|source| Problem::Tensor {
            name: name.to_owned(),
            source,
        })?;
        let data = view.data();
        let values = match view.dtype() {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F16 => data
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::BF16 => data
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::F64 => data
                .chunks_exact(8)
                .map(|b| {
                    f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
                })
                .collect(),
            other => {
                return Err(Problem::Dtype {
                    name: name.to_owned(),
                    dtype: format!("{other:?}"),
                });
            }
        };
        Ok(values)
    }
}

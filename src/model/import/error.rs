//! Why a checkpoint cannot be imported: the file, and every tensor that does not fit.

use std::fmt;
use std::path::PathBuf;

/// Why a checkpoint cannot be imported.
#[derive(Debug, thiserror::Error)]
#[error("{}", path.display())]
pub struct ImportError {
    /// The checkpoint.
    pub path: PathBuf,
    /// What is wrong with it.
    #[source]
    pub problem: Problem,
}

/// What is wrong with a checkpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// The file cannot be read.
    #[error("cannot read it")]
    Read(#[source] std::io::Error),
    /// The file ends before its header's length.
    #[error("too short for a safetensors file")]
    TooShort,
    /// The header's length does not fit the file.
    #[error(
        "not a safetensors file: its header would be {header} bytes long in a file of {length}"
    )]
    HeaderLength {
        /// The length the file declares.
        header: u64,
        /// The file's length.
        length: u64,
    },
    /// The header is not the format's JSON.
    #[error("not a safetensors file: its header is not valid")]
    Header(#[source] serde_json::Error),
    /// The tensors cannot be read.
    #[error("not a safetensors file")]
    Format(#[source] safetensors::SafeTensorError),
    /// A tensor cannot be read.
    #[error("`{name}` cannot be read")]
    Tensor {
        /// The tensor's name.
        name: String,
        /// What the reader said.
        source: safetensors::SafeTensorError,
    },
    /// A tensor holds values of a type flotilla does not read.
    #[error("`{name}` holds {dtype} values; only F32, F16, BF16 and F64 are read")]
    Dtype {
        /// The tensor's name.
        name: String,
        /// Its type.
        dtype: String,
    },
    /// The layout's architecture cannot be read from the tensors' names and shapes.
    #[error("{0}")]
    Unrecognized(String),
    /// Tensors are missing, unexpected or mis-shaped: every one of them.
    #[error("{}", list(.0))]
    Tensors(Vec<TensorProblem>),
    /// It does not fit the scenario (heads, channels, classes).
    #[error("{0}")]
    Mismatch(String),
}

fn list(problems: &[TensorProblem]) -> String {
    let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
    lines.join("; ")
}

/// One tensor that does not fit the architecture.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorProblem {
    /// The architecture needs it and the file lacks it.
    Missing {
        /// The tensor's name.
        name: String,
        /// The shape the model needs.
        expected: Vec<usize>,
    },
    /// The file has it and no part of the model reads it.
    Unexpected {
        /// The tensor's name.
        name: String,
        /// Its shape in the file.
        shape: Vec<usize>,
    },
    /// The file's shape is not the one the model needs.
    Shape {
        /// The tensor's name.
        name: String,
        /// The shape the model needs.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
}

impl fmt::Display for TensorProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TensorProblem::Missing { name, expected } => {
                write!(f, "tensor `{name}` {expected:?} is missing")
            }
            TensorProblem::Unexpected { name, shape } => {
                write!(f, "tensor `{name}` {shape:?} is not part of the model")
            }
            TensorProblem::Shape {
                name,
                expected,
                found,
            } => write!(
                f,
                "tensor `{name}` has shape {found:?}, the model needs {expected:?}"
            ),
        }
    }
}

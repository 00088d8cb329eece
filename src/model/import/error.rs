//! Why a checkpoint cannot be imported: the file, and every tensor that does not fit.

use std::fmt;
use std::path::PathBuf;

/// Why a checkpoint cannot be imported.
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct ImportError {
    /// The checkpoint.
    pub path: PathBuf,
    /// What is wrong with it.
    pub problem: Problem,
}

/// What is wrong with a checkpoint.
#[derive(Debug)]
pub enum Problem {
    /// It cannot be read, or is not a safetensors file of the layout.
    Unreadable(String),
    /// Tensors are missing, unexpected or mis-shaped: every one of them.
    Tensors(Vec<TensorProblem>),
    /// It does not fit the scenario (heads, channels, classes).
    Mismatch(String),
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

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Unreadable(m) | Problem::Mismatch(m) => f.write_str(m),
            Problem::Tensors(list) => {
                let lines: Vec<String> = list.iter().map(ToString::to_string).collect();
                write!(f, "{}", lines.join("; "))
            }
        }
    }
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

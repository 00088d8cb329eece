//! Why a job store cannot be used.

use std::path::PathBuf;

/// Why a store cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file cannot be read or written.
    #[error("{path}")]
    Io {
        /// The store.
        path: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
    /// `--resume` names a directory without a store.
    #[error("{path}: no job store to resume from (was the run started by this flotilla?)")]
    Missing {
        /// The store looked for.
        path: PathBuf,
    },
    /// Written by another flotilla or backend: its results are not this build's.
    #[error("{path}: written by \"{found}\", not by this \"{expected}\"; it is not used")]
    Foreign {
        /// The store.
        path: PathBuf,
        /// The identity in its header.
        found: String,
        /// This build's.
        expected: String,
    },
    /// A damaged record before the end of the file (a torn last record is only cut off).
    #[error("{path}: damaged record at byte {offset}; the store cannot be trusted")]
    Corrupt {
        /// The store.
        path: PathBuf,
        /// Where the damaged record starts.
        offset: u64,
    },
}

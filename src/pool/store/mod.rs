//! A persistent, content-addressed store of pool job results: what makes a run resumable
//! after a crash, and lets sweep points that run identical jobs share them.
//!
//! A job's result is a pure function of its inputs, so it can be kept under a digest of
//! them (see [`super::key`]) and taken from the store instead of recomputed. The store is
//! one append-only file: a header line naming the flotilla version and backend that wrote
//! it, then one record per result, each written whole and synced as its job finishes:
//!
//! ```text
//! 0xF1 | kind u8 | payload length u32 | key [32] | payload | check u64
//! ```
//!
//! `check` is the start of a SHA-256 over everything before it, so a record torn by a
//! crash in the middle of its write is noticed; the torn tail is cut off when the store is
//! opened. A store written by another version or backend is refused, never trusted.
//!
//! One file on purpose: the record format above is written and read back here, and its
//! writer and reader must change together.

mod error;
#[cfg(test)]
mod tests;

pub use error::StoreError;

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use flotilla_actors::learner::Completer;
use flotilla_actors::{EvalOutcome, TrainOutcome};
use sha2::{Digest, Sha256};

use super::codec::{decode_eval, decode_train, encode_eval, encode_train};
use super::job::Key;
use super::key::JobKeys;
use crate::error::Chain;
use crate::notice::Notice;

/// The store and this run's keys, for the learner's jobs.
#[derive(Clone)]
pub(super) struct Keyed {
    pub(super) store: Arc<JobStore>,
    pub(super) keys: JobKeys,
}

/// A job's result the store keeps: training or evaluation.
pub(crate) trait Outcome {
    /// Stores it under `key`.
    fn put_into(&self, store: &JobStore, key: &Key);
}

impl Outcome for TrainOutcome {
    fn put_into(&self, store: &JobStore, key: &Key) {
        store.put_train(key, self);
    }
}

impl Outcome for EvalOutcome {
    fn put_into(&self, store: &JobStore, key: &Key) {
        store.put_eval(key, self);
    }
}

/// Hands a computed `outcome` to the job's waiter, stored under its key first when the
/// run keeps its results.
pub(crate) fn deliver<T: Outcome>(
    stored: Option<(&JobStore, &Key)>,
    done: Completer<T>,
    outcome: T,
) {
    if let Some((store, key)) = stored {
        outcome.put_into(store, key);
    }
    done.complete(outcome);
}

/// The file a run directory (or a shared cache directory) keeps its jobs in.
pub(crate) const STORE_FILE: &str = "jobs.store";

/// The first line of every store, before the identity of what wrote it.
const MAGIC: &str = "flotilla job store 1";
/// Starts every record.
const RECORD: u8 = 0xF1;
/// Record header: the marker, the kind, the payload length and the key.
const HEAD: usize = 1 + 1 + 4 + 32;
/// The check after each payload.
const CHECK: usize = 8;
/// The largest payload read back: far above any adapter's, far below a damaged length.
const MAX_PAYLOAD: u32 = 1 << 30;

/// What a record holds.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Kind {
    Train = 1,
    Eval = 2,
}

/// Where each stored result lies in the file.
#[derive(Default)]
struct Index {
    records: HashMap<Key, (Kind, u64, u32)>,
    /// Bytes of the file indexed so far.
    end: u64,
}

/// A store of job results, shared by the pool's workers.
pub(crate) struct JobStore {
    path: PathBuf,
    file: Mutex<File>,
    index: Mutex<Index>,
    /// Results taken from the store.
    hits: AtomicU64,
    /// Results stored after they were computed.
    computed: AtomicU64,
    /// Set once a write failed: the run goes on, without storing.
    broken: AtomicBool,
    /// Told when the store stops storing.
    notice: Notice,
}

impl JobStore {
    /// Starts an empty store at `path`, replacing any file there; `notice` is told if a
    /// write fails (the run then goes on without storing).
    pub(crate) fn create(path: &Path, identity: &str, notice: Notice) -> Result<Self, StoreError> {
        let io = |source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        };
        let header = format!("{MAGIC}\n{identity}\n");
        let mut file = File::create(path).map_err(io)?;
        file.write_all(header.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(Self::with(
            path,
            append(path).map_err(io)?,
            header.len() as u64,
            notice,
        ))
    }

    /// Opens the store at `path` to take its results and add to it; a torn last record
    /// is cut off. `create` makes an empty one when there is none (a shared cache);
    /// otherwise a missing store is an error (a resume). `notice` as for
    /// [`create`](Self::create).
    pub(crate) fn open(
        path: &Path,
        identity: &str,
        create: bool,
        notice: Notice,
    ) -> Result<Self, StoreError> {
        if !path.exists() {
            return if create {
                Self::create(path, identity, notice)
            } else {
                Err(StoreError::Missing {
                    path: path.to_path_buf(),
                })
            };
        }
        let io = |source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = append(path).map_err(io)?;
        let header = read_header(&mut file).map_err(io)?;
        let expected = format!("{MAGIC}\n{identity}\n");
        if header != expected {
            return Err(StoreError::Foreign {
                path: path.to_path_buf(),
                found: header.trim().replace('\n', "; "),
                expected: expected.trim().replace('\n', "; "),
            });
        }
        let store = Self::with(path, file, header.len() as u64, notice);
        let torn = store.scan()?;
        if let Some(at) = torn {
            let file = store.file.lock().expect("store file");
            file.set_len(at).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        Ok(store)
    }

    fn with(path: &Path, file: File, start: u64, notice: Notice) -> Self {
        Self {
            path: path.to_path_buf(),
            file: Mutex::new(file),
            index: Mutex::new(Index {
                records: HashMap::new(),
                end: start,
            }),
            hits: AtomicU64::new(0),
            computed: AtomicU64::new(0),
            broken: AtomicBool::new(false),
            notice,
        }
    }

    /// Indexes the records written since the last scan. Returns where a torn last record
    /// starts, if the file ends in one; a damaged record before the end is an error.
    fn scan(&self) -> Result<Option<u64>, StoreError> {
        let io = |source| StoreError::Io {
            path: self.path.clone(),
            source,
        };
        let mut index = self.index.lock().expect("store index");
        let mut file = self.file.lock().expect("store file");
        let len = file.metadata().map_err(io)?.len();
        let mut at = index.end;
        let mut head = [0u8; HEAD];
        while at < len {
            if len - at < HEAD as u64 {
                return Ok(Some(at));
            }
            file.seek(SeekFrom::Start(at)).map_err(io)?;
            file.read_exact(&mut head).map_err(io)?;
            let size = u32::from_le_bytes(head[2..6].try_into().expect("4 bytes"));
            let kind = match head[1] {
                1 => Some(Kind::Train),
                2 => Some(Kind::Eval),
                _ => None,
            };
            let end = at + (HEAD + CHECK) as u64 + size as u64;
            let (Some(kind), RECORD, true) = (kind, head[0], size <= MAX_PAYLOAD) else {
                return self.damaged(at, end >= len);
            };
            if end > len {
                return Ok(Some(at));
            }
            let mut rest = vec![0u8; size as usize + CHECK];
            file.read_exact(&mut rest).map_err(io)?;
            let (payload, check) = rest.split_at(size as usize);
            if check != checksum(&head, payload) {
                return self.damaged(at, end == len);
            }
            let key: Key = head[6..].try_into().expect("32 bytes");
            index
                .records
                .entry(key)
                .or_insert((kind, at + HEAD as u64, size));
            at = end;
            index.end = at;
        }
        Ok(None)
    }

    /// A record that does not check: torn if it is the last, else the store is damaged.
    fn damaged(&self, at: u64, last: bool) -> Result<Option<u64>, StoreError> {
        if last {
            Ok(Some(at))
        } else {
            Err(StoreError::Corrupt {
                path: self.path.clone(),
                offset: at,
            })
        }
    }

    /// The payload stored under `key`, if any. On a miss, records that other runs sharing
    /// the file appended since are indexed first.
    fn get(&self, key: &Key, kind: Kind) -> Option<Vec<u8>> {
        let found = self
            .index
            .lock()
            .expect("store index")
            .records
            .get(key)
            .copied();
        let found = found.or_else(|| {
            // A torn tail here is another writer's record in progress: it is not cut.
            self.scan().ok()?;
            self.index
                .lock()
                .expect("store index")
                .records
                .get(key)
                .copied()
        });
        let payload = found.filter(|r| r.0 == kind).and_then(|(_, at, size)| {
            let mut file = self.file.lock().expect("store file");
            let mut payload = vec![0u8; size as usize];
            file.seek(SeekFrom::Start(at)).ok()?;
            file.read_exact(&mut payload).ok()?;
            Some(payload)
        });
        if payload.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        payload
    }

    /// Whether a result is stored under `key`, without taking it.
    pub(crate) fn contains(&self, key: &Key) -> bool {
        let has = |s: &Self| {
            s.index
                .lock()
                .expect("store index")
                .records
                .contains_key(key)
        };
        has(self) || (self.scan().is_ok() && has(self))
    }

    /// Appends a record and syncs it to the disk. A failed write is reported once and
    /// the run goes on without storing.
    fn put(&self, key: &Key, kind: Kind, payload: &[u8]) {
        self.computed.fetch_add(1, Ordering::Relaxed);
        if self.broken.load(Ordering::Relaxed) {
            return;
        }
        let mut head = [0u8; HEAD];
        head[0] = RECORD;
        head[1] = kind as u8;
        head[2..6].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        head[6..].copy_from_slice(key);
        let mut record = Vec::with_capacity(HEAD + payload.len() + CHECK);
        record.extend_from_slice(&head);
        record.extend_from_slice(payload);
        record.extend_from_slice(&checksum(&head, payload));
        let mut file = self.file.lock().expect("store file");
        let written = file.write_all(&record).and_then(|()| file.sync_data());
        if let Err(e) = written
            && !self.broken.swap(true, Ordering::Relaxed)
        {
            (self.notice)(&format!(
                "warning: {}: {}; job results are no longer stored",
                self.path.display(),
                Chain(&e)
            ));
        }
    }

    /// A stored training result.
    pub(crate) fn train(&self, key: &Key) -> Option<TrainOutcome> {
        decode_train(&self.get(key, Kind::Train)?)
    }

    /// Stores a training result.
    pub(crate) fn put_train(&self, key: &Key, outcome: &TrainOutcome) {
        self.put(key, Kind::Train, &encode_train(outcome));
    }

    /// A stored evaluation result.
    pub(crate) fn eval(&self, key: &Key) -> Option<EvalOutcome> {
        decode_eval(&self.get(key, Kind::Eval)?)
    }

    /// Stores an evaluation result.
    pub(crate) fn put_eval(&self, key: &Key, outcome: &EvalOutcome) {
        self.put(key, Kind::Eval, &encode_eval(outcome));
    }

    /// Jobs taken from the store and jobs computed (and stored), so far.
    pub(crate) fn taken_and_computed(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.computed.load(Ordering::Relaxed),
        )
    }
}

/// The store opened to read anywhere and append at the end: every record goes out in
/// one write at the end of the file, even while other runs sharing it append too.
fn append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().read(true).append(true).open(path)
}

/// The header: the magic line and the identity line.
fn read_header(file: &mut File) -> std::io::Result<String> {
    let mut bytes = Vec::new();
    let mut lines = 0;
    let mut byte = [0u8; 1];
    while lines < 2 && bytes.len() < 512 && file.read(&mut byte)? == 1 {
        bytes.push(byte[0]);
        lines += usize::from(byte[0] == b'\n');
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn checksum(head: &[u8], payload: &[u8]) -> [u8; CHECK] {
    let digest = Sha256::new()
        .chain_update(head)
        .chain_update(payload)
        .finalize();
    digest[..CHECK].try_into().expect("8 bytes")
}

//! What library code has to say along the way (a worker's jobs, a sweep's points, a job
//! store that stops storing): the caller decides where it goes (standard error, a
//! progress bar, a log) instead of the library printing it.

use std::sync::Arc;

/// Takes one line of news, as it happens; called from any thread.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use flotilla::Notice;
/// let lines = Arc::new(Mutex::new(Vec::new()));
/// let kept = lines.clone();
/// let notice: Notice = Arc::new(move |line: &str| kept.lock().unwrap().push(line.to_owned()));
/// notice("worker w0: job 3 done");
/// assert_eq!(lines.lock().unwrap().len(), 1);
/// ```
pub type Notice = Arc<dyn Fn(&str) + Send + Sync>;

/// Notices written to standard error, one per line: what the command line does.
pub fn to_stderr() -> Notice {
    Arc::new(|line: &str| eprintln!("{line}"))
}

/// Notices dropped.
pub fn ignored() -> Notice {
    Arc::new(|_: &str| {})
}

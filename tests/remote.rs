//! The remote pool on a real NATS server (Debian's `nats-server`, started here on a free
//! loopback port with JetStream in a temporary directory): runs whose jobs are answered by
//! `flotilla worker` processes give the in-process pool's results bit for bit, with one,
//! two or three workers, after a worker is killed mid-job, and with batched jobs; a worker
//! that would compute differently is refused with its reason, a second answer to a job
//! is ignored when equal and stops the run when not, and a run without workers
//! stops at its deadline, everything up to then written, and resumes from there.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::common::same::assert_same;
use crate::common::small_scenario;
use flotilla::measure::LocalNats;

use crate::common;
use crate::common::same;

const FEDBUFF: &str = "FedBuff(concurrency: 6, buffer: 3)";

fn flotilla() -> Command {
    Command::new(env!("CARGO_BIN_EXE_flotilla"))
}

/// A `flotilla worker` process, killed when dropped; its log is read as it comes.
struct Worker {
    child: Child,
    log: Arc<(Mutex<String>, Condvar)>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Worker {
    fn start(nats: &LocalNats, name: &str, extra: &[&str]) -> Self {
        let mut child = flotilla()
            .args([
                "worker",
                "--nats",
                nats.url(),
                "--threads",
                "1",
                "--name",
                name,
            ])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log: Arc<(Mutex<String>, Condvar)> = Arc::default();
        let (stderr, kept) = (child.stderr.take().unwrap(), log.clone());
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = kept.0.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
                kept.1.notify_all();
            }
        });
        Self {
            child,
            log,
            reader: Some(reader),
        }
    }

    /// Its log so far.
    fn log(&self) -> String {
        self.log.0.lock().unwrap().clone()
    }

    /// Waits until the worker's log holds `text` after its first `from` bytes; returns
    /// where `text` ends.
    fn wait_for(&self, text: &str, from: usize) -> usize {
        let (log, said) = &*self.log;
        let start = Instant::now();
        let mut log = log.lock().unwrap();
        loop {
            if let Some(at) = log[from..].find(text) {
                return from + at + text.len();
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "the worker never said {text:?}: {log}"
            );
            log = said.wait_timeout(log, Duration::from_secs(1)).unwrap().0;
        }
    }

    /// Sends the worker `signal`.
    fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill only sends a signal to our own child, whose id this is.
        let sent = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(sent, 0, "signal {signal}");
    }

    /// Its log to the end, once killed.
    fn kill_and_log(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        self.log()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The small scenario with `algorithm`, its pool in-process, or remote on `nats`.
/// Every run has the same name (it is in the summary); `name` is its directory.
fn scenario(
    dir: &Path,
    name: &str,
    algorithm: &str,
    batch: usize,
    nats: Option<&LocalNats>,
) -> PathBuf {
    let dir = dir.join(format!("{name}-scenario"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = small_scenario(&dir, "remote", algorithm, 3, 2, "F32");
    let text = std::fs::read_to_string(&file).unwrap();
    let remote = nats.map_or(String::new(), |n| {
        format!(
            r#", remote: Nats(url: "{}", ack_wait: "2s", deadline: "60s")"#,
            n.url()
        )
    });
    let text = text.replace(
        "pool: (workers: 2)",
        &format!("pool: (workers: 2, batch_clients: {batch}{remote})"),
    );
    std::fs::write(&file, text).unwrap();
    file
}

/// The small scenario with `algorithm` run on the in-process pool into `dir/here`, and
/// the same scenario on the remote pool of `nats`, to compare with it: returns both.
fn compared(nats: &LocalNats, dir: &Path, algorithm: &str, batch: usize) -> (PathBuf, PathBuf) {
    let here = scenario(dir, "here", algorithm, batch, None);
    let reference = dir.join("here");
    run_ok(&here, &reference);
    (
        reference,
        scenario(dir, "there", algorithm, batch, Some(nats)),
    )
}

fn run(file: &Path, out: &Path) -> Output {
    flotilla()
        .args(["run", file.to_str().unwrap(), "--quiet", "--out"])
        .arg(out)
        .output()
        .unwrap()
}

/// A run in the background, its standard error kept.
fn spawn_run(file: &Path, out: &Path) -> Child {
    flotilla()
        .args(["run", file.to_str().unwrap(), "--quiet", "--out"])
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Gives the remote scenario `file` the pool deadline `deadline`.
fn with_deadline(file: &Path, deadline: &str) {
    let text = std::fs::read_to_string(file)
        .unwrap()
        .replace(r#"deadline: "60s""#, &format!(r#"deadline: "{deadline}""#));
    std::fs::write(file, text).unwrap();
}

fn run_ok(file: &Path, out: &Path) {
    let o = run(file, out);
    assert!(
        o.status.success(),
        "{} failed: {}",
        file.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn remote_workers_give_the_in_process_results() {
    let nats = LocalNats::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (here, there) = compared(&nats, dir.path(), common::FEDAVG, 1);
    for workers in [1, 3] {
        let pool: Vec<Worker> = (0..workers)
            .map(|i| Worker::start(&nats, &format!("w{i}"), &[]))
            .collect();
        if workers > 1 {
            // The first run made the job queue: every worker pulls from it before the
            // run starts, so that each gets jobs however fast the others are.
            for w in &pool {
                w.wait_for("taking jobs", 0);
            }
        }
        let out = dir.path().join(format!("there-{workers}"));
        run_ok(&there, &out);
        assert_same(&here, &out, &format!("{workers} workers"));
        let logs: Vec<String> = pool.into_iter().map(Worker::kill_and_log).collect();
        let answered = logs.iter().filter(|l| l.contains(" done in ")).count();
        assert_eq!(answered, workers, "every worker answered jobs: {logs:?}");
    }
}

#[test]
fn batched_jobs_go_remote_as_one() {
    let nats = LocalNats::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (here, there) = compared(&nats, dir.path(), FEDBUFF, 3);
    let _pool = [
        Worker::start(&nats, "a", &[]),
        Worker::start(&nats, "b", &[]),
    ];
    run_ok(&there, &dir.path().join("there"));
    assert_same(&here, &dir.path().join("there"), "batched");
}

#[test]
fn a_worker_killed_mid_job_is_replaced_and_nothing_changes() {
    let nats = LocalNats::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (here, there) = compared(&nats, dir.path(), FEDBUFF, 1);
    let out = dir.path().join("there");
    let victim = Worker::start(&nats, "victim", &[]);
    let run = spawn_run(&there, &out);
    // Stop the worker as a job starts (the first builds the run's model and data first),
    // until it is stopped holding a job it has not answered; then kill it.
    let mut seen = 0;
    loop {
        seen = victim.wait_for(" started (delivery 1)", seen);
        victim.signal(libc::SIGSTOP);
        // What it sent before it stopped reaches the server.
        std::thread::sleep(Duration::from_millis(300));
        if nats.unacknowledged("FLOTILLA_JOBS").unwrap() > 0 {
            break;
        }
        victim.signal(libc::SIGCONT);
    }
    drop(victim);
    let heir = Worker::start(&nats, "heir", &[]);
    let done = run.wait_with_output().unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert_same(&here, &out, "after a kill");
    let log = heir.kill_and_log();
    assert!(
        log.contains(" started (delivery 2)"),
        "the killed worker's job was delivered again: {log}"
    );
}

#[test]
fn a_worker_that_would_compute_differently_is_refused() {
    let nats = LocalNats::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let there = scenario(dir.path(), "there", common::FEDAVG, 1, Some(&nats));
    // Another device kind: this build's flex CPU run cannot be answered from a GPU.
    let _gpu = Worker::start(&nats, "gpu", &["--device", "cuda:0"]);
    let o = run(&there, &dir.path().join("gpu"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("gpu refused a job")
            && err.contains("the run computes as \"flotilla")
            && err.contains("Flex Cpu"),
        "{err}"
    );
}

#[test]
fn a_worker_whose_data_differ_is_refused() {
    let nats = LocalNats::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A copy of the data the run reads, changed after the run has read it.
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let bundled = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/data/mnist-10k");
    for entry in std::fs::read_dir(&bundled).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), data.join(entry.file_name())).unwrap();
    }
    let there = scenario(dir.path(), "there", common::FEDAVG, 1, Some(&nats));
    let text = std::fs::read_to_string(&there)
        .unwrap()
        .replace(&bundled.display().to_string(), &data.display().to_string());
    std::fs::write(&there, text).unwrap();
    let run = spawn_run(&there, &dir.path().join("out"));
    // The run has read its data once its job is queued: wait for the queue, then change
    // one training label on this "machine" and start the worker.
    let labels = data.join("train-labels-idx1-ubyte.gz");
    wait_for_jobs(&nats);
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(&labels).unwrap()),
        &mut bytes,
    )
    .unwrap();
    bytes[8] = (bytes[8] + 1) % 10;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &bytes).unwrap();
    std::fs::write(&labels, gz.finish().unwrap()).unwrap();
    let _w = Worker::start(&nats, "elsewhere", &[]);
    let o = run.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("elsewhere refused a job")
            && err.contains("model and data differ from the run's"),
        "{err}"
    );
}

#[test]
fn a_run_without_workers_stops_at_its_deadline() {
    let nats = LocalNats::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let there = scenario(dir.path(), "there", common::FEDAVG, 1, Some(&nats));
    with_deadline(&there, "3s");
    let out = dir.path().join("out");
    let o = run(&there, &out);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    // It said it was waiting before it gave up, and where the results are.
    let waiting = err.find("no word from any worker for").expect(&err);
    let failed = err.find("no worker answered for 3 s").expect(&err);
    assert!(waiting < failed && err.contains(nats.url()), "{err}");
    assert!(
        err.contains(&format!("the results up to then are in {}", out.display())),
        "{err}"
    );
    // What was computed before is written, as after an interruption.
    for file in [
        "summary.json",
        "timeline.csv",
        "clients.csv",
        "updates.csv",
        "availability.csv",
        "report.md",
    ] {
        assert!(out.join(file).exists(), "{file}");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["stop_reason"], "pool_failed");
    assert!(
        summary["stop_detail"]
            .as_str()
            .unwrap()
            .starts_with("no worker answered for 3 s"),
        "{summary}"
    );
}

#[test]
fn a_run_stopped_by_its_deadline_resumes_to_the_same_results() {
    let nats = LocalNats::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (here, there) = compared(&nats, dir.path(), common::FEDAVG, 1);
    with_deadline(&there, "3s");
    let out = dir.path().join("there");
    let first = Worker::start(&nats, "first", &[]);
    let run = spawn_run(&there, &out);
    // The worker goes once the run has stored an answer; none other comes in time.
    let store = out.join("jobs.store");
    let started = Instant::now();
    let mut empty = None;
    loop {
        let len = std::fs::metadata(&store).map_or(0, |m| m.len());
        if len > 0 && empty.is_some_and(|e| len > e) {
            break;
        }
        if len > 0 && empty.is_none() {
            empty = Some(len);
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no answer stored"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(first);
    let failed = run.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success(), "{err}");
    assert!(err.contains("no worker answered for 3 s"), "{err}");
    assert_eq!(same::summary(&out)["stop_reason"], "pool_failed");
    // With a worker back, the run resumes from its store to the in-process results.
    let _second = Worker::start(&nats, "second", &[]);
    let resumed = flotilla()
        .args(["run", there.to_str().unwrap(), "--quiet", "--resume"])
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success(), "{err}");
    let taken: u64 = err
        .split("resumed: ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect(&err);
    assert!(taken > 0, "{err}");
    assert_same(&here, &out, "resumed after the deadline");
}

#[test]
fn a_second_answer_is_ignored_if_equal_and_stops_the_run_if_not() {
    let nats = LocalNats::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (here, there) = compared(&nats, dir.path(), common::FEDAVG, 1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = rt.block_on(async_nats::connect(nats.url())).unwrap();
    for differs in [false, true] {
        let _worker = Worker::start(&nats, "w", &[]);
        let mut answers = rt.block_on(client.subscribe("flotilla.answers.>")).unwrap();
        let out = dir.path().join(format!("there-{differs}"));
        let run = spawn_run(&there, &out);
        // The first answer comes again, as from a worker whose job was delivered twice:
        // the same bytes, or one byte changed.
        let first = rt
            .block_on(async {
                let next = futures::StreamExt::next(&mut answers);
                tokio::time::timeout(Duration::from_secs(60), next).await
            })
            .unwrap()
            .unwrap();
        let mut payload = first.payload.to_vec();
        if differs {
            let last = payload.len() - 1;
            payload[last] ^= 1;
        }
        rt.block_on(async {
            client
                .publish_with_headers(first.subject, first.headers.unwrap(), payload.into())
                .await
                .unwrap();
            client.flush().await.unwrap();
        });
        let o = run.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        if differs {
            assert!(!o.status.success(), "{err}");
            assert!(err.contains("differ (w sent the second)"), "{err}");
        } else {
            assert!(o.status.success(), "{err}");
            assert_same(&here, &out, "an answer twice");
        }
    }
}

/// Waits until the job stream holds a job (its file store has grown).
fn wait_for_jobs(nats: &LocalNats) {
    let dir = nats.store().to_path_buf();
    let started = Instant::now();
    loop {
        let found = walk(&dir).iter().any(|p| {
            p.to_string_lossy().contains("FLOTILLA_JOBS")
                && p.extension().is_some_and(|e| e == "blk")
                && std::fs::metadata(p).is_ok_and(|m| m.len() > 0)
        });
        if found {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no job queued");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

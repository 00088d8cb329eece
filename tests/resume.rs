//! Crash-safe resume: a run killed with SIGKILL at several points, or whose job store
//! ends in a torn record, is continued with `--resume` and ends with the same results as
//! the run that was never interrupted, bit for bit; a shared `--cache` computes identical
//! jobs once.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crate::common::same::assert_same;
use flotilla::run::{RunOptions, run};
use flotilla::scenario;

use crate::common;

const FEDBUFF: &str = "FedBuff(concurrency: 6, buffer: 3)";

fn flotilla() -> Command {
    Command::new(env!("CARGO_BIN_EXE_flotilla"))
}

/// The kinds of the complete records in a job store (1: training, 2: evaluation), read
/// without touching the file, as the store's format describes it.
fn records(store: &Path) -> Vec<u8> {
    let bytes = std::fs::read(store).unwrap_or_default();
    let Some(start) = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(1)
        .map(|(i, _)| i + 1)
    else {
        return Vec::new();
    };
    let (mut at, mut kinds) = (start, Vec::new());
    while at + 38 <= bytes.len() {
        let size = u32::from_le_bytes(bytes[at + 2..at + 6].try_into().unwrap()) as usize;
        let end = at + 38 + size + 8;
        if end > bytes.len() {
            break;
        }
        kinds.push(bytes[at + 1]);
        at = end;
    }
    kinds
}

/// Runs `file` into `out` until the store holds `kill_at` complete records (or it
/// ends), then kills it with SIGKILL; returns whether it was killed.
fn run_and_kill(file: &Path, out: &Path, kill_at: usize) -> bool {
    let mut child = flotilla()
        .args(["run", file.to_str().unwrap(), "--quiet", "--out"])
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let store = out.join("jobs.store");
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if records(&store).len() >= kill_at {
            child.kill().unwrap();
            child.wait().unwrap();
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn resume(file: &Path, dir: &Path) -> (Duration, String) {
    let started = Instant::now();
    let out = flotilla()
        .args(["run", file.to_str().unwrap(), "--quiet", "--resume"])
        .arg(dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "resume failed: {stderr}");
    (started.elapsed(), stderr)
}

#[test]
fn a_killed_run_resumes_to_the_same_results() {
    let tmp = tempfile::tempdir().unwrap();
    let file = common::small_scenario(tmp.path(), "resume", FEDBUFF, 12, 2, "F32");
    let reference = tmp.path().join("reference");
    let started = Instant::now();
    let status = flotilla()
        .args(["run", file.to_str().unwrap(), "--quiet", "--out"])
        .arg(&reference)
        .status()
        .unwrap();
    assert!(status.success());
    let whole = started.elapsed();
    let kinds = records(&reference.join("jobs.store"));
    let evals = kinds.iter().filter(|&&k| k == 2).count();
    assert!(evals >= 5 && kinds.len() > 40, "{} records", kinds.len());

    // Killed early, mid-way, just after an evaluation was stored (the next one is
    // running), at 90%, and after every job is in (while the results are written).
    let after_eval = kinds.iter().rposition(|&k| k == 2).unwrap();
    let points = [
        ("early", 2),
        ("halfway", kinds.len() / 2),
        ("after an evaluation", after_eval),
        ("at 90%", kinds.len() * 9 / 10),
        ("while writing", kinds.len()),
    ];
    for (what, at) in points {
        let dir = tmp.path().join(what.replace(' ', "-"));
        let killed = run_and_kill(&file, &dir, at);
        let (took, stderr) = resume(&file, &dir);
        eprintln!(
            "killed {what} ({}): resumed in {:.1} s, whole run {:.1} s; {}",
            if killed { "killed" } else { "it had ended" },
            took.as_secs_f64(),
            whole.as_secs_f64(),
            stderr.trim()
        );
        assert_same(&reference, &dir, what);
    }

    // A crash in the middle of writing a record: the store ends in a torn one.
    let torn = tmp.path().join("torn");
    std::fs::create_dir_all(&torn).unwrap();
    let mut bytes = std::fs::read(reference.join("jobs.store")).unwrap();
    bytes.truncate(bytes.len() * 2 / 3);
    std::fs::write(torn.join("jobs.store"), &bytes).unwrap();
    let (_, stderr) = resume(&file, &torn);
    assert!(stderr.contains("jobs taken from the store"), "{stderr}");
    assert_same(&reference, &torn, "a torn record");
}

#[test]
fn a_store_that_cannot_be_trusted_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let file = common::small_scenario(tmp.path(), "refused", common::FEDAVG, 2, 1, "F32");
    let dir = tmp.path().join("run");
    std::fs::create_dir_all(&dir).unwrap();
    let store = dir.join("jobs.store");
    let refusal = |expect: &str| {
        let out = flotilla()
            .args(["run", file.to_str().unwrap(), "--quiet", "--resume"])
            .arg(&dir)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(expect), "{stderr}");
    };
    refusal("no job store to resume from");
    std::fs::write(
        &store,
        "flotilla job store 1\nflotilla 0.0.1 Tch Cuda riscv\n",
    )
    .unwrap();
    refusal("not by this");
}

/// A shared cache: the second of two identical runs computes nothing, and a run whose
/// jobs differ takes nothing from it.
#[test]
fn a_shared_cache_computes_identical_jobs_once() {
    let tmp = tempfile::tempdir().unwrap();
    let cache: PathBuf = tmp.path().join("cache");
    let go = |name: &str, lr: &str| {
        let file = common::small_scenario(tmp.path(), name, FEDBUFF, 3, 2, "F32");
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, text.replace("lr: 0.1", lr)).unwrap();
        batched(&file, name == "batched");
        let loaded = scenario::load(&file).unwrap();
        let out = tmp
            .path()
            .join(format!("{name}-{}", rand_suffix(tmp.path())));
        let r = run(
            &loaded,
            RunOptions {
                cache: Some(cache.clone()),
                ..RunOptions::quiet(Some(out), Arc::new(AtomicBool::new(false)))
            },
        )
        .unwrap();
        (r.dir, r.reused)
    };
    let (first, (taken, computed)) = go("a", "lr: 0.1");
    assert_eq!(taken, 0);
    assert!(computed > 10, "{computed} jobs");
    let (second, reused) = go("a", "lr: 0.1");
    assert_eq!(reused, (computed, 0), "every job comes from the cache");
    assert_same(&first, &second, "a cached run");
    // Another learning rate: the same jobs in name only, none of them shared.
    let (_, (taken, _)) = go("b", "lr: 0.05");
    assert_eq!(
        taken, 0,
        "a job of another learning rate came from the cache"
    );
    // Jobs trained in batches are stored by batch: a batch's sums round differently.
    let (first, (_, computed)) = go("batched", "lr: 0.02");
    let (second, reused) = go("batched", "lr: 0.02");
    assert_eq!(reused, (computed, 0), "every batch comes from the cache");
    assert_same(&first, &second, "a cached batched run");
}

/// Trains up to three clients' jobs in one batch when `on`.
fn batched(file: &Path, on: bool) {
    if on {
        let text = std::fs::read_to_string(file).unwrap();
        let text = text.replace("pool: (workers: 2)", "pool: (workers: 2, batch_clients: 3)");
        assert!(text.contains("batch_clients"));
        std::fs::write(file, text).unwrap();
    }
}

/// A fresh name in `dir`.
fn rand_suffix(dir: &Path) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

//! Whole runs of a tiny scenario on the real data and model: outputs, determinism across
//! seeds and worker counts, byte accounting, interruption.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use flotilla::run::{RunOptions, RunResult, run};
use flotilla::scenario::{self, Loaded};

use crate::common;

/// The small scenario, 3 rounds.
fn tiny(dir: &Path, workers: usize, wire: &str) -> Loaded {
    tiny_with(dir, common::FEDAVG, workers, wire)
}

fn tiny_with(dir: &Path, algorithm: &str, workers: usize, wire: &str) -> Loaded {
    let dir = dir.join(format!("{}-{workers}-{wire}", algorithm.len()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = common::small_scenario(&dir, "tiny", algorithm, 3, workers, wire);
    scenario::load(&file).unwrap()
}

fn go(loaded: &Loaded, out: PathBuf) -> RunResult {
    let opts = RunOptions::quiet(Some(out), Arc::new(AtomicBool::new(false)));
    run(loaded, opts).unwrap_or_else(|e| panic!("{e}"))
}

/// summary.json without its wall-clock part.
fn deterministic_summary(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v.as_object_mut().unwrap().remove("wall");
    v
}

#[test]
fn runs_are_reproducible_whatever_the_worker_count() {
    let tmp = tempfile::tempdir().unwrap();
    let a = go(&tiny(tmp.path(), 2, "F16"), tmp.path().join("a"));
    let b = go(&tiny(tmp.path(), 2, "F16"), tmp.path().join("b"));
    let c = go(&tiny(tmp.path(), 1, "F16"), tmp.path().join("c"));
    let sa = deterministic_summary(&a.dir);
    assert_eq!(sa, deterministic_summary(&b.dir));
    assert_eq!(sa, deterministic_summary(&c.dir));
    for file in ["timeline.csv", "clients.csv"] {
        let read = |d: &Path| std::fs::read_to_string(d.join(file)).unwrap();
        assert_eq!(read(&a.dir), read(&b.dir), "{file}");
        assert_eq!(read(&a.dir), read(&c.dir), "{file}");
    }
    // The run really learned something and really went through the network model.
    let s = &a.summary;
    assert_eq!(s.rounds, 3);
    assert!(s.global_accuracy.unwrap() > 0.1);
    assert!(s.messages_lost > 0 || s.dropouts > 0);
}

#[test]
fn async_runs_are_reproducible_whatever_the_worker_count() {
    let tmp = tempfile::tempdir().unwrap();
    for algorithm in [
        "FedAsync(concurrency: 5, alpha: 0.5, staleness: Polynomial(exponent: 0.5))",
        "FedBuff(concurrency: 6, buffer: 3, server_lr: 1.0, max_staleness: 4)",
    ] {
        let out = |w: usize| {
            go(
                &tiny_with(tmp.path(), algorithm, w, "F16"),
                tmp.path().join(format!("{}-{w}", algorithm.len())),
            )
        };
        let (a, b) = (out(1), out(2));
        assert_eq!(
            deterministic_summary(&a.dir),
            deterministic_summary(&b.dir),
            "{algorithm}"
        );
        for file in ["timeline.csv", "updates.csv"] {
            let read = |d: &Path| std::fs::read_to_string(d.join(file)).unwrap();
            assert_eq!(read(&a.dir), read(&b.dir), "{algorithm}: {file}");
        }
        // Asynchronous: updates arrive with staleness, every one counted.
        let st = &a.summary.staleness;
        assert!(st.max.unwrap() > 0, "{algorithm}");
        assert_eq!(st.histogram.iter().sum::<u64>(), a.summary.updates_received);
        assert_eq!(st.histogram.len() as u64, st.max.unwrap() + 1);
        assert_eq!(a.summary.model_version, 3);
    }
}

#[test]
fn personalization_fine_tunes_each_client_before_its_evaluation() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = go(&tiny(tmp.path(), 2, "F32"), tmp.path().join("plain"));
    assert_eq!(
        plain.summary.personalized_accuracy,
        plain.summary.local_accuracy
    );
    let personalized = |workers: usize| {
        let dir = tmp.path().join(format!("personal-{workers}"));
        std::fs::create_dir_all(&dir).unwrap();
        let file = common::small_scenario(&dir, "tiny", common::FEDAVG, 3, workers, "F32");
        let text = std::fs::read_to_string(&file).unwrap().replace(
            "    stop: (",
            "    eval: (personalize: FineTune(steps: 10)),\n    stop: (",
        );
        std::fs::write(&file, text).unwrap();
        go(&scenario::load(&file).unwrap(), dir.join("run"))
    };
    let (a, b) = (personalized(1), personalized(2));
    assert_eq!(deterministic_summary(&a.dir), deterministic_summary(&b.dir));
    let s = &a.summary;
    // The global model is the same; only the evaluation personalizes.
    assert_eq!(s.global_accuracy, plain.summary.global_accuracy);
    assert_eq!(s.local_accuracy, plain.summary.local_accuracy);
    // Ten local steps on skewed (Dirichlet 0.5) clients fit their own label mix.
    assert!(
        s.personalized_accuracy.unwrap() > s.local_accuracy.unwrap(),
        "personalized {:?} vs global on local splits {:?}",
        s.personalized_accuracy,
        s.local_accuracy
    );
}

#[test]
fn run_directory_has_every_file_and_consistent_figures() {
    let tmp = tempfile::tempdir().unwrap();
    let r = go(&tiny(tmp.path(), 2, "F32"), tmp.path().join("run"));
    let summary = deterministic_summary(&r.dir);
    for key in [
        "global_accuracy",
        "personalized_accuracy",
        "sim_seconds",
        "updates_applied",
        "updates_discarded",
        "bytes_up",
        "bytes_down",
        "adapter_params",
        "model_params",
    ] {
        assert!(
            summary.get(key).is_some_and(|v| !v.is_null()),
            "{key} missing"
        );
    }
    let s = &r.summary;
    // f32 on the wire: 4 bytes per trainable parameter, every attempt counted.
    assert_eq!(s.update_bytes, 4 * s.adapter_params as u64);
    assert_eq!(s.bytes_up, s.messages_up * s.update_bytes);
    assert_eq!(s.bytes_down, s.messages_down * s.update_bytes);
    // Closed form of the tiny model's trainable parameters: LoRA on q and v in one block
    // (2 x (16x2 + 2x16)) plus the head (16x10 + 10).
    assert_eq!(s.adapter_params, 2 * (16 * 2 + 2 * 16) + 16 * 10 + 10);
    let timeline = std::fs::read_to_string(r.dir.join("timeline.csv")).unwrap();
    assert_eq!(
        timeline.lines().count(),
        1 + 1 + 3,
        "header, the initial model, one row per round"
    );
    assert!(
        timeline.lines().nth(1).unwrap().starts_with("0.0,0,0,"),
        "the initial model at time zero: {timeline}"
    );
    let clients = std::fs::read_to_string(r.dir.join("clients.csv")).unwrap();
    assert_eq!(clients.lines().count(), 1 + common::CLIENTS);
    let resolved =
        scenario::parse(&std::fs::read_to_string(r.dir.join("scenario.ron")).unwrap()).unwrap();
    assert_eq!(resolved.name, "tiny");
}

/// `stop: (rounds: 0)` evaluates the initial model at time zero, as every run's first
/// timeline row does, and nothing else: no client is selected, nothing is sent.
#[test]
fn zero_rounds_evaluate_the_initial_model_and_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("zero");
    std::fs::create_dir_all(&dir).unwrap();
    let file = common::small_scenario(&dir, "zero", common::FEDAVG, 0, 1, "F32");
    let zero = go(&scenario::load(&file).unwrap(), tmp.path().join("zero-run"));
    let three = go(&tiny(tmp.path(), 1, "F32"), tmp.path().join("three-run"));
    let rows = |dir: &Path| -> Vec<String> {
        let text = std::fs::read_to_string(dir.join("timeline.csv")).unwrap();
        text.lines().skip(1).map(str::to_string).collect()
    };
    let (zero_rows, three_rows) = (rows(&zero.dir), rows(&three.dir));
    assert_eq!(zero_rows.len(), 1, "{zero_rows:?}");
    assert_eq!(zero_rows[0], three_rows[0]);
    assert!(zero_rows[0].starts_with("0.0,0,0,"), "{zero_rows:?}");
    let s = &zero.summary;
    assert_eq!((s.messages_up, s.messages_down, s.bytes_up), (0, 0, 0));
}

#[test]
fn f16_halves_the_bytes_of_f32() {
    let tmp = tempfile::tempdir().unwrap();
    let r = go(&tiny(tmp.path(), 2, "F16"), tmp.path().join("run"));
    let s = &r.summary;
    assert_eq!(s.update_bytes, 2 * s.adapter_params as u64);
    assert_eq!(s.bytes_up, s.messages_up * s.update_bytes);
}

#[test]
fn an_interrupted_run_still_writes_its_results() {
    let tmp = tempfile::tempdir().unwrap();
    let loaded = tiny(tmp.path(), 1, "F32");
    let interrupt = Arc::new(AtomicBool::new(true));
    let opts = RunOptions::quiet(Some(tmp.path().join("cut")), interrupt);
    let r = run(&loaded, opts).unwrap();
    assert!(r.summary.interrupted);
    let summary = deterministic_summary(&r.dir);
    assert_eq!(summary["interrupted"], true);
    assert_eq!(summary["stop_reason"], "interrupted");
    assert!(r.dir.join("timeline.csv").exists() && r.dir.join("clients.csv").exists());
}

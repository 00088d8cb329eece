//! FL-TAC end to end on the real data and a tiny model: one adapter per task on the
//! wire, clustering records, per-task columns, determinism across worker counts.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use flotilla::run::{RunOptions, RunResult, run};
use flotilla::scenario;

/// Six laptops on lossless links; two tasks (upright and inverted digits), clients 0 and
/// 1 hold both.
fn scenario_file(dir: &Path, algorithm: &str, workers: usize) -> PathBuf {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/data/mnist-10k");
    let text = format!(
        r#"Scenario(
    name: "fltac-tiny", seed: 3,
    data: (source: Idx(dir: "{data}"), partition: Dirichlet(alpha: 1.0), clients: 6, min_samples: 20,
           tasks: [
               (name: "upright", classes: [0, 1, 2, 3, 4], clients: [0, 1, 2, 3]),
               (name: "inverted", classes: [0, 1, 2, 3, 4], domain: [Invert, Blur(sigma: 0.5)], clients: [0, 1, 4, 5]),
           ]),
    model: (backbone: Vit(patch: 7, dim: 16, depth: 1, heads: 2, mlp: 32),
            adapter: Lora(rank: 2, alpha: 4.0, targets: [Q, V])),
    training: (epochs: 1, batch_size: 32, optimizer: Sgd(lr: 0.1)),
    algorithm: {algorithm},
    population: [
        (class: "laptop", count: 6, speed: Const("4000 samples/s"),
         uplink: (latency: Const("10ms"), bandwidth: Const("20Mbit/s")),
         downlink: (latency: Const("10ms"), bandwidth: Const("50Mbit/s"))),
    ],
    wire: (encoding: F16),
    stop: (rounds: 3),
    pool: (workers: {workers}),
)
"#,
        data = data.display()
    );
    let file = dir.join(format!("{}-{workers}.ron", algorithm.len()));
    std::fs::write(&file, text).unwrap();
    file
}

fn go(dir: &Path, algorithm: &str, workers: usize) -> RunResult {
    let loaded = scenario::load(&scenario_file(dir, algorithm, workers)).unwrap();
    let opts = RunOptions::quiet(
        Some(dir.join(format!("out-{}-{workers}", algorithm.len()))),
        Arc::new(AtomicBool::new(false)),
    );
    run(&loaded, opts).unwrap_or_else(|e| panic!("{e}"))
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap()
}

const FLTAC: &str = "FLTAC(k: 2, server: FedAvg(clients_per_round: 6))";
const SHARED: &str = "FedAvg(clients_per_round: 6)";

#[test]
fn fltac_sends_one_adapter_per_task_and_records_its_clusterings() {
    let tmp = tempfile::tempdir().unwrap();
    let a = go(tmp.path(), FLTAC, 1);
    let b = go(tmp.path(), FLTAC, 2);
    for file in ["timeline.csv", "clients.csv", "clusterings.csv"] {
        assert_eq!(read(&a.dir, file), read(&b.dir, file), "{file}");
    }
    let s = &a.summary;
    // 8 slots (clients 0 and 1 train two adapters) in each of 3 rounds, both ways.
    assert_eq!(s.bytes_up, 3 * 8 * s.update_bytes);
    assert_eq!(s.bytes_down, 3 * 8 * s.update_bytes);
    assert_eq!(s.bytes_up_per_round, Some(8.0 * s.update_bytes as f64));
    // One clustering per round, each assigning all 8 adapters.
    let clusterings = read(&a.dir, "clusterings.csv");
    let rows: Vec<&str> = clusterings.lines().skip(1).collect();
    assert_eq!(rows.len(), 3);
    for row in &rows {
        let sizes: u64 = row
            .rsplit(',')
            .next()
            .unwrap()
            .split(' ')
            .map(|n| n.parse::<u64>().unwrap())
            .sum();
        assert_eq!(sizes, 8, "{row}");
    }
    assert_eq!(s.cluster_purity_history.len(), 3);
    assert!(
        s.cluster_purity_history
            .iter()
            .all(|p| (0.5..=1.0).contains(p))
    );
    // Per-task accuracy: a column per task, and the summary's per-task figures.
    let timeline = read(&a.dir, "timeline.csv");
    let header = timeline.lines().next().unwrap();
    assert!(header.ends_with(",cluster_purity,updates_applied,updates_discarded,bytes_up,bytes_down,accuracy_upright,accuracy_inverted"), "{header}");
    let names: Vec<&str> = s.tasks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["upright", "inverted"]);
    assert!(s.tasks.iter().all(|t| t.accuracy.unwrap() > 0.0));
}

#[test]
fn the_shared_baseline_sends_one_adapter_per_client() {
    let tmp = tempfile::tempdir().unwrap();
    let r = go(tmp.path(), SHARED, 2);
    let s = &r.summary;
    assert_eq!(s.bytes_up, 3 * 6 * s.update_bytes);
    assert!(s.cluster_purity.is_none());
    assert!(!r.dir.join("clusterings.csv").exists());
    // Both tasks are scored with the one global model: the global accuracy is the
    // pooled accuracy over both tasks' test sets (same size here).
    let (a, b) = (s.tasks[0].accuracy.unwrap(), s.tasks[1].accuracy.unwrap());
    assert!((s.global_accuracy.unwrap() - (a + b) / 2.0).abs() < 1e-9);
}

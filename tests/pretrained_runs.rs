//! Whole runs on imported checkpoints (the parity fixtures of tests/pretrained.rs): the
//! UCI digits enlarged to the checkpoints' 32 pixels, every method through the pool with
//! client batching and the frozen-prefix cache, and `flotilla adapters` on them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use flotilla::Chain;
use flotilla::run::{RunOptions, run};
use flotilla::scenario;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A scenario of eight clients on the UCI digits over `checkpoint` with `adapter`.
fn scenario(dir: &Path, name: &str, backbone: &str, adapter: &str, head: &str) -> PathBuf {
    let data = repo().join("scenarios/data/uci-digits/digits.csv.gz");
    let text = format!(
        r#"Scenario(
    name: "{name}", seed: 3,
    data: (source: Csv(file: "{data}", width: 8, height: 8, max: 16),
           image: (side: 32, channels: 1), partition: Iid, clients: 8, min_samples: 20),
    model: (backbone: {backbone}, adapter: {adapter}, head: {head}),
    training: (epochs: 1, batch_size: 16, optimizer: Sgd(lr: 0.05)),
    algorithm: FedAvg(clients_per_round: 4),
    population: [(class: "laptop", count: 8, speed: Const("200 samples/s"),
        uplink: (latency: Const("10ms"), bandwidth: Const("20Mbit/s")),
        downlink: (latency: Const("10ms"), bandwidth: Const("50Mbit/s")))],
    stop: (rounds: 2),
    pool: (workers: 1, batch_clients: 4),
)
"#,
        data = data.display()
    );
    let file = dir.join(format!("{name}.ron"));
    std::fs::write(&file, text).unwrap();
    file
}

fn timm() -> String {
    let file = repo().join("tests/fixtures/pretrained/timm-vit.safetensors");
    format!(
        r#"Pretrained(file: "{}", layout: Timm, heads: 3)"#,
        file.display()
    )
}

fn clip() -> String {
    let file = repo().join("tests/fixtures/pretrained/clip-vit.safetensors");
    format!(
        r#"Pretrained(file: "{}", layout: OpenClip, heads: 3, activation: QuickGelu)"#,
        file.display()
    )
}

/// The timeline's rows, without the header.
fn timeline(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("timeline.csv")).unwrap();
    text.lines().skip(1).map(str::to_string).collect()
}

#[test]
fn imported_checkpoints_run_through_the_pool_from_the_initial_model_on() {
    let tmp = tempfile::tempdir().unwrap();
    // Each method trains on both layouts in tests/pretrained.rs; here the pool's paths:
    // batched LoRA and FiLM (the prefix cache), FiT's naive Bayes, FedAPT reading CLIP's
    // projected features, FedBABU's full body with its head frozen.
    let timm = timm();
    let clip = clip();
    let runs = [
        (
            "timm-lora",
            &timm,
            "Lora(rank: 2, alpha: 4.0, targets: [Q, V])",
            "Linear",
        ),
        ("timm-fit", &timm, "Film", "NaiveBayes(covariance: Lda)"),
        ("clip-fedapt", &clip, "AdaptivePrompt(tokens: 2)", "Linear"),
        ("clip-babu", &clip, "Full", "Frozen"),
    ];
    for (name, backbone, adapter, head) in runs {
        let file = scenario(tmp.path(), name, backbone, adapter, head);
        let loaded = scenario::load(&file).unwrap_or_else(|e| panic!("{name}: {e}"));
        let opts = RunOptions::quiet(
            Some(tmp.path().join(name)),
            Arc::new(AtomicBool::new(false)),
        );
        let result = run(&loaded, opts).unwrap_or_else(|e| panic!("{name}: {e}"));
        let rows = timeline(&result.dir);
        assert_eq!(
            rows.len(),
            3,
            "{name}: the initial model and two rounds: {rows:?}"
        );
        assert!(rows[0].starts_with("0.0,0,0,"), "{name}: {rows:?}");
        let s = &result.summary;
        assert!(
            s.updates_applied >= 4,
            "{name}: {} updates",
            s.updates_applied
        );
        assert!(s.global_accuracy.is_some_and(f64::is_finite), "{name}");
    }
}

#[test]
fn keeping_the_checkpoints_head_needs_one_for_the_datas_classes() {
    let tmp = tempfile::tempdir().unwrap();
    // The timm fixture's head has ten classes, as the digits do.
    let file = scenario(tmp.path(), "keep", &timm(), "HeadOnly", "Pretrained");
    let loaded = scenario::load(&file).unwrap();
    let opts = RunOptions::quiet(
        Some(tmp.path().join("keep")),
        Arc::new(AtomicBool::new(false)),
    );
    run(&loaded, opts).unwrap();
    // The CLIP tower has no head to keep.
    let file = scenario(tmp.path(), "clip-keep", &clip(), "HeadOnly", "Pretrained");
    let error = Chain(&scenario::load(&file).unwrap_err()).to_string();
    assert!(
        error.contains("model.head") && error.contains("no head of its own"),
        "{error}"
    );
}

#[test]
fn adapters_reports_the_imported_model() {
    let tmp = tempfile::tempdir().unwrap();
    let file = scenario(tmp.path(), "inventory", &clip(), "Film", "Linear");
    let out = Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .args(["adapters", file.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("ViT patch 4 dim 48 depth 2 heads 3 mlp 192"),
        "{text}"
    );
    // FiLM: a scale and a shift after both norms of both blocks; the head reads the
    // 24 projected features: 24 x 10 + 10.
    let film = 2 * 2 * 2 * 48 + 24 * 10 + 10;
    assert!(
        text.lines()
            .any(|l| l.starts_with("| FiLM | linear | ") && l.contains(&format!("| {film} |"))),
        "{text}"
    );
}

//! Devices as the model makes them: compute time from the counted FLOPs, devices without
//! the memory for a job never selected.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::{Prepared, RunOptions, prepare, run};
use crate::error::Chain;
use crate::model::{Adaptation, AdapterSpec, Optimizer, SampleCost};
use crate::notice::ignored;
use crate::scenario::{self, Loaded};

/// LoRA on the tiny ViT.
const LORA: &str = "adapter: Lora(rank: 2, alpha: 4.0, targets: [Q, V])";

/// A FedAvg run of the tiny model (`adapter` and `eval` as given) on the bundled MNIST: a
/// class of devices with `small` bytes of memory and one with `big`, both training at
/// 20 MFLOP/s.
fn scenario(dir: &Path, small: u64, big: u64) -> Loaded {
    scenario_with(dir, small, big, LORA, "()")
}

fn scenario_with(dir: &Path, small: u64, big: u64, adapter: &str, eval: &str) -> Loaded {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/data/mnist-10k");
    let text = format!(
        r#"Scenario(
    name: "devices", seed: 3,
    data: (source: Idx(dir: "{data}"), partition: Dirichlet(alpha: 0.5), clients: 12, min_samples: 20),
    model: (backbone: Vit(patch: 7, dim: 16, depth: 2, heads: 2, mlp: 32), {adapter}),
    training: (epochs: 2, batch_size: 8, optimizer: Sgd(lr: 0.1)),
    algorithm: FedAvg(clients_per_round: 4),
    population: [
        (class: "small", count: 4, speed: Const("20 MFLOP/s"), memory: "{small}B",
         uplink: (latency: Const("10ms"), bandwidth: Const("20Mbit/s")),
         downlink: (latency: Const("10ms"), bandwidth: Const("20Mbit/s"))),
        (class: "big", count: 8, speed: Const("20 MFLOP/s"), memory: "{big}B",
         uplink: (latency: Const("10ms"), bandwidth: Const("20Mbit/s")),
         downlink: (latency: Const("10ms"), bandwidth: Const("20Mbit/s"))),
    ],
    stop: (rounds: 4),
    eval: {eval},
    pool: (workers: 1),
)
"#,
        data = data.display()
    );
    let file = dir.join("devices.ron");
    std::fs::write(&file, text).unwrap();
    scenario::load(&file).unwrap()
}

/// One training job's memory and per-sample FLOPs for the scenario's model.
fn cost(loaded: &Loaded) -> SampleCost {
    SampleCost::count(&loaded.vit_before_loading().unwrap(), &loaded.adaptation())
}

#[derive(serde::Deserialize)]
struct ClientRow {
    client: usize,
    class: String,
    eligible: bool,
    selected: u64,
    trained: u64,
    compute_seconds: f64,
}

fn clients(dir: &Path) -> Vec<ClientRow> {
    let mut reader = csv::Reader::from_path(dir.join("clients.csv")).unwrap();
    reader.deserialize().map(Result::unwrap).collect()
}

#[test]
fn compute_time_is_the_counted_flops_over_the_speed_and_small_devices_sit_out() {
    let tmp = tempfile::tempdir().unwrap();
    let probe = scenario(tmp.path(), 1, 1);
    let cost = cost(&probe);
    let job = cost.training_memory(8, &Optimizer::Sgd { lr: 0.1 });
    let loaded = scenario(tmp.path(), job - 1, job);
    let Prepared { tasks, .. } = prepare(&loaded, None, None, ignored()).unwrap();
    let opts = RunOptions::quiet(
        Some(tmp.path().join("out")),
        Arc::new(AtomicBool::new(false)),
    );
    let result = run(&loaded, opts).unwrap();

    let rows = clients(&result.dir);
    let speed = 20e6;
    let micros = |flops: u64| (flops as f64 / speed * 1e6).ceil() as u64;
    let mut trained = 0;
    for row in &rows {
        if row.class == "small" {
            // One byte short of a job: never picked, and counted.
            assert!(!row.eligible);
            assert_eq!(row.selected, 0, "client {}", row.client);
            continue;
        }
        assert!(row.eligible);
        let held: u64 = tasks.slots[row.client]
            .iter()
            .map(|s| s.train.len() as u64)
            .sum();
        // Two epochs from the cached patch embedding; the first job also embeds every
        // sample once.
        let later = micros(2 * held * cost.cached());
        let first = micros(2 * held * cost.cached() + held * cost.prefix);
        let expected = match row.trained {
            0 => 0,
            n => first + (n - 1) * later,
        };
        let got = (row.compute_seconds * 1e6).round() as u64;
        assert_eq!(got, expected, "client {}", row.client);
        trained += row.trained;
    }
    assert!(trained >= 8, "the big devices did the rounds' work");
    let classes = &result.summary.classes;
    assert_eq!(classes.len(), 2);
    assert_eq!(
        (classes[0].class.as_str(), classes[0].ineligible),
        ("small", 4)
    );
    assert_eq!((classes[0].selected, classes[0].trained), (0, 0));
    assert_eq!(
        (classes[1].class.as_str(), classes[1].ineligible),
        ("big", 0)
    );
    assert_eq!(classes[1].trained, trained);
}

#[test]
fn personalizing_on_the_device_adds_its_steps_to_every_job() {
    let tmp = tempfile::tempdir().unwrap();
    let fedbabu = "adapter: Full, head: Frozen";
    let eval = "(personalize: FineTuneHead(steps: 3), personalize_on_device: true)";
    let loaded = scenario_with(tmp.path(), u64::MAX / 2, u64::MAX / 2, fedbabu, eval);
    let config = loaded.vit_before_loading().unwrap();
    let body = SampleCost::count(&config, &loaded.adaptation());
    let head = SampleCost::count(&config, &Adaptation::linear(AdapterSpec::HeadOnly));
    let Prepared { tasks, .. } = prepare(&loaded, None, None, ignored()).unwrap();
    let opts = RunOptions::quiet(
        Some(tmp.path().join("out")),
        Arc::new(AtomicBool::new(false)),
    );
    let result = run(&loaded, opts).unwrap();
    let mut checked = 0;
    for row in clients(&result.dir) {
        let held: u64 = tasks.slots[row.client]
            .iter()
            .map(|s| s.train.len() as u64)
            .sum();
        // Two epochs of the whole body (nothing is a kept prefix), then three head steps
        // of 8 samples over the served body's features of those 24 samples.
        let flops = 2 * held * body.cached() + 3 * 8 * head.cached() + 24.min(held) * head.prefix;
        assert_eq!(body.prefix, 0);
        let job = (flops as f64 / 20e6 * 1e6).ceil() as u64;
        let got = (row.compute_seconds * 1e6).round() as u64;
        assert_eq!(got, row.trained * job, "client {}", row.client);
        checked += row.trained;
    }
    assert!(checked >= 8);
}

#[test]
fn speeds_mixing_samples_and_flops_are_refused_by_field() {
    let tmp = tempfile::tempdir().unwrap();
    let loaded = scenario(tmp.path(), 1, 1);
    let mut text = std::fs::read_to_string(tmp.path().join("devices.ron")).unwrap();
    text = text.replacen(
        r#"speed: Const("20 MFLOP/s")"#,
        r#"speed: Uniform(low: "20 samples/s", high: "2 GFLOP/s")"#,
        1,
    );
    drop(loaded);
    let file = tmp.path().join("mixed.ron");
    std::fs::write(&file, text).unwrap();
    let err = Chain(&scenario::load(&file).unwrap_err()).to_string();
    assert!(err.contains("population[0].speed"), "{err}");
    assert!(err.contains("samples/s or every value in FLOP/s"), "{err}");
}

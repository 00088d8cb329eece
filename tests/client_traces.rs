//! Per-client link traces: a `client,time,value` CSV gives each client of a class its own
//! steps, and `Scaled(dist, profile)` a level drawn per client times a shared profile.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use flotilla::Chain;
use flotilla::run::{RunOptions, run};
use flotilla::scenario::{self, Loaded};
use flotilla_actors::SimTime;
use flotilla_actors::net::{LinkValue, Steps};

/// Two clients whose downlink bandwidth is `downlink`, with `files` written beside.
fn scenario(dir: &Path, downlink: &str, files: &[(&str, &str)]) -> Loaded {
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/data/mnist-10k");
    let text = format!(
        r#"Scenario(
    name: "client-traces", seed: 9,
    data: (source: Idx(dir: "{data}"), partition: Iid, clients: 3, min_samples: 20),
    model: (backbone: Vit(patch: 7, dim: 16, depth: 1, heads: 2, mlp: 32), adapter: HeadOnly),
    training: (epochs: 1, batch_size: 16, optimizer: Sgd(lr: 0.1)),
    algorithm: FedAvg(clients_per_round: 3),
    population: [
        (class: "phone", count: 3, speed: Const("1000000 samples/s"),
         uplink: (latency: Const("0s"), bandwidth: Const("1Gbit/s")),
         downlink: (latency: Const("0s"), bandwidth: {downlink})),
    ],
    stop: (rounds: 1),
    pool: (workers: 1),
)
"#,
        data = data.display(),
    );
    let file = dir.join("client-traces.ron");
    std::fs::write(&file, text).unwrap();
    scenario::load(&file).unwrap_or_else(|e| panic!("{e}"))
}

fn steps(v: &LinkValue) -> Vec<(f64, f64)> {
    match v {
        LinkValue::Steps(s) => s
            .points()
            .iter()
            .map(|&(t, x)| (t.as_secs_f64(), x))
            .collect(),
        other => panic!("expected steps, got {other:?}"),
    }
}

const PER_CLIENT: &str = "client,time,value
0,0,2kbit/s
0,1s,80kbit/s
1,0,40000
2,0,1Mbit/s
2,500ms,2000
";

/// The scenario with its downlink bandwidth read from [`PER_CLIENT`].
fn per_client(dir: &Path) -> Loaded {
    scenario(
        dir,
        r#"ClientTrace("down.csv")"#,
        &[("down.csv", PER_CLIENT)],
    )
}

#[test]
fn each_client_follows_its_own_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let loaded = per_client(tmp.path());
    let config = loaded.sim_config().unwrap();
    let got: Vec<Vec<(f64, f64)>> = config
        .clients
        .iter()
        .map(|c| steps(&c.downlink.bandwidth))
        .collect();
    assert_eq!(
        got,
        [
            vec![(0.0, 2e3), (1.0, 8e4)],
            vec![(0.0, 4e4)],
            vec![(0.0, 1e6), (0.5, 2e3)],
        ]
    );
}

#[derive(serde::Deserialize)]
struct Activity {
    sim_seconds: f64,
    client: usize,
    state: String,
}

#[test]
fn downloads_are_retimed_at_each_clients_listed_times() {
    let tmp = tempfile::tempdir().unwrap();
    let loaded = per_client(tmp.path());
    let config = loaded.sim_config().unwrap();
    let opts = RunOptions::quiet(
        Some(tmp.path().join("out")),
        Arc::new(AtomicBool::new(false)),
    );
    let result = run(&loaded, opts).unwrap();
    let bits = 8.0 * result.summary.update_bytes as f64;
    assert!(bits > 2e3, "the model takes longer than the first second");
    let mut reader = csv::Reader::from_path(result.dir.join("activity.csv")).unwrap();
    let rows: Vec<Activity> = reader.deserialize().map(Result::unwrap).collect();
    for (client, spec) in config.clients.iter().enumerate() {
        let LinkValue::Steps(s) = &spec.downlink.bandwidth else {
            panic!("steps expected");
        };
        let done = finish(s, bits);
        let training = rows
            .iter()
            .find(|r| r.client == client && r.state == "training")
            .unwrap_or_else(|| panic!("client {client} never trained"));
        assert_eq!(
            SimTime::from_secs_ceil(training.sim_seconds),
            done,
            "client {client}"
        );
    }
}

/// When `bits` sent from time zero through `steps` have all arrived, to the microsecond
/// (rounded up): a reference written apart from the engine's fluid model.
fn finish(steps: &Steps, bits: f64) -> SimTime {
    let points = steps.points();
    let mut left = bits;
    for (i, &(start, rate)) in points.iter().enumerate() {
        let end = points.get(i + 1).map(|p| p.0.as_secs_f64());
        let span = end.map_or(f64::INFINITY, |e| e - start.as_secs_f64());
        if left <= rate * span {
            return SimTime::from_secs_ceil(start.as_secs_f64() + left / rate);
        }
        left -= rate * span;
    }
    unreachable!("the last step lasts forever")
}

#[test]
fn a_scaled_value_is_a_drawn_level_times_the_shared_profile() {
    let tmp = tempfile::tempdir().unwrap();
    let profile = "time,factor\n0,1\n6h,0.25\n18h,1.5\n";
    let draws = |seed: u64| -> Vec<f64> {
        let loaded = scenario(
            tmp.path(),
            r#"Scaled(LogNormal(median: "1Mbit/s", sigma: 0.8), "evening.csv")"#,
            &[("evening.csv", profile)],
        );
        let mut loaded = loaded;
        loaded.scenario.seed = seed;
        let config = loaded.sim_config().unwrap();
        config
            .clients
            .iter()
            .map(|c| {
                let s = steps(&c.downlink.bandwidth);
                let level = s[0].1;
                assert_eq!(
                    s,
                    [
                        (0.0, level),
                        (6.0 * 3600.0, 0.25 * level),
                        (18.0 * 3600.0, 1.5 * level)
                    ]
                );
                level
            })
            .collect()
    };
    let a = draws(9);
    assert_eq!(a, draws(9), "the same seed, the same levels");
    assert_ne!(a, draws(10), "another seed, other levels");
    assert!(a[0] != a[1] && a[1] != a[2], "one level per client: {a:?}");
}

#[test]
fn a_client_without_rows_is_refused_with_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("down.csv"), "0,0,1Mbit/s\n2,0,1Mbit/s\n").unwrap();
    let file = tmp.path().join("client-traces.ron");
    scenario(tmp.path(), "Const(\"1Mbit/s\")", &[]);
    let text = std::fs::read_to_string(&file).unwrap().replace(
        r#"bandwidth: Const("1Mbit/s")"#,
        r#"bandwidth: ClientTrace("down.csv")"#,
    );
    std::fs::write(&file, text).unwrap();
    let err = match scenario::load(&file) {
        Err(e) => Chain(&e).to_string(),
        Ok(l) => Chain(&l.sim_config().unwrap_err()).to_string(),
    };
    assert!(err.contains("population[0].downlink.bandwidth"), "{err}");
    assert!(
        err.contains("down.csv: client 1: needs at least one"),
        "{err}"
    );
}

//! FedScale's device traces: the capacity and behaviour pickles of
//! `tests/fixtures/fedscale/` (written by `scripts/fixtures/fedscale.py`) become clients'
//! speeds, bandwidths and availability, exactly as listed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use flotilla::Chain;
use flotilla::run::{RunOptions, run};
use flotilla::scenario::{self, Loaded};
use flotilla_actors::device::Availability;
use flotilla_actors::net::LinkValue;
use flotilla_actors::{Dist, SpeedUnit};

/// The capacity fixture: id -> (ms per sample, kbit/s).
const CAPACITY: [(u32, f64, f64); 3] =
    [(7, 25.0, 8000.5), (42, 100.0, 2000.0), (1003, 400.0, 500.0)];

/// One listed behaviour: its id, online intervals and period, in seconds.
type Behavior = (u32, Vec<(f64, f64)>, f64);

/// The behaviour fixture.
fn behaviors() -> Vec<Behavior> {
    vec![
        (5, vec![(0.0, 20.0)], 50.0),
        (11, vec![(10.0, 40.0), (60.0, 90.0)], 100.0),
    ]
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fedscale")
}

/// `clients` clients of the trace class, with `traces` as the class's trace section.
fn scenario(dir: &Path, seed: u64, traces: &str, clients: usize) -> Loaded {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/data/mnist-10k");
    let text = format!(
        r#"Scenario(
    name: "fedscale", seed: {seed},
    data: (source: Idx(dir: "{data}"), partition: Iid, clients: {clients}, min_samples: 20),
    model: (backbone: Vit(patch: 7, dim: 16, depth: 1, heads: 2, mlp: 32), adapter: HeadOnly),
    training: (epochs: 1, batch_size: 16, optimizer: Sgd(lr: 0.1)),
    algorithm: FedAsync(concurrency: 3, alpha: 0.5, staleness: Constant),
    population: [
        (class: "phone", count: {clients}, speed: Traces,
         uplink: (latency: Const("20ms"), bandwidth: Traces),
         downlink: (latency: Const("20ms"), bandwidth: Traces),
         availability: Traces,
         traces: {traces}),
    ],
    stop: (virtual_time: "250s"),
    eval: (every: "100s"),
    pool: (workers: 1),
)
"#,
        data = data.display(),
    );
    let file = dir.join(format!("fedscale-{seed}.ron"));
    std::fs::write(&file, text).unwrap();
    scenario::load(&file).unwrap_or_else(|e| panic!("{e}"))
}

fn traces(reference: &str) -> String {
    let dir = fixtures();
    format!(
        r#"(capacity: "{}", behavior: "{}"{reference})"#,
        dir.join("capacity.pkl").display(),
        dir.join("behavior.pkl").display()
    )
}

fn constant(d: &Dist) -> f64 {
    match d {
        Dist::Const(v) => *v,
        other => panic!("expected a constant, got {other:?}"),
    }
}

fn bandwidth(v: &LinkValue) -> f64 {
    match v {
        LinkValue::Draw(d) => constant(d),
        other => panic!("expected a drawn bandwidth, got {other:?}"),
    }
}

/// Which capacity device a client is, from its bandwidth (each device's is distinct).
fn device_of(bits_per_second: f64) -> (u32, f64, f64) {
    *CAPACITY
        .iter()
        .find(|(_, _, kbps)| kbps * 1e3 == bits_per_second)
        .unwrap_or_else(|| panic!("{bits_per_second} bit/s is no device's"))
}

/// Which behaviour a client follows, from its plan.
fn behavior_of(plan: &Availability) -> Behavior {
    let Availability::Periodic { on, period } = plan else {
        panic!("expected a periodic plan, got {plan:?}");
    };
    let on: Vec<(f64, f64)> = on
        .iter()
        .map(|(a, b)| (a.as_secs_f64(), b.as_secs_f64()))
        .collect();
    behaviors()
        .into_iter()
        .find(|(_, listed, p)| *listed == on && *p == period.as_secs_f64())
        .unwrap_or_else(|| panic!("{on:?} every {period:?} is no device's"))
}

#[test]
fn every_client_is_one_listed_device_drawn_from_the_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let assignment = |seed: u64| -> Vec<(u32, u32)> {
        let config = scenario(tmp.path(), seed, &traces(""), 12)
            .sim_config()
            .unwrap();
        config
            .clients
            .iter()
            .map(|c| {
                let (id, ms, kbps) = device_of(bandwidth(&c.uplink.bandwidth));
                // One device for speed and both directions: FedScale's rule without a
                // reference, three latencies per training sample.
                assert_eq!(bandwidth(&c.downlink.bandwidth), kbps * 1e3);
                assert_eq!(c.device.unit, SpeedUnit::Samples);
                assert_eq!(constant(&c.device.speed), 1e3 / (3.0 * ms));
                (id, behavior_of(&c.availability).0)
            })
            .collect()
    };
    let a = assignment(1);
    assert_eq!(a, assignment(1), "the same seed, the same devices");
    assert_ne!(a, assignment(2), "another seed, other devices");
    // Twelve draws from three and two devices reach every one of them.
    for (id, _, _) in CAPACITY {
        assert!(a.iter().any(|&(c, _)| c == id), "device {id} unused");
    }
    for (id, _, _) in behaviors() {
        assert!(a.iter().any(|&(_, b)| b == id), "behaviour {id} unused");
    }
}

#[test]
fn a_reference_model_makes_speeds_flops() {
    let tmp = tempfile::tempdir().unwrap();
    let config = scenario(tmp.path(), 1, &traces(r#", reference: "0.5 GFLOP""#), 12)
        .sim_config()
        .unwrap();
    for c in &config.clients {
        let (_, ms, _) = device_of(bandwidth(&c.uplink.bandwidth));
        assert_eq!(c.device.unit, SpeedUnit::Flops);
        assert_eq!(constant(&c.device.speed), 0.5e9 / (ms / 1e3));
    }
}

#[derive(serde::Deserialize)]
struct Switch {
    sim_seconds: f64,
    client: usize,
    online: bool,
}

#[test]
fn a_run_switches_every_client_exactly_at_its_listed_times() {
    let tmp = tempfile::tempdir().unwrap();
    // Small clients, so that some jobs fit in the devices' online windows.
    let loaded = scenario(tmp.path(), 4, &traces(""), 120);
    let config = loaded.sim_config().unwrap();
    let opts = RunOptions::quiet(
        Some(tmp.path().join("out")),
        Arc::new(AtomicBool::new(false)),
    );
    let result = run(&loaded, opts).unwrap();
    let mut reader = csv::Reader::from_path(result.dir.join("availability.csv")).unwrap();
    let rows: Vec<Switch> = reader.deserialize().map(Result::unwrap).collect();
    let end = 250.0;
    for (client, spec) in config.clients.iter().enumerate() {
        let (_, on, period) = behavior_of(&spec.availability);
        // The listed intervals, period after period, as (time, online) switches.
        let mut expected = Vec::new();
        if on[0].0 > 0.0 {
            expected.push((0.0, false));
        }
        let mut start = 0.0;
        while start <= end {
            for &(a, b) in &on {
                for (t, online) in [(start + a, true), (start + b, false)] {
                    if t <= end {
                        expected.push((t, online));
                    }
                }
            }
            start += period;
        }
        // Touching intervals across periods: offline and online at the same time.
        let got: Vec<(f64, bool)> = rows
            .iter()
            .filter(|r| r.client == client)
            .map(|r| (r.sim_seconds, r.online))
            .collect();
        assert_eq!(got, expected, "client {client}");
    }
    assert!(result.summary.updates_applied > 0);
}

#[test]
fn broken_traces_are_refused_by_field_file_and_device() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixtures();
    scenario(tmp.path(), 1, &traces(""), 12);
    let refused = |traces: String| {
        let text = std::fs::read_to_string(tmp.path().join("fedscale-1.ron"))
            .unwrap()
            .replace(&traces_of_default(), &traces);
        let file = tmp.path().join("broken.ron");
        std::fs::write(&file, text).unwrap();
        match scenario::load(&file) {
            Err(e) => Chain(&e).to_string(),
            Ok(l) => Chain(&l.sim_config().unwrap_err()).to_string(),
        }
    };
    let bad = dir.join("bad-capacity.pkl");
    let err = refused(format!(
        r#"(capacity: "{}", behavior: "{}")"#,
        bad.display(),
        dir.join("behavior.pkl").display()
    ));
    assert!(err.contains("population[0].traces.capacity"), "{err}");
    assert!(
        err.contains("client 2: `computation` must be > 0, got 0"),
        "{err}"
    );
    let bad = dir.join("bad-behavior.pkl");
    let err = refused(format!(
        r#"(capacity: "{}", behavior: "{}")"#,
        dir.join("capacity.pkl").display(),
        bad.display()
    ));
    assert!(err.contains("population[0].traces.behavior"), "{err}");
    assert!(
        err.contains("client 1: the online interval [4, 3]"),
        "{err}"
    );
    let err = refused(format!(
        r#"(behavior: "{}")"#,
        dir.join("behavior.pkl").display()
    ));
    assert!(err.contains("population[0].traces.capacity"), "{err}");
    assert!(
        err.contains("need the class's traces.capacity file"),
        "{err}"
    );
    let err = refused(format!(
        r#"(capacity: "{}", behavior: "{}")"#,
        dir.join("missing.pkl").display(),
        dir.join("behavior.pkl").display()
    ));
    assert!(err.contains("missing.pkl: cannot read it: "), "{err}");
    // A file that is there but is not a pickle.
    let text = tmp.path().join("text.pkl");
    std::fs::write(&text, "time,value\n0,1\n").unwrap();
    let err = refused(format!(
        r#"(capacity: "{}", behavior: "{}")"#,
        text.display(),
        dir.join("behavior.pkl").display()
    ));
    assert!(
        err.contains("text.pkl: cannot read it as a pickle: "),
        "{err}"
    );
}

/// The trace section `scenario` writes without a reference.
fn traces_of_default() -> String {
    traces("")
}

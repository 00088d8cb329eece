//! Malformed scenario files: each gives one clear message naming the file and the
//! line:column or field path, and exit code 2.
//!
//! One file on purpose: the cases are a table over one valid base scenario and one
//! child-process harness; split, each part would restate both.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A small valid scenario; tests replace one piece of it.
fn valid() -> String {
    let data = repo().join("scenarios/data/mnist-10k");
    format!(
        r#"Scenario(
    name: "t",
    seed: 1,
    data: (source: Idx(dir: "{data}"), partition: Dirichlet(alpha: 0.5), clients: 4),
    model: (
        backbone: Vit(patch: 7, dim: 16, depth: 1, heads: 2, mlp: 32),
        adapter: Lora(rank: 2, alpha: 4.0, targets: [Q, V]),
    ),
    training: (epochs: 1, batch_size: 32, optimizer: Sgd(lr: 0.05)),
    algorithm: FedAvg(clients_per_round: 2),
    population: [
        (class: "phone", count: 4, speed: Const("100 samples/s"),
         uplink: (latency: Normal(mean: "80ms", std: "20ms"), bandwidth: LogNormal(median: "5Mbit/s", sigma: 0.7)),
         downlink: (latency: Const("20ms"), bandwidth: Const("20Mbit/s"))),
    ],
    stop: (rounds: 2),
)
"#,
        data = data.display()
    )
}

fn flotilla(args: &[&str]) -> (i32, String) {
    let (code, err, _) = flotilla_peak(args);
    (code, err)
}

/// As [`flotilla`], with the child's peak resident memory in bytes. The kernel counts a
/// child's peak from before it replaced itself with flotilla too, when it still was this
/// (larger) test process: an upper bound of flotilla's own peak, which is what a test of
/// "less than" needs.
#[allow(clippy::zombie_processes)] // wait4 reaps the child, with its resource usage
fn flotilla_peak(args: &[&str]) -> (i32, String, u64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run flotilla");
    let err = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    let mut status = 0;
    // SAFETY: wait4 only writes the status and the struct it is given, for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t, "wait4");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (code, err, usage.ru_maxrss as u64 * 1024)
}

fn validate(dir: &Path, name: &str, text: &str) -> (i32, String) {
    let file = dir.join(name);
    std::fs::write(&file, text).unwrap();
    flotilla(&["validate", file.to_str().unwrap()])
}

/// `text` with `from` replaced by `to` (which must occur).
fn with(from: &str, to: &str) -> String {
    let v = valid();
    assert!(v.contains(from), "{from}");
    v.replacen(from, to, 1)
}

#[test]
fn the_base_scenario_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = validate(dir.path(), "ok.ron", &valid());
    assert_eq!(code, 0, "{err}");
}

#[test]
fn malformed_scenarios_name_the_place() {
    let dir = tempfile::tempdir().unwrap();
    // (file name, scenario text, expected pieces of the one-line message)
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "syntax.ron",
            with("seed: 1,", "seed: 1,,"),
            vec!["syntax.ron:3:"],
        ),
        (
            "unknown.ron",
            with("epochs: 1", "epochz: 1"),
            vec!["unknown.ron:9:", "epochz"],
        ),
        (
            "type.ron",
            with("clients: 4", "clients: \"four\""),
            vec!["type.ron:4:", "Expected integer"],
        ),
        (
            "unit.ron",
            with("\"20Mbit/s\"", "\"20 Mbps\""),
            vec!["unit.ron:14:", "Mbit/s"],
        ),
        (
            "negative-std.ron",
            with("std: \"20ms\"", "std: \"-20ms\""),
            vec!["negative-std.ron:13:", "negative"],
        ),
        (
            "sigma.ron",
            with("sigma: 0.7", "sigma: 0.0"),
            vec!["sigma.ron: population[0].uplink.bandwidth: sigma must be > 0"],
        ),
        (
            "alpha.ron",
            with("alpha: 0.5", "alpha: -1.0"),
            vec!["alpha.ron: data.partition.alpha: must be > 0"],
        ),
        (
            "counts.ron",
            with("count: 4", "count: 3"),
            vec!["counts.ron: population: device class counts add up to 3, but data.clients is 4"],
        ),
        (
            "data.ron",
            with("mnist-10k", "mnist-nope"),
            vec!["data.ron: data.source.dir: directory", "not found"],
        ),
        (
            "weights.ron",
            with("adapter: Lora", "weights: \"missing.bpk\", adapter: Lora"),
            vec!["weights.ron: model.weights: file \"missing.bpk\" not found"],
        ),
        (
            "stop.ron",
            with("stop: (rounds: 2)", "stop: (target_accuracy: 0.9)"),
            vec!["stop.ron: stop: set rounds or virtual_time"],
        ),
        (
            "target.ron",
            with(
                "stop: (rounds: 2)",
                "stop: (rounds: 2, target_accuracy: 1.5)",
            ),
            vec!["target.ron: stop.target_accuracy: must be in (0, 1]"],
        ),
        (
            "uniform.ron",
            with(
                "Const(\"100 samples/s\")",
                "Uniform(low: \"200 samples/s\", high: \"100 samples/s\")",
            ),
            vec!["uniform.ron: population[0].speed: low (200) must not exceed high (100)"],
        ),
        (
            "per-round.ron",
            with("clients_per_round: 2", "clients_per_round: 5"),
            vec!["per-round.ron: algorithm.clients_per_round: must be in 1..=4, got 5"],
        ),
        (
            "dropout.ron",
            with("count: 4,", "count: 4, dropout: 1.0,"),
            vec!["dropout.ron: population[0].dropout: must be in [0, 1), got 1"],
        ),
        (
            "heads.ron",
            with("heads: 2", "heads: 3"),
            vec!["heads.ron: model.backbone.heads: must divide dim (16), got 3"],
        ),
        (
            "fedasync-alpha.ron",
            with(
                "FedAvg(clients_per_round: 2)",
                "FedAsync(concurrency: 2, alpha: 1.5)",
            ),
            vec!["fedasync-alpha.ron: algorithm.alpha: must be in (0, 1], got 1.5"],
        ),
        (
            "fedbuff-buffer.ron",
            with(
                "FedAvg(clients_per_round: 2)",
                "FedBuff(concurrency: 2, buffer: 0)",
            ),
            vec!["fedbuff-buffer.ron: algorithm.buffer: must be at least 1"],
        ),
        (
            "fedbuff-staleness.ron",
            with(
                "FedAvg(clients_per_round: 2)",
                "FedBuff(concurrency: 2, buffer: 2, staleness: Polynomial(exponent: -1.0))",
            ),
            vec!["fedbuff-staleness.ron: algorithm.staleness: exponent must be >= 0"],
        ),
        (
            "task-client.ron",
            with(
                "clients: 4)",
                "clients: 4, tasks: [(name: \"a\", clients: [0, 1, 2, 3, 5])])",
            ),
            vec![
                "task-client.ron: data.tasks[0].clients: client 5 does not exist (data.clients is 4)",
            ],
        ),
        (
            "task-orphan.ron",
            with(
                "clients: 4)",
                "clients: 4, tasks: [(name: \"a\", clients: [0, 1]), (name: \"b\", clients: [1, 2])])",
            ),
            vec!["task-orphan.ron: data.tasks: client 3 holds no task"],
        ),
        (
            "task-name.ron",
            with(
                "clients: 4)",
                "clients: 4, tasks: [(name: \"a\", clients: [0, 1]), (name: \"a\", clients: [2, 3])])",
            ),
            vec!["task-name.ron: data.tasks[1].name: \"a\" names an earlier task too"],
        ),
        (
            "task-domain.ron",
            with(
                "clients: 4)",
                "clients: 4, tasks: [(name: \"a\", domain: [Invert, Blur(sigma: 0.0)], clients: [0, 1, 2, 3])])",
            ),
            vec!["task-domain.ron: data.tasks[0].domain[1]: sigma must be > 0, got 0"],
        ),
        (
            "fltac-server.ron",
            with(
                "FedAvg(clients_per_round: 2)",
                "FLTAC(k: 2, server: FedAsync(concurrency: 2, alpha: 0.5))",
            ),
            vec!["fltac-server.ron: algorithm.server: must be FedAvg(..) or FedBuff(..)"],
        ),
        (
            "fltac-k.ron",
            with(
                "FedAvg(clients_per_round: 2)",
                "FLTAC(k: 9, server: FedAvg(clients_per_round: 2))",
            ),
            vec!["fltac-k.ron: algorithm.k: must be in 1..=8, got 9"],
        ),
        (
            "persafl-server.ron",
            with(
                "FedAvg(clients_per_round: 2)",
                "PersAFL(server: FedAvg(clients_per_round: 2), personal: Maml(inner_lr: 0.1))",
            ),
            vec!["persafl-server.ron: algorithm.server: must be FedAsync(..) or FedBuff(..)"],
        ),
        (
            "persafl-lambda.ron",
            with(
                "FedAvg(clients_per_round: 2)",
                "PersAFL(server: FedBuff(concurrency: 2, buffer: 2), personal: Moreau(lambda: 40.0, inner_steps: 2))",
            ),
            vec![
                "persafl-lambda.ron: algorithm.personal.lambda: must be > 0 with training lr x lambda <= 1",
            ],
        ),
        (
            "blocks.ron",
            with(
                "adapter: Lora(rank: 2, alpha: 4.0, targets: [Q, V]),",
                "adapter: Blocks(blocks: [0, 3]),",
            ),
            vec!["blocks.ron: model.adapter.blocks: blocks are numbered 0..1, got 3"],
        ),
        (
            "nb-personalize.ron",
            with(
                "targets: [Q, V]),",
                "targets: [Q, V]), head: NaiveBayes(covariance: Lda),",
            )
            .replace(
                "stop: (rounds: 2),",
                "stop: (rounds: 2), eval: (personalize: FineTune(steps: 3)),",
            ),
            vec!["nb-personalize.ron: eval.personalize: the naive Bayes head is always fitted"],
        ),
        (
            "nb-shrinkage.ron",
            with(
                "targets: [Q, V]),",
                "targets: [Q, V]), head: NaiveBayes(covariance: Qda, shrinkage: 0.0),",
            ),
            vec!["nb-shrinkage.ron: model.head.shrinkage: must be in (0, 1], got 0"],
        ),
        (
            "head-only-frozen.ron",
            with(
                "adapter: Lora(rank: 2, alpha: 4.0, targets: [Q, V]),",
                "adapter: HeadOnly, head: Frozen,",
            ),
            vec!["head-only-frozen.ron: model.head: HeadOnly trains nothing but the head"],
        ),
        (
            "shots.ron",
            with(
                "partition: Dirichlet(alpha: 0.5)",
                "partition: Shots(shots: 0)",
            ),
            vec!["shots.ron: data.partition.shots: must be at least 1"],
        ),
        (
            "covariance.ron",
            with(
                "targets: [Q, V]),",
                "targets: [Q, V]), head: NaiveBayes(covariance: Diagonal),",
            ),
            vec!["covariance.ron:", "Diagonal"],
        ),
    ];
    assert!(cases.len() >= 10);
    for (name, text, expected) in cases {
        let (code, err) = validate(dir.path(), name, &text);
        assert_eq!(code, 2, "{name}: exit code, stderr: {err}");
        assert_eq!(err.lines().count(), 1, "{name}: one line, got: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
        for piece in expected {
            assert!(err.contains(piece), "{name}: expected {piece:?} in: {err}");
        }
    }
}

#[test]
fn a_bad_availability_trace_names_its_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("trace.csv"),
        "client,start,end\n0,0,60\n1,10,5\n",
    )
    .unwrap();
    let text = with(
        "count: 4,",
        "count: 4, availability: Trace(file: \"trace.csv\"),",
    )
    .replace(
        "FedAvg(clients_per_round: 2)",
        "FedAvg(clients_per_round: 2, deadline: \"1m\")",
    );
    let (code, err) = validate(dir.path(), "trace.ron", &text);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("trace.ron: population[0].availability.file: trace.csv:3: end (5) must be after start (10)"),
        "{err}"
    );
    std::fs::write(dir.path().join("trace.csv"), "0,0,60\n0,30,90\n").unwrap();
    let (code, err) = validate(dir.path(), "trace.ron", &text);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("client 0 has overlapping intervals"), "{err}");
    std::fs::write(dir.path().join("trace.csv"), "0,0,60\n3,30,90\n").unwrap();
    assert_eq!(validate(dir.path(), "trace.ron", &text).0, 0);
}

#[test]
fn pool_settings_and_run_overrides_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let pool = |p: &str| {
        with(
            "stop: (rounds: 2),",
            &format!("stop: (rounds: 2), pool: {p},"),
        )
    };
    for (name, p, expect) in [
        (
            "cache",
            "(cache: \"12 parsecs\")",
            "expected a size like \"20MB\"",
        ),
        (
            "batch",
            "(batch_clients: 0)",
            "pool.batch_clients: must be at least 1",
        ),
        (
            "cuda",
            "(device: Cuda)",
            "pool.device: CUDA devices need the LibTorch backend",
        ),
    ] {
        let (code, err) = validate(dir.path(), &format!("{name}.ron"), &pool(p));
        assert_eq!(code, 2, "{name}: {err}");
        assert!(err.contains(expect), "{name}: {err}");
    }
    let (code, err) = validate(dir.path(), "tch.ron", &pool("(backend: Tch)"));
    if cfg!(feature = "tch") {
        assert_eq!(code, 0, "{err}");
    } else {
        assert_eq!(code, 2);
        assert!(
            err.contains("pool.backend: this flotilla was built without LibTorch"),
            "{err}"
        );
    }
    // `run --set` overrides name the assignment, and list the fields where a path is wrong.
    let file = dir.path().join("ok.ron");
    std::fs::write(&file, valid()).unwrap();
    let file = file.to_str().unwrap();
    for (set, expect) in [
        (
            "pool.wrokers=2",
            "--set pool.wrokers=2: pool has no field `wrokers`; valid fields: backend",
        ),
        ("pool.workers", "--set pool.workers: write it as path=value"),
        (
            "pool.batch_clients=(",
            "--set pool.batch_clients=(: the value is not RON",
        ),
        // A valid override is checked like the file itself.
        (
            "pool.device=Cuda",
            "pool.device: CUDA devices need the LibTorch backend",
        ),
    ] {
        let (code, err) = flotilla(&["run", file, "--quiet", "--set", set]);
        assert_eq!(code, 2, "{set}: {err}");
        assert!(err.contains(expect), "{set}: {err}");
    }
}

#[test]
fn missing_file_is_a_clear_error() {
    let (code, err) = flotilla(&["validate", "/no/such/scenario.ron"]);
    assert_eq!(code, 2);
    assert!(err.contains("/no/such/scenario.ron: cannot read"), "{err}");
}

#[test]
fn shipped_scenarios_validate() {
    let mut checked = 0;
    for dir in ["scenarios", "scenarios/baselines"] {
        for entry in std::fs::read_dir(repo().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "ron") {
                let (code, err) = flotilla(&["validate", path.to_str().unwrap()]);
                assert_eq!(code, 0, "{}: {err}", path.display());
                checked += 1;
            }
        }
    }
    assert!(checked >= 19, "only {checked} scenarios found");
}

/// The examples wait for checkpoints nothing here downloads: without one, validation names
/// the file and where to put it; with a checkpoint of the same layout in its place (a
/// parity fixture, whose width the examples' head counts divide), everything else
/// validates. The fixtures' patches are 4 pixels, so the images shrink to 32 pixels with
/// them (at the examples' sizes they would make a thousand tokens an image).
#[test]
fn example_scenarios_validate_but_for_their_checkpoints() {
    for (name, checkpoint, wanted) in [
        (
            "fltac-vit-small",
            "timm-vit",
            "weights/vit_small_patch16_224.safetensors",
        ),
        (
            "fedapt-clip-b32",
            "clip-vit",
            "weights/clip_vit_b32_openai.safetensors",
        ),
    ] {
        let file = repo().join(format!("scenarios/examples/{name}.ron"));
        let file = file.to_str().unwrap();
        let (code, err) = flotilla(&["validate", file]);
        assert_eq!(code, 2, "{name}: {err}");
        assert!(
            err.contains("model.backbone.file")
                && err.contains(wanted)
                && err.contains("not found: put the checkpoint there"),
            "{name}: {err}"
        );
        let fixture = repo().join(format!(
            "tests/fixtures/pretrained/{checkpoint}.safetensors"
        ));
        let set = format!("model.backbone.file=\"{}\"", fixture.display());
        let small = "data.image=(side: 32, channels: 1)";
        let (code, err) = flotilla(&["validate", file, "--set", &set, "--set", small]);
        assert_eq!(code, 0, "{name}: {err}");
    }
}

/// A copy of the bundled data in `dir/data`, for tests that spoil one of its files.
fn data_copy(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    for entry in std::fs::read_dir(repo().join("scenarios/data/mnist-10k")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, data.join(path.file_name().unwrap())).unwrap();
    }
    data
}

/// Rewrites the gzip-compressed IDX file `name` in `data` with `edit` applied to its bytes.
fn spoil(data: &Path, name: &str, edit: impl FnOnce(&mut Vec<u8>)) {
    use std::io::{Read, Write};
    let path = data.join(format!("{name}.gz"));
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
        .read_to_end(&mut bytes)
        .unwrap();
    edit(&mut bytes);
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        flate2::Compression::fast(),
    );
    gz.write_all(&bytes).unwrap();
    gz.finish().unwrap();
}

#[test]
fn absurd_sizes_are_refused_before_anything_runs() {
    // Valid-looking mutants that would take terabytes, or run for ages, if started: each
    // is refused by `validate` and by `run` with one line naming the field, exit code 2,
    // and without the memory it asks for.
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "mlp",
            with("mlp: 32", "mlp: 999999999"),
            "model.backbone.mlp: the run would need about",
        ),
        (
            "depth",
            with("depth: 1", "depth: 4294967296"),
            "model.backbone.depth: the run would need about",
        ),
        (
            "dim",
            with(
                "dim: 16, depth: 1, heads: 2",
                "dim: 200000, depth: 1, heads: 2",
            ),
            "model.backbone.dim: the run would need about",
        ),
        (
            "workers",
            with(
                "stop: (rounds: 2),",
                "stop: (rounds: 2), pool: (workers: 999999999),",
            ),
            "pool.workers: must be at most 1024 threads (0: one per core), got 999999999",
        ),
        (
            "batch",
            with("batch_size: 32", "batch_size: 100000000"),
            "training.batch_size: the run would need about",
        ),
        (
            "clients",
            with("clients: 4)", "clients: 1000000000000)")
                .replace("count: 4,", "count: 1000000000000,")
                .replace("Dirichlet(alpha: 0.5)", "Sampled(samples: 10)"),
            "data.clients: the run would need about",
        ),
        (
            "epochs",
            with("epochs: 1", "epochs: 999999999"),
            "training.epochs: must be in 1..=1000, got 999999999",
        ),
        (
            "dropout",
            with("count: 4,", "count: 4, dropout: 1.0,"),
            "population[0].dropout: must be in [0, 1), got 1",
        ),
        (
            "mlp-zero",
            with("mlp: 32", "mlp: 0"),
            "model.backbone.mlp: must be at least 1",
        ),
    ];
    for (name, text, expect) in &cases {
        let file = dir.path().join(format!("{name}.ron"));
        std::fs::write(&file, text).unwrap();
        let (code, err, peak) = flotilla_peak(&["validate", file.to_str().unwrap()]);
        assert_eq!(code, 2, "{name}: {err}");
        assert!(err.contains(expect), "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        assert!(
            peak < 1 << 30,
            "{name}: validating a refusal took {peak} bytes"
        );
        let out = dir.path().join(format!("{name}-run"));
        let (code, err, peak) = flotilla_peak(&[
            "run",
            file.to_str().unwrap(),
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 2, "{name}: {err}");
        assert!(err.contains(expect), "{name}: {err}");
        assert!(peak < 1 << 30, "{name}: a refused run took {peak} bytes");
    }
}

#[test]
fn hostile_data_and_partitions_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, text: &str| {
        let file = dir.path().join(format!("{name}.ron"));
        std::fs::write(&file, text).unwrap();
        let out = dir.path().join(format!("{name}-run"));
        let (code, err, peak) = flotilla_peak(&[
            "run",
            file.to_str().unwrap(),
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(peak < 2 << 30, "{name}: a refusal took {peak} bytes");
        (code, err)
    };
    let data = data_copy(dir.path());
    let on_copy = |text: String| {
        text.replace(
            &repo()
                .join("scenarios/data/mnist-10k")
                .display()
                .to_string(),
            &data.display().to_string(),
        )
    };
    let mut cases: Vec<(&str, String, &str)> = vec![
        (
            "shots",
            with("Dirichlet(alpha: 0.5)", "Shots(shots: 999999999)"),
            "data.partition: class 0 has too few images for 4 clients with 999999999 shots",
        ),
        (
            "sampled",
            with("Dirichlet(alpha: 0.5)", "Sampled(samples: 999999999)"),
            "data.partition: each client draws 999999999 images, but the data has 8000",
        ),
    ];
    // A test label beyond every training label: the model has no output for it.
    spoil(&data, "t10k-labels-idx1-ubyte", |b| b[8 + 5] = 12);
    cases.push((
        "labels",
        on_copy(valid()),
        "data.source: test labels go up to 12 but training labels only to 9",
    ));
    for (name, text, expect) in &cases {
        let (code, err) = run(name, text);
        assert_eq!(code, 2, "{name}: {err}");
        assert!(err.contains(expect), "{name}: {err}");
    }
    // A header that declares far more images than the file holds, and one that
    // declares more than flotilla reads: refused before the memory is taken.
    for (dims, expect) in [
        ([0, 0, 0x10, 0], "not an IDX file of unsigned bytes"),
        (
            [0xff, 0xff, 0xff, 0xff],
            "declares more than 4 GiB of values",
        ),
    ] {
        spoil(&data, "train-images-idx3-ubyte", |b| {
            b[4..8].copy_from_slice(&dims)
        });
        let (code, err) = run("header", &on_copy(valid()));
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(expect), "{err}");
    }
}

#[test]
fn pretrain_checks_its_shape_against_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = repo().join("scenarios/data/mnist-10k");
    let out = dir.path().join("m.bpk");
    let base = [
        "pretrain",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--epochs",
        "1",
    ];
    for (extra, expect) in [
        (
            &["--patch", "0"][..],
            "patch: must divide the image side (28), got 0",
        ),
        (
            &["--patch", "5"],
            "patch: must divide the image side (28), got 5",
        ),
        (&["--heads", "3"], "heads: must divide dim (64), got 3"),
        (&["--mlp", "0"], "mlp: must be at least 1"),
        (
            &["--classes", "3,12"],
            "class 12 is not in the data (classes 0..10)",
        ),
        (
            &["--max-shift", "28"],
            "max shift must be below the image side (28)",
        ),
    ] {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        let (code, err) = flotilla(&args);
        assert_eq!(code, 2, "{extra:?}: {err}");
        assert!(err.contains(expect), "{extra:?}: {err}");
        assert!(!out.exists());
    }
}

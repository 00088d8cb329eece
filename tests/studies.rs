//! Studies: sweeps (grid, sweep.csv, reports), wire encodings in whole runs, link traces
//! from scenario files, and the plots every run writes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use flotilla::Chain;
use flotilla::run::{RunOptions, run};
use flotilla::scenario::{Loaded, Scenario, load};
use flotilla::sweep::{SweepOptions, points, run_sweep};
use flotilla_actors::SimTime;
use flotilla_actors::net::{LinkValue, Steps};

use crate::common;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The small scenario with `extra` inserted before its closing parenthesis.
fn small_with(dir: &Path, name: &str, rounds: u32, wire: &str, extra: &str) -> PathBuf {
    let file = common::small_scenario(dir, name, common::FEDAVG, rounds, 2, wire);
    let text = std::fs::read_to_string(&file).unwrap();
    let text = text.trim_end().strip_suffix(')').unwrap().to_string() + extra + ")\n";
    std::fs::write(&file, text).unwrap();
    file
}

fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
    assert!(
        bytes.len() > 5_000,
        "{}: only {} bytes",
        path.display(),
        bytes.len()
    );
}

fn assert_svg(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        text.contains("<svg") && text.trim_end().ends_with("</svg>"),
        "{}",
        path.display()
    );
    assert!(
        text.len() > 2_000,
        "{}: only {} bytes",
        path.display(),
        text.len()
    );
    // Text is drawn as text, with the axis titles a reader needs.
    assert!(text.contains("<text"), "{}", path.display());
}

#[test]
fn a_two_by_two_sweep_writes_four_runs_a_csv_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let file = small_with(
        dir.path(),
        "grid",
        1,
        "F32",
        r#"    sweep: (
        axes: [
            (field: "wire.encoding", values: [F32, F16]),
            (field: "algorithm.clients_per_round", name: "per round", values: [2, 4]),
        ],
        parallel: 2,
    ),
"#,
    );
    let loaded = load(&file).unwrap();
    let pts = points(&loaded).unwrap().unwrap();
    assert_eq!(pts.len(), 4);
    assert_eq!(pts[1].labels, vec!["F32", "4"]);
    let out = dir.path().join("out");
    let (sweep_dir, data) = run_sweep(
        &loaded,
        pts,
        SweepOptions {
            out: Some(out.clone()),
            progress: false,
            interrupt: Arc::new(AtomicBool::new(false)),
            cache: None,
            notice: flotilla::notice::ignored(),
        },
    )
    .unwrap();
    assert_eq!(sweep_dir, out);
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 5, "{csv}");
    assert!(lines[0].starts_with("point,dir,wire.encoding,per round,repeat,seed,"));
    assert!(
        lines[3].starts_with("2,p002-F16-2,F16,2,0,5,"),
        "{}",
        lines[3]
    );
    // F16 halves every update of the same round.
    let f32_up = data.rows[0].bytes_up as f64 / data.rows[0].rounds as f64;
    let f16_up = data.rows[2].bytes_up as f64 / data.rows[2].rounds as f64;
    assert_eq!(data.rows[0].labels, vec!["F32", "2"]);
    assert!(f16_up < f32_up);
    for row in &data.rows {
        let run = out.join(&row.dir);
        for stem in ["accuracy-time", "accuracy-bytes", "staleness", "timeline"] {
            assert_png(&run.join(format!("{stem}.png")));
            assert_svg(&run.join(format!("{stem}.svg")));
        }
        let md = std::fs::read_to_string(run.join("report.md")).unwrap();
        assert!(md.contains("![Client activity](timeline.png)"));
    }
    for stem in ["time-to-target", "final-accuracy"] {
        assert_svg(&out.join(format!("{stem}.svg")));
        assert_png(&out.join(format!("{stem}.png")));
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("| wire.encoding | per round | repeats |"),
        "{md}"
    );
    assert!(md.contains("(p003-F16-4/report.md)"));
    // Participation by device class: a row per point and class, from its summary.
    let summary: flotilla::report::Summary = serde_json::from_str(
        &std::fs::read_to_string(out.join("p000-F32-2/summary.json")).unwrap(),
    )
    .unwrap();
    let [phone, laptop] = &summary.classes[..] else {
        panic!("two classes expected: {:?}", summary.classes);
    };
    assert_eq!((phone.class.as_str(), phone.clients), ("phone", 20));
    assert_eq!((laptop.class.as_str(), laptop.clients), ("laptop", 10));
    assert_eq!(
        phone.selected + laptop.selected,
        summary_selected(&out.join("p000-F32-2"))
    );
    let row = format!(
        "| F32 | 2 | 0 | phone | 20 | 0 | {} | {} | {} |",
        phone.selected, phone.trained, phone.updates_applied
    );
    assert!(md.contains("## Participation by device class"), "{md}");
    assert!(md.contains(&row), "{row} not in {md}");
    // `flotilla report` reads the sweep back to the same table.
    let again = flotilla::sweep::SweepData::read(&out).unwrap();
    assert_eq!(again.table(), data.table());
}

/// Selections over every client of a run, from its `clients.csv`.
fn summary_selected(run: &Path) -> u64 {
    let mut reader = csv::Reader::from_path(run.join("clients.csv")).unwrap();
    let header = reader.headers().unwrap().clone();
    let at = header.iter().position(|h| h == "selected").unwrap();
    reader
        .records()
        .map(|r| r.unwrap()[at].parse::<u64>().unwrap())
        .sum()
}

#[test]
fn sweep_paths_that_do_not_exist_name_the_valid_fields() {
    let dir = tempfile::tempdir().unwrap();
    let check = |field: &str, values: &str, expected: &[&str]| {
        let extra = format!("    sweep: (axes: [(field: \"{field}\", values: {values})]),\n");
        let file = small_with(dir.path(), "bad", 1, "F32", &extra);
        let err = Chain(&points(&load(&file).unwrap()).unwrap_err()).to_string();
        for e in expected {
            assert!(err.contains(e), "{field}: {err}");
        }
    };
    check(
        "population[0].uplnk.bandwidth",
        "[1]",
        &[
            "sweep.axes[0].field",
            "population[0] has no field `uplnk`",
            "valid fields: availability, class, count, downlink, dropout, memory, speed, traces, uplink",
        ],
    );
    check(
        "population[5].count",
        "[1]",
        &["population has 2 entries, so [5] is out of range"],
    );
    check(
        "population.count",
        "[1]",
        &["is a list", "population[0].count"],
    );
    // A path that exists but a value of the wrong type names the value.
    check(
        "model.adapter",
        "[Lora(rank: 2)]",
        &["sweep.axes[0].values[0]", "missing field"],
    );
    // Fields set together need one entry per field.
    check(
        "population[0].count, population[1].count",
        "[(30, 0, 1)]",
        &["2 fields but a value with 3 entries"],
    );
}

#[test]
fn every_shipped_scenario_survives_the_sweep_round_trip() {
    // A sweep edits a scenario through its JSON form: that form must lose nothing.
    for dir in ["scenarios", "scenarios/baselines"] {
        for entry in std::fs::read_dir(repo().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "ron") {
                continue;
            }
            let mut s = load(&path).unwrap().scenario;
            s.sweep = None;
            let back: Scenario = serde_json::from_value(serde_json::to_value(&s).unwrap()).unwrap();
            assert_eq!(back, s, "{}", path.display());
        }
    }
}

#[test]
fn a_bandwidth_trace_becomes_steps_at_its_listed_times() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("commute.csv"),
        "time,bandwidth\n0,20Mbit/s\n60s,2Mbit/s\n# tunnel\n90,500000\n",
    )
    .unwrap();
    let file = common::small_scenario(dir.path(), "trace", common::FEDAVG, 1, 2, "F32");
    let text = std::fs::read_to_string(&file).unwrap().replace(
        r#"bandwidth: Const("20Mbit/s")"#,
        r#"bandwidth: Trace("commute.csv")"#,
    );
    std::fs::write(&file, &text).unwrap();
    let config = load(&file).unwrap().sim_config().unwrap();
    let expected = Steps::new(vec![
        (SimTime::ZERO, 20e6),
        (SimTime(60_000_000), 2e6),
        (SimTime(90_000_000), 0.5e6),
    ])
    .unwrap();
    // The laptops (clients 20..30) follow the trace; the phones still draw.
    assert_eq!(
        config.clients[25].uplink.bandwidth,
        LinkValue::Steps(expected)
    );
    assert!(matches!(
        config.clients[0].uplink.bandwidth,
        LinkValue::Draw(_)
    ));
    // A bad row names the file and line.
    std::fs::write(dir.path().join("commute.csv"), "0,20Mbit/s\n60s,fast\n").unwrap();
    let err = Chain(&load(&file).unwrap_err()).to_string();
    assert!(
        err.contains("population[1].uplink.bandwidth: commute.csv:2:"),
        "{err}"
    );
    // Steps out of order are refused.
    std::fs::write(dir.path().join("commute.csv"), "60,1Mbit/s\n30,2Mbit/s\n").unwrap();
    let err = Chain(&load(&file).unwrap_err()).to_string();
    assert!(err.contains("times must increase"), "{err}");
}

fn run_once(loaded: &Loaded, out: PathBuf) -> flotilla::report::Summary {
    run(
        loaded,
        RunOptions::quiet(Some(out), Arc::new(AtomicBool::new(false))),
    )
    .unwrap()
    .summary
}

#[test]
fn compressed_updates_have_their_closed_form_sizes() {
    let dir = tempfile::tempdir().unwrap();
    // LoRA rank 2 on q and v of one block, plus the head: six tensors.
    let int8 = small_with(dir.path(), "int8", 2, "F32, up: Int8(Stochastic)", "");
    let s = run_once(&load(&int8).unwrap(), dir.path().join("int8-run"));
    assert_eq!(s.update_bytes, s.adapter_params as u64 + 4 * 6);
    assert_eq!(s.bytes_up, s.messages_up * s.update_bytes);
    assert_eq!(s.bytes_down, s.messages_down * 4 * s.adapter_params as u64);
    let topk = small_with(dir.path(), "topk", 2, "F32, up: TopK(0.05)", "");
    let s = run_once(&load(&topk).unwrap(), dir.path().join("topk-run"));
    let k = (0.05 * s.adapter_params as f64).ceil() as u64;
    assert_eq!(s.update_bytes, 8 * k);
    assert_eq!(s.bytes_up, s.messages_up * 8 * k);
    assert!(s.global_accuracy.is_some());
    // Top-k cannot send models down: the receiver has nothing to add the update to.
    let bad = small_with(dir.path(), "bad", 1, "TopK(0.1)", "");
    let err = Chain(&load(&bad).unwrap_err()).to_string();
    assert!(
        err.contains("wire.encoding") && err.contains("up: TopK"),
        "{err}"
    );
}

//! The memory estimate `validate` refuses runs by, held against the measured peak RSS of
//! shipped scenarios: it must be right within a factor of two.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use flotilla::scenario::{self, human_bytes};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `args` as a child writing to `out`; its exit code, and its peak resident memory as
/// the run itself read it at its end (`VmHWM`) into `summary.json` (0 if it failed). A
/// child's peak as `wait4` reports it would also count this test process, which the
/// child was until it started flotilla.
fn peak_rss(args: &[&str], out: &std::path::Path) -> (i32, u64) {
    let status = Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .args(args)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    if !status.success() {
        return (status.code().unwrap_or(-1), 0);
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    (0, summary["wall"]["peak_rss_bytes"].as_u64().unwrap())
}

#[test]
fn the_memory_estimate_is_within_a_factor_of_two_of_the_peak() {
    let dir = tempfile::tempdir().unwrap();
    // A LoRA ViT with its prefix cache, FedBABU with personalization, and a head-only
    // run whose cache holds features: three shapes of the estimate. Two rounds with an
    // evaluation each reach every part of the peak.
    for name in ["quickstart.ron", "fedbabu.ron", "baselines/head-only.ron"] {
        let file = repo().join("scenarios").join(name);
        let estimate = scenario::load(&file).unwrap().footprint().unwrap().total();
        let out = dir.path().join(name.replace('/', "-"));
        let (code, peak) = peak_rss(
            &[
                "run",
                file.to_str().unwrap(),
                "--quiet",
                "--out",
                out.to_str().unwrap(),
                "--set",
                "stop.rounds=2",
                "--set",
                "eval.every_rounds=1",
            ],
            &out,
        );
        assert_eq!(code, 0, "{name}");
        let ratio = estimate / peak as f64;
        eprintln!(
            "{name}: estimate {}, peak {}, ratio {ratio:.2}",
            human_bytes(estimate),
            human_bytes(peak as f64)
        );
        assert!(
            (0.5..=2.0).contains(&ratio),
            "{name}: estimated {} but the run peaked at {}",
            human_bytes(estimate),
            human_bytes(peak as f64)
        );
    }
}

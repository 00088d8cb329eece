//! The memory estimate `validate` refuses runs by, held against the measured peak RSS of
//! shipped scenarios: it must be right within a factor of two.
#![allow(clippy::unwrap_used)] // a test that unwraps fails with the error it met

use std::path::PathBuf;
use std::process::Command;

use flotilla::scenario::{self, human_bytes};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `args` as a child and returns its exit code and peak resident set in bytes.
#[allow(clippy::zombie_processes)] // wait4 reaps the child, with its resource usage
fn peak_rss(args: &[&str]) -> (i32, u64) {
    let child = Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
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
    (code, usage.ru_maxrss as u64 * 1024)
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
        let (code, peak) = peak_rss(&[
            "run",
            file.to_str().unwrap(),
            "--quiet",
            "--out",
            out.to_str().unwrap(),
            "--set",
            "stop.rounds=2",
            "--set",
            "eval.every_rounds=1",
        ]);
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

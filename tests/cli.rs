//! The command line towards the shell: a reader that goes away mid-output (`| head`)
//! ends the command quietly, with success.

use std::process::{Command, Stdio};

#[test]
fn a_closed_pipe_ends_the_output_without_a_panic() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .arg("adapters")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes before the first line is written (the command builds its model
    // first), so every write meets a closed pipe.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {err}", out.status);
    assert!(!err.contains("panicked"), "{err}");
}

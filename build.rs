//! With the `tch` feature and LibTorch taken from a Python `torch` package
//! (`LIBTORCH_USE_PYTORCH=1`), bakes that package's library directory into the binary's
//! run path, so `flotilla` runs without `LD_LIBRARY_PATH`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH_USE_PYTORCH");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=VIRTUAL_ENV");
    if std::env::var_os("CARGO_FEATURE_TCH").is_none() {
        return;
    }
    let lib = match std::env::var("LIBTORCH") {
        Ok(root) => Some(format!("{root}/lib")),
        Err(_) if std::env::var_os("LIBTORCH_USE_PYTORCH").is_some() => torch_lib_dir(),
        Err(_) => None,
    };
    if let Some(lib) = lib {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
}

/// The `lib` directory of the `torch` package the active Python imports.
fn torch_lib_dir() -> Option<String> {
    let python = std::env::var("PYTHON_SYS_EXECUTABLE").unwrap_or_else(|_| "python3".into());
    let out = Command::new(python)
        .args([
            "-c",
            "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))",
        ])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

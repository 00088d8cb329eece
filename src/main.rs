//! The `flotilla` command line (see `cli`).

mod cli;

use std::process::ExitCode;

/// mimalloc: the engine allocates and frees small event buffers at every event, and flex
/// large tensors at every step; both run faster than on the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    cli::main()
}

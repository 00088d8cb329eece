//! The `flotilla` command line (see `cli`).

mod cli;

use std::process::ExitCode;

/// mimalloc: the engine allocates and frees small event buffers at every event, and flex
/// large tensors at every step; both run faster than on the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    keep_freed_memory();
    cli::main()
}

/// mimalloc hands freed pages back to the OS 10 ms after they empty, and a run frees and
/// allocates tensors and model vectors all the time: every page handed back is faulted in
/// and zeroed again at its next use (the quickstart faulted 4.4 million times instead of
/// 700, a tenth of its wall time). A run's footprint is its peak anyway, so freed pages
/// stay for reuse; `MIMALLOC_PURGE_DELAY` in the environment still decides when set.
fn keep_freed_memory() {
    /// `mi_option_purge_delay` in mimalloc's `mi_option_t` (v2 and v3), which the binding
    /// does not name.
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mi_option_set only stores the option's value; -1 is its documented
        // "never purge".
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) }
    }
}

//! The `tollgate` binary: parse the command line, run it, map failures to exit codes.

use std::process::ExitCode;

use clap::Parser;

/// The global allocator: mimalloc.
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // rustls has two crypto providers compiled in; the Kubernetes client needs one chosen.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = tollgate::cli::Cli::parse();
    // Not locked for the whole run: the service's log lines go to stderr from other threads.
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    match tollgate::cli::run(cli, &mut out, &mut err) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Exit 3 is a decision (a denied quota check), not a failure.
            if e.code == 3 {
                eprintln!("{e}");
            } else {
                eprintln!("error: {e}");
            }
            ExitCode::from(e.code as u8)
        }
    }
}

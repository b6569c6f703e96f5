//! The seed's `namespace_prog`: `namespace_prog [--explain]` (as root). `--explain` logs each
//! kernel step on stderr; stdout carries only the report.

use std::process::ExitCode;

fn main() -> ExitCode {
    let explain = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--explain") => true,
        Some(other) => {
            eprintln!("usage: namespace_prog [--explain]   (unknown argument {other:?})");
            return ExitCode::from(2);
        }
    };
    if explain {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_max_level(tracing::Level::DEBUG)
            .with_target(false)
            .without_time()
            .init();
    }
    match conductor_lab::namespaces::namespaces() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("namespace_prog: {e}");
            ExitCode::FAILURE
        }
    }
}

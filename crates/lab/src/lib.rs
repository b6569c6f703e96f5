//! The seed's exercises, shipped as features.
//!
//! - [`namespaces::namespaces`]: Task 1 (new UTS + PID namespaces with clone3, joined through a
//!   pidfd with setns), printing the seed's report. `namespace_prog` is the standalone binary.
//! - [`container_prog`]: Task 2's program, the path of the dynamically linked C binary that
//!   `build.rs` compiles (for `conductor image from-binary` and the container exercises).
//!
//! There is no `unsafe` here: clone3, fork, pidfd_open and setns go through conductor-sys.

#![forbid(unsafe_code)]

pub mod namespaces;

use std::path::Path;

/// Where `build.rs` put the `container_prog` binary (inside Cargo's OUT_DIR of this crate; a
/// copy also sits in `target/<triple>/<profile>/container_prog`).
pub const CONTAINER_PROG: &str = env!("CONDUCTOR_CONTAINER_PROG");

/// The `container_prog` binary built with this crate.
pub fn container_prog() -> &'static Path {
    Path::new(CONTAINER_PROG)
}

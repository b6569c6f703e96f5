//! Safe wrappers over the Linux primitives conductor needs. This is the only crate that holds
//! `unsafe` code; everything above it speaks in these types.
//!
//! Every state-changing call emits a `tracing` event with target `conductor::explain`, so that
//! `--explain` can show the kernel steps a command takes without print statements in the code.

pub mod bpf;
pub mod caps;
pub mod fd;
pub mod mount;
pub mod ns;
pub mod process;
pub mod procfs;
pub mod pty;
pub mod rlimit;
pub mod sealed_exe;
pub mod seccomp;
pub mod signal;

pub use nix::errno::Errno;

/// The tracing target of events that describe one kernel-level step.
pub const EXPLAIN: &str = "conductor::explain";

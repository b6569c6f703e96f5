//! conductor's OCI runtime as a library: an OCI bundle (config.json + rootfs) becomes an isolated
//! process. The `conductor-runtime` binary is a thin runc-compatible CLI over this; the engine
//! calls it in-process.

pub use nix;
pub use oci_spec;

mod channel;
pub mod config;
mod console;
pub mod create;
pub mod error;
pub mod events;
pub mod exec;
pub mod features;
mod hooks;
mod init;
pub mod lifecycle;
mod process;
pub mod reaper;
pub mod seccomp;
pub mod state;
pub mod update;
pub mod wait;

pub use create::{create, CreateOpts};
pub use error::{Error, Result};
pub use events::events;
pub use exec::{exec, ExecOpts};
pub use lifecycle::{delete, kill, list, pids, start, state};
pub use update::update;

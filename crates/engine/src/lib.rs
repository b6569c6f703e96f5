//! conductor's engine: named containers made from images and options, run through the OCI
//! runtime library in-process, each watched by a monitor process. Daemonless.

pub mod config;
pub mod container;
pub mod cp;
pub mod error;
pub mod etc;
pub mod explain;
pub mod logs;
pub mod monitor;
pub mod name;
pub mod network;
pub mod options;
pub mod paths;
pub mod record;
pub mod resources;
pub mod restart;
pub mod seccomp_profile;
pub mod spec;
pub mod template;

pub use container::{Engine, ExecOptions, Outcome, Summary};
pub use error::{Error, Result};
pub use network::{NetRecord, NetRequest};
pub use options::RunOptions;
pub use paths::Paths;
pub use resources::{ContainerStats, ResourceUpdate};
pub use restart::RestartPolicy;

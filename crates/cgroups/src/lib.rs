//! cgroups for conductor: one interface over cgroup v1 (including the "hybrid" layout with a
//! controller-less cgroup2 mount) and pure cgroup v2, detected at run time from mountinfo.
//!
//! - [`detect`] finds the layout; [`Cgroup::new`] resolves `linux.cgroupsPath` by runc's rules.
//! - [`Cgroup::apply`] turns `linux.resources` into file writes. All input is validated
//!   against the host and the live cgroup before the first write, so bad input changes
//!   nothing; errors are one line naming the field (`linux.resources.cpu.quota: ...`).
//! - Every file written and directory made or removed is a `tracing` debug event with target
//!   `conductor::explain` and fields `path` and `value`, which `--explain` renders.
//!
//! There is no `unsafe` here: the bpf(2) calls for v2 device programs live in conductor-sys.

#![forbid(unsafe_code)]

mod cgroup;
pub mod convert;
pub mod devices;
mod error;
mod freezer;
mod fs;
mod hierarchy;
mod layout;
mod mountinfo;
mod path;
pub mod proc_cgroup;
mod resources;
mod stats;
mod v1;
mod v2;
pub mod warmup;

/// The parent cgroup of containers whose config names no cgroupsPath.
pub const DEFAULT_PARENT: &str = "conductor";

pub use cgroup::Cgroup;
pub use error::{Error, Result};
pub use freezer::FreezerState;
pub use hierarchy::{detect, Hierarchy, UnifiedMount, V1Mount};
pub use layout::{Dir, Layout, V1Dir};
pub use stats::{Blkio, BlkioEntry, Cpu, CpuUsage, Hugetlb, Memory, MemoryEntry, Pids, Stats, Throttling};

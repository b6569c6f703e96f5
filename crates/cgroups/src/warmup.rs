//! Hiding the cost of the first cgroup migration.
//!
//! Moving a process between cgroups takes the global `cgroup_threadgroup_rwsem` for writing;
//! unless the lock was taken recently, that waits for an RCU grace period (7-12 ms measured on
//! this machine, most of a container start). The wait is per lock, not per process: once one
//! migration has paid it, the next ones within a few tens of milliseconds are fast. `warm_up`
//! starts that grace period at the beginning of a command, in a throwaway child that "moves"
//! itself into the cgroup it is already in (changing nothing), so the runtime's real migration
//! of the container's init later finds the lock warm.

use std::path::PathBuf;

use conductor_sys::process::{clone3, CloneArgs, Forked};
use nix::unistd::Pid;

use crate::hierarchy::{detect, Hierarchy};

/// Start the grace period in the background; returns the child, which ends when the grace
/// period has passed (reap it, or leave it to whoever reaps this process's children).
pub fn warm_up() -> Option<Pid> {
    let procs = own_procs_file()?;
    match clone3(&CloneArgs::default()).ok()? {
        Forked::Child => {
            let _ = std::fs::write(&procs, std::process::id().to_string());
            conductor_sys::process::exit_now(0)
        }
        Forked::Parent(pid) => Some(pid),
    }
}

/// cgroup.procs of our own cgroup in one hierarchy (any will do: the lock is global).
fn own_procs_file() -> Option<PathBuf> {
    let own = crate::proc_cgroup::parse(&std::fs::read_to_string("/proc/self/cgroup").ok()?).ok()?;
    let (mountpoint, root, path) = match detect().ok()? {
        Hierarchy::V2 { mountpoint, root } => {
            let line = own.iter().find(|l| l.hierarchy_id == 0)?;
            (mountpoint.clone(), root.clone(), line.path.clone())
        }
        Hierarchy::V1 { mounts, .. } => {
            let m = mounts.iter().find(|m| m.controllers.iter().any(|c| c == "pids" || c == "memory" || c == "cpu"))?;
            let line = own.iter().find(|l| l.controllers.iter().any(|c| m.controllers.contains(c)))?;
            (m.mountpoint.clone(), m.root.clone(), line.path.clone())
        }
    };
    let rel = path.strip_prefix(root.trim_end_matches('/')).unwrap_or(&path);
    Some(mountpoint.join(rel.trim_start_matches('/')).join("cgroup.procs"))
}

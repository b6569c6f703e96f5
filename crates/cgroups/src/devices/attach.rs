//! Attaching a device program to a cgroup v2 directory, replacing the one we put there before.
//! The new program goes in first (BPF_F_ALLOW_MULTI) and the old ones come out after, so there
//! is no moment without a filter; during the overlap both must allow, never neither.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;

use conductor_sys::bpf;
use nix::errno::Errno;

use super::{program, DeviceRule};
use crate::error::{Error, Result};
use crate::fs::EXPLAIN;

/// Generate the program for `rules` and make it the device filter of `cgroup_dir`, which must
/// be a directory on a cgroup2 mount (also the hybrid layout's unified one).
pub fn attach_program(cgroup_dir: &Path, rules: &[DeviceRule]) -> Result<()> {
    let insns = program::program(rules);
    let dir = File::open(cgroup_dir).map_err(|e| Error::io("open", cgroup_dir, e))?;
    let prog = bpf::prog_load_cgroup_device(&insns, c"Apache-2.0").map_err(|e| {
        let log = if e.log.is_empty() { String::new() } else { format!(" (verifier: {})", e.log.replace('\n', "; ")) };
        Error::Unsupported(format!("load device cgroup BPF program: {}{log}", e.errno))
    })?;
    let bpf_err = |what: &str, e: Errno| Error::Unsupported(format!("{what} {}: {e}", cgroup_dir.display()));
    let old = bpf::prog_query_cgroup_device(dir.as_fd()).map_err(|e| bpf_err("BPF_PROG_QUERY", e))?;
    tracing::debug!(
        target: EXPLAIN,
        step = "bpf(BPF_PROG_ATTACH, BPF_CGROUP_DEVICE)",
        path = %cgroup_dir.display(),
        rules = rules.len(),
        instructions = insns.len()
    );
    match bpf::prog_attach_cgroup_device(dir.as_fd(), prog.as_fd(), bpf::BPF_F_ALLOW_MULTI) {
        Ok(()) => {}
        // Someone attached a program without ALLOW_MULTI; attaching the same way replaces it.
        Err(Errno::EPERM) if !old.is_empty() => {
            bpf::prog_attach_cgroup_device(dir.as_fd(), prog.as_fd(), 0).map_err(|e| bpf_err("BPF_PROG_ATTACH", e))?;
            return Ok(());
        }
        Err(e) => return Err(bpf_err("BPF_PROG_ATTACH", e)),
    }
    for id in old {
        detach(&dir, cgroup_dir, id)?;
    }
    Ok(())
}

fn detach(dir: &File, cgroup_dir: &Path, id: u32) -> Result<()> {
    let old = match bpf::prog_get_fd_by_id(id) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()), // already gone
        Err(e) => return Err(Error::Unsupported(format!("BPF_PROG_GET_FD_BY_ID {id}: {e}"))),
    };
    tracing::debug!(target: EXPLAIN, step = "bpf(BPF_PROG_DETACH)", path = %cgroup_dir.display(), program_id = id);
    match bpf::prog_detach_cgroup_device(dir.as_fd(), old.as_fd()) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(Error::Unsupported(format!("BPF_PROG_DETACH {}: {e}", cgroup_dir.display()))),
    }
}

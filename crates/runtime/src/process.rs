//! The last steps before a container process runs its program, shared by init and exec: limits,
//! fds, working directory, user, capabilities, seccomp, then execve.

use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use conductor_sys::caps;
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{Capabilities, LinuxSeccomp, Process};

use crate::error::{Context, Error, Result};

/// The program to run, resolved inside the container (so create fails early when it is missing).
pub struct Program {
    pub path: CString,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub fn resolve(p: &Process) -> Result<Program> {
    let args = p.args().as_deref().unwrap_or(&[]);
    let env = p.env().as_deref().unwrap_or(&[]);
    let name = args.first().ok_or_else(|| Error::Invalid("process.args is empty".into()))?;
    let path = if name.contains('/') {
        let base = if Path::new(name).is_absolute() { PathBuf::new() } else { p.cwd().clone() };
        let full = base.join(name);
        if !is_executable(&full) {
            return Err(Error::Init(format!("exec: {name:?}: no such executable file")));
        }
        full
    } else {
        let path_var = env.iter().find_map(|kv| kv.strip_prefix("PATH=")).unwrap_or(DEFAULT_PATH);
        path_var
            .split(':')
            .map(|d| Path::new(if d.is_empty() { "." } else { d }).join(name))
            .find(|c| is_executable(c))
            .ok_or_else(|| Error::Init(format!("exec: {name:?}: executable file not found in $PATH")))?
    };
    let cs = |s: &str| CString::new(s).map_err(|_| Error::Invalid(format!("NUL byte in {s:?}")));
    Ok(Program {
        path: CString::new(path.into_os_string().into_encoded_bytes()).map_err(|_| Error::Invalid("NUL in path".into()))?,
        argv: args.iter().map(|a| cs(a)).collect::<Result<_>>()?,
        envp: env.iter().map(|a| cs(a)).collect::<Result<_>>()?,
    })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Everything that must hold for the exec.
pub struct Finish<'a> {
    pub process: &'a Process,
    pub seccomp: Option<&'a LinuxSeccomp>,
    /// fds 3..3+preserve_fds pass through to the program.
    pub preserve_fds: i32,
    /// In a user namespace where setgroups is denied, supplementary groups cannot be set.
    pub setgroups_allowed: bool,
}

/// Apply the process settings and execve. Returns only on error.
pub fn finish_and_exec(f: &Finish, prog: &Program) -> Result<Infallible> {
    let p = f.process;
    for rl in p.rlimits().iter().flatten() {
        let name = serde_json::to_value(rl.typ()).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
        conductor_sys::rlimit::set(&name, rl.soft(), rl.hard()).ctx(|| format!("process.rlimits {name}"))?;
    }
    if let Some(prof) = p.apparmor_profile().as_deref().filter(|s| !s.is_empty()) {
        tracing::warn!("process.apparmorProfile {prof:?} ignored: AppArmor is not enabled on this host");
    }
    if let Some(label) = p.selinux_label().as_deref().filter(|s| !s.is_empty()) {
        tracing::warn!("process.selinuxLabel {label:?} ignored: SELinux is not enabled on this host");
    }
    if let Some(io) = p.io_priority() {
        let class = serde_json::to_value(io.class()).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
        conductor_sys::process::set_io_priority(&class, io.priority()).ctx(|| "process.ioPriority".into())?;
    }
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(p.user().umask().unwrap_or(0o022)));

    // Nothing but stdio and preserved fds may reach the program (CVE-2024-21626): the rest are
    // close-on-exec (the runtime's channel stays open until execve, so it reports success by
    // EOF), and a cwd that resolves outside the container's root is refused below.
    conductor_sys::fd::cloexec_from(3 + f.preserve_fds).ctx(|| "close fds".into())?;
    for fd in 3..3 + f.preserve_fds {
        let _ = conductor_sys::fd::clear_cloexec(fd as RawFd);
    }
    nix::unistd::chdir(p.cwd()).ctx(|| format!("process.cwd {}", p.cwd().display()))?;
    let cwd = nix::unistd::getcwd().ctx(|| "getcwd".into())?;
    if !cwd.is_absolute() || cwd.starts_with("(unreachable)") {
        return Err(Error::Init(format!("process.cwd {} resolves outside the container", p.cwd().display())));
    }

    let nnp = p.no_new_privileges().unwrap_or(false);
    if nnp {
        conductor_sys::process::set_no_new_privs().ctx(|| "no_new_privs".into())?;
    } else if let Some(s) = f.seccomp {
        // Without no_new_privs loading a filter needs CAP_SYS_ADMIN: do it before dropping caps.
        crate::seccomp::apply(s).map_err(|e| Error::Init(format!("linux.seccomp: {e}")))?;
    }
    set_user(p, f.setgroups_allowed)?;
    set_caps(p)?;
    if nnp {
        if let Some(s) = f.seccomp {
            crate::seccomp::apply(s).map_err(|e| Error::Init(format!("linux.seccomp: {e}")))?;
        }
    }
    tracing::debug!(target: conductor_sys::EXPLAIN, step = "execve", path = ?prog.path, argv = ?prog.argv);
    let e = nix::unistd::execve(&prog.path, &prog.argv, &prog.envp).unwrap_err();
    Err(Error::Init(format!("exec {:?}: {e}", prog.path)))
}

fn set_user(p: &Process, setgroups_allowed: bool) -> Result<()> {
    let u = p.user();
    let groups: Vec<Gid> = u.additional_gids().iter().flatten().map(|g| Gid::from_raw(*g)).collect();
    tracing::debug!(target: conductor_sys::EXPLAIN, step = "setresuid/setresgid", uid = u.uid(), gid = u.gid(), groups = ?groups);
    caps::keep_caps(true).ctx(|| "keep caps".into())?;
    if setgroups_allowed {
        nix::unistd::setgroups(&groups).ctx(|| "process.user.additionalGids".into())?;
    }
    let gid = Gid::from_raw(u.gid());
    nix::unistd::setresgid(gid, gid, gid).ctx(|| format!("process.user.gid {}", u.gid()))?;
    let uid = Uid::from_raw(u.uid());
    nix::unistd::setresuid(uid, uid, uid).ctx(|| format!("process.user.uid {}", u.uid()))?;
    caps::keep_caps(false).ctx(|| "keep caps".into())
}

fn set_caps(p: &Process) -> Result<()> {
    let Some(c) = p.capabilities() else {
        // No capabilities object: the process keeps none.
        caps::limit_bounding(0).ctx(|| "bounding set".into())?;
        return caps::set(0, 0, 0).ctx(|| "capset".into());
    };
    let set = |s: &Option<Capabilities>| -> caps::Set {
        caps::set_of(s.iter().flatten().filter_map(|c| caps::from_name(&c.to_string())))
    };
    // The bounding set is dropped while we still hold CAP_SETPCAP (kept across setuid).
    caps::limit_bounding(set(c.bounding())).ctx(|| "process.capabilities.bounding".into())?;
    caps::set(set(c.effective()), set(c.permitted()), set(c.inheritable())).ctx(|| "process.capabilities".into())?;
    let ambient = set(c.ambient());
    if ambient != 0 {
        caps::raise_ambient(ambient).ctx(|| "process.capabilities.ambient".into())?;
    }
    Ok(())
}

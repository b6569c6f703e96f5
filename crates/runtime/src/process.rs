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
            // runc's wording, which podman and docker turn into exit codes 127 and 126.
            let why = if full.exists() { "permission denied" } else { "no such file or directory" };
            return Err(Error::Init(format!("exec: {name:?}: no such executable file: {why}")));
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
    let mut envp: Vec<CString> = env.iter().map(|a| cs(a)).collect::<Result<_>>()?;
    if !env.iter().any(|kv| kv.starts_with("HOME=")) {
        // As runc: programs expect HOME; take it from the container's passwd.
        envp.push(cs(&format!("HOME={}", home_of(p.user().uid())))?);
    }
    Ok(Program {
        path: CString::new(path.into_os_string().into_encoded_bytes()).map_err(|_| Error::Invalid("NUL in path".into()))?,
        argv: args.iter().map(|a| cs(a)).collect::<Result<_>>()?,
        envp,
    })
}

/// The home directory of `uid` in the container's /etc/passwd, "/" when it has none.
fn home_of(uid: u32) -> String {
    passwd_home(&read_passwd().unwrap_or_default(), uid).unwrap_or_else(|| "/".into())
}

/// /etc/passwd if it is a regular file: opened non-blocking, so a FIFO planted by the image
/// cannot hang init, and read with a size cap.
fn read_passwd() -> Option<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open("/etc/passwd").ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    f.take(1 << 20).read_to_string(&mut text).ok()?;
    Some(text)
}

fn passwd_home(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 7 && f[2].parse() == Ok(uid) && !f[5].is_empty()).then(|| f[5].to_string())
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
    /// Stay as a minimal init (pid 1) and run the program as its child (see `reaper`).
    pub reaper: bool,
    /// Where the seccomp-notify listener goes, for a profile with SCMP_ACT_NOTIFY.
    pub notify: Option<&'a Notify>,
}

/// A socket to the seccomp agent's listenerPath, connected while the host path was reachable,
/// and what to tell the agent.
pub struct Notify {
    pub sock: std::os::unix::net::UnixStream,
    pub state: String,
    pub metadata: String,
}

/// Load the seccomp filter, if any, and hand a notify listener to the agent.
fn load_seccomp(f: &Finish) -> Result<()> {
    let Some(s) = f.seccomp else { return Ok(()) };
    let listener = crate::seccomp::apply(s).map_err(|e| Error::Init(format!("linux.seccomp: {e}")))?;
    if let (Some(fd), Some(n)) = (listener, f.notify) {
        use std::os::fd::AsFd;
        crate::seccomp::send_listener_on(&n.sock, fd.as_fd(), n.state.as_bytes(), &n.metadata)
            .map_err(|e| Error::Init(format!("linux.seccomp.listenerPath: {e}")))?;
    }
    Ok(())
}

/// Apply the process settings and execve. Returns only on error.
pub fn finish_and_exec(f: &Finish, prog: &Program) -> Result<Infallible> {
    prepare(f)?;
    exec(f, prog)
}

/// Everything that can fail on the container's config, short of the exec: limits, fds, cwd,
/// user, capabilities (and a seccomp filter without no_new_privs). Init does this before it
/// reports ready, so that `create` fails on a bad setting (as runc does).
pub fn prepare(f: &Finish) -> Result<()> {
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
    // glibc's getcwd fails with ENOENT for a directory outside our root ("(unreachable)").
    let outside = nix::unistd::getcwd().map_or(true, |cwd| !cwd.is_absolute() || cwd.starts_with("(unreachable)"));
    if outside {
        return Err(Error::Init(format!("process.cwd {} resolves outside the container", p.cwd().display())));
    }

    let nnp = p.no_new_privileges().unwrap_or(false);
    if nnp {
        conductor_sys::process::set_no_new_privs().ctx(|| "no_new_privs".into())?;
    } else {
        // Without no_new_privs loading a filter needs CAP_SYS_ADMIN: do it before dropping caps.
        load_seccomp(f)?;
    }
    // The bounding set is dropped while init is still root with CAP_SETPCAP effective: a change
    // to a non-zero uid clears the effective set (as runc orders it).
    limit_bounding(p)?;
    set_user(p, f.setgroups_allowed)?;
    set_caps(p)
}

/// After [`prepare`]: with no_new_privs the seccomp filter, as late as possible (fewer syscalls
/// for profiles to allow), then execve. Returns only on error.
pub fn exec(f: &Finish, prog: &Program) -> Result<Infallible> {
    if f.process.no_new_privileges().unwrap_or(false) {
        load_seccomp(f)?;
    }
    if f.reaper {
        crate::reaper::fork_and_reap().ctx(|| "fork the program under the minimal init".into())?;
    }
    conductor_sys::signal::reset_for_exec().ctx(|| "reset signal dispositions".into())?;
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

fn cap_set(s: &Option<Capabilities>) -> caps::Set {
    caps::set_of(s.iter().flatten().filter_map(|c| caps::from_name(&c.to_string())))
}

/// No capabilities object means no capabilities at all.
fn limit_bounding(p: &Process) -> Result<()> {
    let keep = p.capabilities().as_ref().map_or(0, |c| cap_set(c.bounding()));
    caps::limit_bounding(keep).ctx(|| "process.capabilities.bounding".into())
}

fn set_caps(p: &Process) -> Result<()> {
    let Some(c) = p.capabilities() else {
        return caps::set(0, 0, 0).ctx(|| "capset".into());
    };
    caps::set(cap_set(c.effective()), cap_set(c.permitted()), cap_set(c.inheritable())).ctx(|| "process.capabilities".into())?;
    let ambient = cap_set(c.ambient());
    if ambient != 0 {
        caps::raise_ambient(ambient).ctx(|| "process.capabilities.ambient".into())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn home_from_passwd() {
        let pw = "root:x:0:0:root:/root:/bin/sh\nbad line\nweb:x:33:33::/var/www:/bin/false\nnohome:x:5:5:::/bin/sh\n";
        assert_eq!(super::passwd_home(pw, 0).as_deref(), Some("/root"));
        assert_eq!(super::passwd_home(pw, 33).as_deref(), Some("/var/www"));
        assert_eq!(super::passwd_home(pw, 5), None);
        assert_eq!(super::passwd_home(pw, 1000), None);
    }
}

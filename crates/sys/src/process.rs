//! Process creation and control: clone3 with namespace flags, pidfds, waiting.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::EXPLAIN;

/// Which side of a fork-like call we are on.
pub enum Forked {
    Parent(Pid),
    Child,
}

/// Options for [`clone3`].
pub struct CloneArgs {
    /// CLONE_NEW* and other flags (CLONE_PARENT, ...).
    pub flags: CloneFlags,
    /// Put the child straight into this cgroup v2 directory (CLONE_INTO_CGROUP).
    pub cgroup: Option<RawFd>,
    /// Signal sent to the parent when the child exits (SIGCHLD if None).
    pub exit_signal: Option<Signal>,
}

#[repr(C)]
#[derive(Default)]
struct RawCloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

impl Default for CloneArgs {
    fn default() -> Self {
        CloneArgs { flags: CloneFlags::empty(), cgroup: None, exit_signal: None }
    }
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// clone3(2) without a new stack: like fork, but able to create namespaces in the same step and to
/// place the child into a cgroup before it runs. The caller must be single-threaded.
pub fn clone3(args: &CloneArgs) -> nix::Result<Forked> {
    let mut raw = RawCloneArgs {
        flags: args.flags.bits() as u64,
        exit_signal: args.exit_signal.unwrap_or(Signal::SIGCHLD) as u64,
        ..Default::default()
    };
    if args.flags.contains(CloneFlags::CLONE_PARENT) {
        // The kernel refuses an exit signal with CLONE_PARENT; the real parent gets SIGCHLD.
        raw.exit_signal = 0;
    }
    if let Some(fd) = args.cgroup {
        raw.flags |= CLONE_INTO_CGROUP;
        raw.cgroup = fd as u64;
    }
    tracing::debug!(target: EXPLAIN, step = "clone3", flags = ?args.flags, into_cgroup = args.cgroup.is_some());
    // SAFETY: clone3 without CLONE_VM and without a stack behaves like fork: the child gets a copy
    // of the address space and returns 0 from the same call site.
    let rc = unsafe { libc::syscall(libc::SYS_clone3, &mut raw as *mut RawCloneArgs, std::mem::size_of::<RawCloneArgs>()) };
    match Errno::result(rc)? {
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(Pid::from_raw(pid as i32))),
    }
}

/// fork(2) through libc (the clone syscall, which seccomp profiles that refuse clone3 allow).
pub fn fork() -> nix::Result<Forked> {
    // SAFETY: callers are single-threaded; the child only continues the caller's code.
    match Errno::result(unsafe { libc::fork() })? {
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(Pid::from_raw(pid))),
    }
}

/// A pidfd: a handle on a process that cannot be confused with a later process of the same pid.
pub fn pidfd_open(pid: Pid) -> nix::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments; on success it returns a new fd we own.
    let rc = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    let fd = Errno::result(rc)? as RawFd;
    // SAFETY: the kernel just returned this fd to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Send `sig` through a pidfd.
pub fn pidfd_send_signal(pidfd: &OwnedFd, sig: i32) -> nix::Result<()> {
    tracing::debug!(target: EXPLAIN, step = "pidfd_send_signal", signal = sig);
    // SAFETY: integer arguments, null siginfo is allowed.
    let rc =
        unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), sig, std::ptr::null::<libc::siginfo_t>(), 0) };
    Errno::result(rc).map(drop)
}

/// Block until the process behind `pidfd` has exited (it need not be our child).
pub fn pidfd_wait_exit(pidfd: &OwnedFd, timeout_ms: i32) -> nix::Result<bool> {
    let mut pfd = libc::pollfd { fd: pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    loop {
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        match Errno::result(rc) {
            Ok(n) => return Ok(n > 0),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Is a process with this pid alive (not a zombie) and started at `start_time` (clock ticks since
/// boot, field 22 of /proc/PID/stat)? The start time guards against pid reuse.
pub fn is_alive(pid: Pid, start_time: Option<u64>) -> bool {
    match stat(pid) {
        Some(st) => st.state != 'Z' && st.state != 'X' && start_time.is_none_or(|t| t == st.start_time),
        None => false,
    }
}

/// The parts of /proc/PID/stat the runtime uses.
pub struct Stat {
    pub state: char,
    pub ppid: i32,
    pub start_time: u64,
}

pub fn stat(pid: Pid) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

fn parse_stat(text: &str) -> Option<Stat> {
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// Make this process a child subreaper, so orphaned descendants are reparented to it.
pub fn set_child_subreaper() -> nix::Result<()> {
    // SAFETY: prctl with integer arguments.
    Errno::result(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) }).map(drop)
}

/// Ask the kernel to send `sig` to this process when its parent dies.
pub fn set_parent_death_signal(sig: Signal) -> nix::Result<()> {
    // SAFETY: prctl with integer arguments.
    Errno::result(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) }).map(drop)
}

/// Non-dumpable processes cannot be ptraced and their /proc files are root-only: the runtime stays
/// so while it works inside a container, where container processes could otherwise reach it.
pub fn set_dumpable(on: bool) -> nix::Result<()> {
    // SAFETY: prctl with integer arguments.
    Errno::result(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, on as libc::c_ulong, 0, 0, 0) }).map(drop)
}

/// prctl(PR_SET_NO_NEW_PRIVS).
pub fn set_no_new_privs() -> nix::Result<()> {
    tracing::debug!(target: EXPLAIN, step = "prctl", option = "PR_SET_NO_NEW_PRIVS");
    // SAFETY: prctl with integer arguments.
    Errno::result(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }).map(drop)
}

/// Set the process name shown by ps (first 15 bytes).
pub fn set_name(name: &str) {
    let mut buf = [0u8; 16];
    let n = name.len().min(15);
    buf[..n].copy_from_slice(&name.as_bytes()[..n]);
    // SAFETY: buf is NUL-terminated and lives across the call.
    unsafe { libc::prctl(libc::PR_SET_NAME, buf.as_ptr(), 0, 0, 0) };
}

/// The calling thread's name (PR_GET_NAME). Not nix's get_name: it hands the kernel an
/// immutable buffer, so an optimised build may read back the zeros it started with.
pub fn name() -> String {
    let mut buf = [0u8; 16];
    // SAFETY: the kernel writes at most 16 bytes (TASK_COMM_LEN), NUL-terminated, into buf.
    let r = unsafe { libc::prctl(libc::PR_GET_NAME, buf.as_mut_ptr(), 0, 0, 0) };
    if r != 0 {
        return String::new();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// ioprio_set(2) for the calling process; `class` is "IOPRIO_CLASS_RT", "_BE" or "_IDLE".
pub fn set_io_priority(class: &str, priority: i64) -> nix::Result<()> {
    let c: i64 = match class {
        "IOPRIO_CLASS_RT" => 1,
        "IOPRIO_CLASS_BE" => 2,
        "IOPRIO_CLASS_IDLE" => 3,
        _ => return Err(Errno::EINVAL),
    };
    tracing::debug!(target: EXPLAIN, step = "ioprio_set", class, priority);
    // SAFETY: integer arguments (IOPRIO_WHO_PROCESS = 1, pid 0 = self).
    Errno::result(unsafe { libc::syscall(libc::SYS_ioprio_set, 1, 0, (c << 13) | priority) }).map(drop)
}

/// Give the process its own session keyring, so containers do not share the host's keys.
pub fn join_session_keyring(name: &str) -> nix::Result<()> {
    let c = std::ffi::CString::new(name).map_err(|_| Errno::EINVAL)?;
    tracing::debug!(target: EXPLAIN, step = "keyctl(JOIN_SESSION_KEYRING)", name);
    // SAFETY: KEYCTL_JOIN_SESSION_KEYRING (1) with a NUL-terminated name.
    Errno::result(unsafe { libc::syscall(libc::SYS_keyctl, 1, c.as_ptr()) }).map(drop)
}

/// personality(2).
pub fn set_personality(persona: libc::c_ulong) -> nix::Result<()> {
    // SAFETY: integer argument.
    Errno::result(unsafe { libc::personality(persona) }).map(drop)
}

/// Leave immediately without running destructors or atexit handlers (for forked children).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is always safe to call.
    unsafe { libc::_exit(code) }
}

#[cfg(test)]
mod name_tests {
    #[test]
    fn the_name_set_is_the_name_read() {
        std::thread::spawn(|| {
            super::set_name("cnd-name-test");
            assert_eq!(super::name(), "cnd-name-test");
        })
        .join()
        .unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parses_names_with_parens() {
        let s = parse_stat("42 (a) b) S 7 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 12345 0 0").unwrap();
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 7);
        assert_eq!(s.start_time, 12345);
    }

    #[test]
    fn self_is_alive_and_pid_reuse_is_detected() {
        let me = Pid::this();
        let st = stat(me).unwrap();
        assert!(is_alive(me, Some(st.start_time)));
        assert!(!is_alive(me, Some(st.start_time + 1)));
    }
}

//! The seed's Task 1 with raw syscalls: a child in new UTS and PID namespaces, and a second
//! child that joins them through a pidfd.
//!
//! ```text
//! parent ──clone3(NEWUTS|NEWPID)──> child 1 (pid 1, hostname Child1Hostname, waits)
//!   │
//!   ├─pidfd_open(child 1)
//!   └─fork──> helper ──setns(pidfd, NEWUTS|NEWPID)──fork──> child 2 (pid 2, Child1Hostname)
//! ```
//!
//! setns(CLONE_NEWPID) never moves the caller: it only picks the pid namespace of the caller's
//! *future* children. And setns(CLONE_NEWUTS) would change the hostname the caller sees. The
//! join is therefore done by a throwaway helper process, so the parent's own namespaces (and the
//! hostname it prints) never change, with no need to save and restore its UTS namespace.
//!
//! Child 1 is the init of its pid namespace: when it exits the kernel kills everything left in
//! that namespace, so it stays alive (blocked on a pipe) until child 2 has finished.
//!
//! All processes write to the same stdout. The order is made deterministic by pipes and waits,
//! never by timing: each process flushes before it forks or signals the next one.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;

use conductor_sys::process::{self, CloneArgs, Forked};
use conductor_sys::{ns, EXPLAIN};
use nix::sched::CloneFlags;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{getpid, Pid};

/// The hostname child 1 gives its new UTS namespace.
pub const CHILD1_HOSTNAME: &str = "Child1Hostname";

/// The seed's separator line: 40 dashes.
pub const SEPARATOR: &str = "----------------------------------------";

/// Why the exercise failed. Failures inside a child are reported by the child on stderr and
/// show up here as its exit status.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the namespaces exercise must run in a single-threaded process (this one has {0} threads): clone3 and fork copy only the calling thread")]
    Threads(usize),
    #[error("{step}: {source}")]
    Sys { step: &'static str, source: nix::Error },
    #[error("{step}: {source}")]
    Io { step: &'static str, source: std::io::Error },
    #[error("{who} failed: {status}")]
    Child { who: &'static str, status: String },
}

pub type Result<T> = std::result::Result<T, Error>;

fn sys<T>(step: &'static str, r: nix::Result<T>) -> Result<T> {
    r.map_err(|source| Error::Sys { step, source })
}

fn io<T>(step: &'static str, r: std::io::Result<T>) -> Result<T> {
    r.map_err(|source| Error::Io { step, source })
}

/// Run the exercise, writing the seed's output to stdout (fd 1, shared with the children).
///
/// Needs root (CAP_SYS_ADMIN for new namespaces and setns) and a single-threaded process: call
/// it from a program's main thread before any other thread starts (not from a test harness;
/// run a binary such as `namespace_prog` as a subprocess there).
pub fn namespaces() -> Result<()> {
    let threads = thread_count();
    if threads > 1 {
        return Err(Error::Threads(threads));
    }
    let out = &mut std::io::stdout();
    say(out, &[SEPARATOR])?;
    parent_block(out)?;

    let child1 = Child1::spawn()?;
    parent_block(out)?;
    join_and_spawn_child2(child1.pid)?;
    child1.release()?;
    parent_block(out)
}

/// The seed's two-line report plus a separator, as one write, flushed (so that a fork right
/// after it cannot duplicate buffered text into the child).
fn report(out: &mut dyn Write, who: &str, pid: Pid, hostname: &str) -> std::io::Result<()> {
    write!(out, "{}", format_report(who, pid.as_raw(), hostname))?;
    out.flush()
}

/// `"{who} Process PID: N\n{who} Hostname: X\n----...\n"`.
pub fn format_report(who: &str, pid: i32, hostname: &str) -> String {
    format!("{who} Process PID: {pid}\n{who} Hostname: {hostname}\n{SEPARATOR}\n")
}

fn say(out: &mut dyn Write, lines: &[&str]) -> Result<()> {
    io("write stdout", lines.iter().try_for_each(|l| writeln!(out, "{l}")).and_then(|()| out.flush()))
}

fn parent_block(out: &mut dyn Write) -> Result<()> {
    io("write stdout", report(out, "Parent", getpid(), &hostname()))
}

fn hostname() -> String {
    nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_else(|e| format!("(gethostname: {e})"))
}

/// Threads of this process, from /proc/self/status (1 if it cannot be read: the check is a
/// guard for callers, not a security boundary).
fn thread_count() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("Threads:")).and_then(|n| n.trim().parse().ok()).unwrap_or(1)
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    tracing::debug!(target: EXPLAIN, step = "pipe2", flags = "O_CLOEXEC");
    sys("pipe2", nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC))
}

/// Child 1, alive in its namespaces until `release` (or drop) closes its pipe.
struct Child1 {
    pid: Pid,
    /// Closing this (EOF on child 1's end) tells child 1 to exit.
    hold: Option<OwnedFd>,
}

impl Child1 {
    /// clone3 straight into new UTS and PID namespaces; returns once child 1 has printed.
    fn spawn() -> Result<Child1> {
        let (ready_r, ready_w) = pipe()?;
        let (hold_r, hold_w) = pipe()?;
        let args = CloneArgs { flags: CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWPID, ..CloneArgs::default() };
        match sys("clone3", process::clone3(&args))? {
            Forked::Child => {
                drop((ready_r, hold_w));
                in_child("child 1", || child1(ready_w, hold_r))
            }
            Forked::Parent(pid) => {
                drop((ready_w, hold_r));
                let child = Child1 { pid, hold: Some(hold_w) };
                wait_ready(ready_r, "child 1")?;
                Ok(child)
            }
        }
    }

    /// Let child 1 exit (child 2 is done) and reap it.
    fn release(mut self) -> Result<()> {
        self.hold.take();
        wait_ok(self.pid, "child 1")
    }
}

impl Drop for Child1 {
    /// On an error path: close the pipe so child 1 exits, and reap it.
    fn drop(&mut self) {
        if self.hold.take().is_some() {
            let _ = waitpid(self.pid, None);
        }
    }
}

/// Child 1: name the new UTS namespace, report, tell the parent, wait for EOF.
fn child1(ready: OwnedFd, hold: OwnedFd) -> Result<()> {
    sys("sethostname", ns::set_hostname(CHILD1_HOSTNAME))?;
    io("write stdout", report(&mut std::io::stdout(), "Child1", getpid(), &hostname()))?;
    signal_ready(ready)?;
    // EOF when the parent closes its end: after child 2 is done, or when the parent dies.
    let mut byte = [0u8; 1];
    let _ = std::fs::File::from(hold).read(&mut byte);
    Ok(())
}

/// A helper joins child 1's UTS and PID namespaces through a pidfd and forks child 2 there;
/// returns once child 2 has printed and exited.
fn join_and_spawn_child2(child1: Pid) -> Result<()> {
    tracing::debug!(target: EXPLAIN, step = "pidfd_open", pid = child1.as_raw());
    let pidfd = sys("pidfd_open", process::pidfd_open(child1))?;
    tracing::debug!(target: EXPLAIN, step = "fork", role = "namespace-joining helper");
    match sys("fork", process::fork())? {
        Forked::Child => in_child("the namespace-joining helper", || helper(pidfd)),
        Forked::Parent(pid) => {
            drop(pidfd);
            wait_ok(pid, "the namespace-joining helper")
        }
    }
}

/// The helper: setns, then fork child 2 (the first process created in child 1's pid namespace
/// after child 1 itself, hence pid 2).
fn helper(pidfd: OwnedFd) -> Result<()> {
    sys("setns", ns::join(&pidfd, CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWPID, "child 1 (pidfd)"))?;
    drop(pidfd);
    tracing::debug!(target: EXPLAIN, step = "fork", role = "child 2");
    match sys("fork", process::fork())? {
        Forked::Child => {
            in_child("child 2", || io("write stdout", report(&mut std::io::stdout(), "Child2", getpid(), &hostname())))
        }
        Forked::Parent(pid) => wait_ok(pid, "child 2"),
    }
}

/// Run a forked child's work and leave with its outcome, never returning into the caller's
/// code (which belongs to the parent). Errors go to stderr; stdout carries only the report.
fn in_child(who: &str, work: impl FnOnce() -> Result<()>) -> ! {
    let code = match work() {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "{who}: {e}");
            1
        }
    };
    let _ = std::io::stdout().flush();
    process::exit_now(code)
}

fn signal_ready(ready: OwnedFd) -> Result<()> {
    io("signal the parent", std::fs::File::from(ready).write_all(b"r"))
}

/// One byte: the child printed its report. EOF: it failed first (its status says why).
fn wait_ready(ready: OwnedFd, who: &'static str) -> Result<()> {
    let mut byte = [0u8; 1];
    match io("wait for child 1", std::fs::File::from(ready).read(&mut byte))? {
        1 => Ok(()),
        _ => Err(Error::Child { who, status: "exited before reporting".into() }),
    }
}

fn wait_ok(pid: Pid, who: &'static str) -> Result<()> {
    match sys("waitpid", waitpid(pid, None))? {
        WaitStatus::Exited(_, 0) => Ok(()),
        other => Err(Error::Child { who, status: format!("{other:?}") }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_has_the_seed_shape() {
        assert_eq!(
            format_report("Child1", 1, CHILD1_HOSTNAME),
            "Child1 Process PID: 1\nChild1 Hostname: Child1Hostname\n----------------------------------------\n"
        );
        assert_eq!(SEPARATOR.len(), 40);
    }

    #[test]
    fn refuses_a_multithreaded_caller() {
        // The test harness runs tests on threads: keep one more alive to be sure.
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || rx.recv());
        let err = namespaces().unwrap_err();
        assert!(matches!(err, Error::Threads(n) if n >= 2), "{err}");
        drop(tx);
        t.join().unwrap().unwrap_err();
    }
}

//! `start`, `state`, `kill`, `pause`, `resume`, `delete`, `list`, `ps`: operations on an existing
//! container.

use std::io::Write;
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use oci_spec::runtime::Spec;

use crate::error::{Context, Error, Result};
use crate::state::{self, Dir, Persisted, StateJson, Status};

/// A container opened for an operation, locked for the life of this value.
pub struct Container {
    pub dir: Dir,
    pub st: Persisted,
    _lock: nix::fcntl::Flock<std::fs::File>,
}

impl Container {
    pub fn open(root: &Path, id: &str) -> Result<Container> {
        let dir = Dir::open(root, id)?;
        let lock = dir.lock()?;
        let st = dir.load()?;
        Ok(Container { dir, st, _lock: lock })
    }

    pub fn status(&self) -> Status {
        self.st.status(&self.dir)
    }

    pub fn spec(&self) -> Result<Spec> {
        let raw = std::fs::read(self.dir.file(state::CONFIG)).ctx(|| "read saved config".into())?;
        crate::config::parse(&raw).map_err(Error::Invalid)
    }

    fn state_json(&self, status: Status) -> Vec<u8> {
        serde_json::to_vec(&self.st.to_json(status)).expect("serializes")
    }

    pub(crate) fn wrong(&self, op: &'static str, needs: &'static str) -> Error {
        Error::WrongState { id: self.st.id.clone(), status: self.status().to_string(), op, needs }
    }

    /// A pidfd for init, checked against pid reuse.
    pub fn init_pidfd(&self) -> Result<std::os::fd::OwnedFd> {
        let pid = Pid::from_raw(self.st.pid);
        let fd = conductor_sys::process::pidfd_open(pid).ctx(|| format!("pidfd_open {pid}"))?;
        if !conductor_sys::process::is_alive(pid, Some(self.st.pid_start)) {
            return Err(self.wrong("signal", "a running init"));
        }
        Ok(fd)
    }
}

pub fn state(root: &Path, id: &str) -> Result<StateJson> {
    let dir = Dir::open(root, id)?;
    let st = dir.load()?;
    Ok(st.to_json(st.status(&dir)))
}

/// Release init: it leaves the fifo read and runs the container's program.
pub fn start(root: &Path, id: &str) -> Result<()> {
    let c = Container::open(root, id)?;
    if c.status() != Status::Created {
        return Err(c.wrong("start", "created"));
    }
    let fifo = c.dir.file(state::FIFO);
    let f = nix::fcntl::open(&fifo, OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| Error::Init(format!("init is not waiting for start: {e}")))?;
    std::fs::File::from(f).write_all(b"0").ctx(|| "write exec fifo".into())?;
    std::fs::remove_file(&fifo).ctx(|| "remove exec fifo".into())?;
    let spec = c.spec()?;
    if let Some(hooks) = spec.hooks().as_ref().and_then(|h| h.poststart().as_ref()) {
        // poststart hooks run after the program started: wait for init's execve.
        wait_exec(Pid::from_raw(c.st.pid), c.st.pid_start);
        crate::hooks::run_warn("poststart", Some(hooks), &c.state_json(Status::Running));
    }
    Ok(())
}

/// Wait (bounded) until init has replaced itself with the program: its name changes from the
/// one init gives itself, or it is gone.
fn wait_exec(pid: Pid, start: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline && conductor_sys::process::is_alive(pid, Some(start)) {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim_end() != crate::init::NAME {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Send `signal` to init, or with `all` to every process of the container.
pub fn kill(root: &Path, id: &str, signal: i32, all: bool) -> Result<()> {
    let c = Container::open(root, id)?;
    match c.status() {
        Status::Created | Status::Running | Status::Paused => {}
        // Init is gone, but without a pid namespace of its own its children live on in the
        // cgroup: containerd's shim kills them with `kill --all` (runc allows it too).
        Status::Stopped if all => {}
        // ESRCH, as kill(2) says: containerd's shim recognises "no such process" as "already
        // exited" (a race with the exit, not a failure).
        Status::Stopped => {
            return Err(Error::Sys { what: format!("container {id:?} is stopped: cannot kill"), err: nix::errno::Errno::ESRCH })
        }
        _ => return Err(c.wrong("kill", "created, running or paused")),
    }
    if all {
        if !c.st.cgroup.exists() {
            return Ok(());
        }
        return Ok(c.st.cgroup.kill_all(signal)?);
    }
    let fd = c.init_pidfd()?;
    conductor_sys::process::pidfd_send_signal(&fd, signal).ctx(|| format!("signal {signal}"))
}

/// Freeze every process of a running container (the cgroup freezer): `status` reports paused.
pub fn pause(root: &Path, id: &str) -> Result<()> {
    let c = Container::open(root, id)?;
    if c.status() != Status::Running {
        return Err(c.wrong("pause", "running"));
    }
    Ok(c.st.cgroup.freeze()?)
}

/// Thaw a paused container.
pub fn resume(root: &Path, id: &str) -> Result<()> {
    let c = Container::open(root, id)?;
    if c.status() != Status::Paused {
        return Err(c.wrong("resume", "paused"));
    }
    Ok(c.st.cgroup.thaw()?)
}

/// Remove a container. Running ones need `force` (SIGKILL to all of it first); created ones are
/// killed without (init has run no user code yet).
pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    let c = match Container::open(root, id) {
        Err(Error::NotFound(_)) if force => return Ok(()),
        Err(Error::NotFound(_)) => {
            // A directory without state is what a crashed create leaves: clean it up.
            let dir = Dir::of(root, id)?;
            if dir.path.is_dir() {
                return dir.remove();
            }
            return Err(Error::NotFound(id.into()));
        }
        r => r?,
    };
    let status = c.status();
    match status {
        Status::Stopped | Status::Created => {}
        _ if force => {}
        _ => return Err(c.wrong("delete", "stopped (or use --force)")),
    }
    if status == Status::Stopped {
        kill_leftovers(&c)?;
    } else {
        stop_all(&c)?;
    }
    let spec = c.spec().ok();
    if let Some(h) = spec.as_ref().and_then(|s| s.hooks().as_ref()).and_then(|h| h.poststop().as_ref()) {
        crate::hooks::run_warn("poststop", Some(h), &c.state_json(Status::Stopped));
    }
    c.st.cgroup.destroy()?;
    c.st.cgroup.remove_empty_parent(conductor_cgroups::DEFAULT_PARENT);
    c.dir.remove()
}

/// SIGKILL every process of the container and wait for init to be gone.
fn stop_all(c: &Container) -> Result<()> {
    let pidfd = c.init_pidfd().ok();
    c.st.cgroup.kill_all(libc::SIGKILL)?;
    if let Some(fd) = pidfd {
        let _ = conductor_sys::process::pidfd_send_signal(&fd, libc::SIGKILL);
        conductor_sys::process::pidfd_wait_exit(&fd, 10_000).ctx(|| "wait for init".into())?;
    }
    Ok(())
}

/// SIGKILL what init left in the cgroup (children of an init that shared a pid namespace):
/// they would keep the cgroup busy and outlive the container.
fn kill_leftovers(c: &Container) -> Result<()> {
    let cg = &c.st.cgroup;
    if !cg.exists() || cg.pids().map_or(true, |p| p.is_empty()) {
        return Ok(());
    }
    cg.kill_all(libc::SIGKILL)?;
    // They leave the cgroup as they exit; destroy retries briefly after that.
    for _ in 0..200 {
        if cg.pids().map_or(true, |p| p.is_empty()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    Ok(())
}

pub fn list(root: &Path) -> Vec<StateJson> {
    state::list(root).into_iter().map(|(dir, st)| st.to_json(st.status(&dir))).collect()
}

/// Host pids of the container's processes.
pub fn pids(root: &Path, id: &str) -> Result<Vec<i32>> {
    let dir = Dir::open(root, id)?;
    let st = dir.load()?;
    Ok(st.cgroup.pids()?)
}

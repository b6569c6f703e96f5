//! The per-container monitor (the role of conmon / containerd-shim): a process of its own
//! session that is the parent of the container's init, outlives the CLI for detached
//! containers, writes stdout/stderr to the log (and to the CLI's terminal when attached),
//! records the exit code and time, and reaps.

use std::io::BufRead;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use conductor_sys::process::{clone3, CloneArgs, Forked};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};
use crate::logs;
use crate::record::{Dir, State, Status};

pub struct Launch<'a> {
    pub runtime_root: PathBuf,
    pub name: String,
    pub dir: PathBuf,
    /// Give the container a pty (stdin is a terminal).
    pub tty: bool,
    /// Connect the CLI's stdin to the container.
    pub interactive: bool,
    /// The CLI returns once the container runs; nothing is attached.
    pub detach: bool,
    /// The CLI's lock on the name: the monitor must not keep holding it.
    pub lock_fd: RawFd,
    /// Run between create and start with init's pid (the network is attached here, so the
    /// program starts with it in place).
    pub on_created: Option<Box<dyn Fn(i32) -> Result<()> + 'a>>,
}

/// What an attached CLI passes on (Ctrl-C and friends), as `docker run` does.
const FORWARDED: [Signal; 6] =
    [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT, Signal::SIGUSR1, Signal::SIGUSR2];

#[derive(Serialize, Deserialize)]
enum Report {
    Started(i32),
    Failed(String),
}

/// Fork the monitor and return once the container is running (or failed to start).
pub fn spawn(l: &Launch<'_>) -> Result<Pid> {
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx(|| "pipe".into())?;
    match clone3(&CloneArgs::default()).ctx(|| "fork monitor".into())? {
        Forked::Child => {
            drop(rd);
            let code = monitor(l, wr);
            conductor_sys::process::exit_now(code)
        }
        Forked::Parent(pid) => {
            drop(wr);
            // One line: the write end may live on in the container (e.g. under --init).
            let mut buf = String::new();
            std::io::BufReader::new(std::fs::File::from(rd)).read_line(&mut buf).ctx(|| "read monitor report".into())?;
            match serde_json::from_str::<Report>(&buf) {
                Ok(Report::Started(_)) => Ok(pid),
                Ok(Report::Failed(e)) => {
                    let _ = waitpid(pid, None);
                    Err(Error::Invalid(e))
                }
                Err(_) => {
                    let _ = waitpid(pid, None);
                    Err(Error::Invalid("the container monitor died while starting the container".into()))
                }
            }
        }
    }
}

fn report(fd: &OwnedFd, r: &Report) {
    let _ = nix::unistd::write(fd, format!("{}\n", serde_json::to_string(r).expect("serializes")).as_bytes());
}

/// The monitor's life; returns its exit code.
fn monitor(l: &Launch<'_>, report_fd: OwnedFd) -> i32 {
    let _ = nix::unistd::close(l.lock_fd);
    conductor_sys::process::set_name("conductor-mon");
    let _ = nix::unistd::setsid();
    let _ = conductor_sys::process::set_child_subreaper();
    let dir = Dir { path: l.dir.clone() };
    let io = match start(l, &dir) {
        Ok(io) => io,
        Err(e) => {
            let mut st = dir.state().unwrap_or_else(|_| State::creating());
            st.error = Some(e.to_string());
            let _ = dir.save_state(&st);
            report(&report_fd, &Report::Failed(e.to_string()));
            return 1;
        }
    };
    report(&report_fd, &Report::Started(io.pid.as_raw()));
    drop(report_fd);
    // The command that started us is done explaining; we must not hold its stderr.
    crate::explain::finish();
    let mut code = pump(&dir, io);
    record_exit(&dir, &l.name, code);
    // The restart policy: re-create and start in place while it asks for it (restart.rs).
    while let Some(again) = crate::restart::prepare(l, &dir, code) {
        let io = match start(&again.launch, &dir) {
            Ok(io) => io,
            Err(e) => {
                // A failure after the runtime's create (the network hook, start) leaves the new
                // init waiting to start, with its runtime state and cgroup: remove them while
                // the name lock is still held (the veth in its namespace goes with it).
                if let Err(d) = conductor_runtime::delete(&again.launch.runtime_root, &l.name, true) {
                    if !matches!(d, conductor_runtime::Error::NotFound(_)) {
                        tracing::warn!("restart {}: removing the failed start: {d}", l.name);
                    }
                }
                record_start_error(&dir, &e, code);
                return 1;
            }
        };
        drop(again);
        code = pump(&dir, io);
        record_exit(&dir, &l.name, code);
    }
    0
}

/// The container stays exited with the last run's exit code (the restart had cleared it).
fn record_start_error(dir: &Dir, e: &Error, code: i32) {
    if let Ok(mut st) = dir.state() {
        st.status = Status::Exited;
        st.exit_code = Some(code);
        st.finished = Some(now());
        st.error = Some(format!("restart: {e}"));
        let _ = dir.save_state(&st);
    }
}

/// What the monitor holds for a running container.
struct Io {
    pid: Pid,
    /// pty master, or the read ends of the stdout and stderr pipes.
    master: Option<OwnedFd>,
    out: Option<OwnedFd>,
    err: Option<OwnedFd>,
    /// Where attached output goes (the CLI's stdout/stderr) and where input comes from.
    attach_out: Option<OwnedFd>,
    attach_err: Option<OwnedFd>,
    attach_in: Option<OwnedFd>,
}

fn start(l: &Launch<'_>, dir: &Dir) -> Result<Io> {
    let dup = |fd: RawFd| dup_std(fd).ctx(|| "dup".into());
    let (attach_out, attach_err, attach_in) = if l.detach {
        (None, None, None)
    } else {
        (Some(dup(1)?), Some(dup(2)?), if l.interactive { Some(dup(0)?) } else { None })
    };
    let devnull = std::fs::File::options().read(true).write(true).open("/dev/null").ctx(|| "open /dev/null".into())?;
    let mut io = Io { pid: Pid::from_raw(0), master: None, out: None, err: None, attach_out, attach_err, attach_in };
    let mut console = None;
    let mut master_rx = None;
    if l.tty {
        let (a, b) = std::os::unix::net::UnixStream::pair().ctx(|| "socketpair".into())?;
        console = Some(OwnedFd::from(a));
        master_rx = Some(b);
    } else {
        // The container's stdio: pipes we read, stdin from the CLI only with -i.
        let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx(|| "pipe".into())?;
        let (err_r, err_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx(|| "pipe".into())?;
        let stdin_src = io.attach_in.take().unwrap_or_else(|| devnull.try_clone().expect("dup").into());
        conductor_sys::fd::dup_to(stdin_src.as_raw_fd(), 0).ctx(|| "stdin".into())?;
        conductor_sys::fd::dup_to(out_w.as_raw_fd(), 1).ctx(|| "stdout".into())?;
        conductor_sys::fd::dup_to(err_w.as_raw_fd(), 2).ctx(|| "stderr".into())?;
        io.out = Some(out_r);
        io.err = Some(err_r);
    }
    let opts = conductor_runtime::CreateOpts {
        root: l.runtime_root.clone(),
        id: l.name.clone(),
        bundle: l.dir.clone(),
        console_fd: console,
        ..Default::default()
    };
    let created = conductor_runtime::create(opts);
    // From here on the monitor's own stdio must not keep the container's pipes open.
    for fd in 0..3 {
        let _ = conductor_sys::fd::dup_to(devnull.as_raw_fd(), fd);
    }
    let pid = created?;
    io.pid = pid;
    if let Some(f) = &l.on_created {
        f(pid.as_raw())?;
    }
    if let Some(rx) = master_rx {
        io.master = Some(conductor_sys::pty::recv_fd(&rx).ctx(|| "receive pty master".into())?.0);
    }
    conductor_runtime::start(&l.runtime_root, &l.name)?;
    let mut st = dir.state()?;
    st.status = Status::Running;
    st.pid = pid.as_raw();
    st.pid_start = conductor_sys::process::stat(pid).map(|s| s.start_time).unwrap_or(0);
    st.monitor_pid = std::process::id() as i32;
    st.monitor_start = conductor_sys::process::stat(Pid::this()).map(|s| s.start_time).unwrap_or(0);
    st.started = Some(now());
    dir.save_state(&st)?;
    Ok(io)
}

/// A copy of one of our standard descriptors.
fn dup_std(fd: RawFd) -> nix::Result<OwnedFd> {
    match fd {
        0 => nix::unistd::dup(std::io::stdin()),
        1 => nix::unistd::dup(std::io::stdout()),
        _ => nix::unistd::dup(std::io::stderr()),
    }
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Copy output to the log (and the attached terminal) until init exits; its exit code.
fn pump(dir: &Dir, mut io: Io) -> i32 {
    let mut log = logs::Writer::open(&dir.log(), logs::MAX_SIZE).ok();
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    // Signals sent to the monitor (by an attached CLI) go on to the container.
    for sig in FORWARDED {
        mask.add(sig);
    }
    let _ = mask.thread_block();
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).ok();
    let mut buf = vec![0u8; 16 * 1024];
    let mut exit: Option<i32> = None;
    loop {
        if exit.is_none() {
            exit = reap(io.pid);
        }
        // Sources: 0 stdout/master, 1 stderr, 2 attached stdin, 3 signalfd.
        let sources: [Option<&OwnedFd>; 3] = [
            io.master.as_ref().or(io.out.as_ref()),
            io.err.as_ref(),
            if io.master.is_some() { io.attach_in.as_ref() } else { None },
        ];
        if sources[0].is_none() && sources[1].is_none() {
            break;
        }
        if exit.is_some() && !any_readable(&sources[..2]) {
            break;
        }
        let mut fds: Vec<PollFd> = Vec::new();
        let mut which = Vec::new();
        for (i, s) in sources.iter().enumerate() {
            if let Some(fd) = s {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                which.push(i);
            }
        }
        if let Some(s) = &sfd {
            fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
            which.push(3);
        }
        let timeout = if exit.is_some() { PollTimeout::ZERO } else { PollTimeout::from(1000u16) };
        match poll(&mut fds, timeout) {
            Ok(0) if exit.is_some() => break,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
        let ready: Vec<(usize, bool)> =
            fds.iter().zip(&which).map(|(f, w)| (*w, f.revents().is_some_and(|r| !r.is_empty()))).collect();
        for (w, is_ready) in ready {
            if !is_ready {
                continue;
            }
            match w {
                3 => {
                    if let Some(s) = &sfd {
                        while let Ok(Some(si)) = s.read_signal() {
                            match Signal::try_from(si.ssi_signo as i32) {
                                Ok(Signal::SIGCHLD) | Err(_) => {}
                                Ok(sig) => {
                                    let _ = nix::sys::signal::kill(io.pid, sig);
                                }
                            }
                        }
                    }
                }
                2 => {
                    let closed = forward_input(&io, &mut buf);
                    if closed {
                        io.attach_in = None;
                    }
                }
                stream => {
                    let fd = if stream == 0 { io.master.as_ref().or(io.out.as_ref()) } else { io.err.as_ref() };
                    let n = fd.map(|fd| nix::unistd::read(fd, &mut buf).unwrap_or(0)).unwrap_or(0);
                    if n == 0 {
                        match stream {
                            0 if io.master.is_some() => io.master = None,
                            0 => io.out = None,
                            _ => io.err = None,
                        }
                        continue;
                    }
                    if let Some(l) = log.as_mut() {
                        let _ = l.write(stream, &buf[..n]);
                    }
                    let target = if stream == 0 { io.attach_out.as_ref() } else { io.attach_err.as_ref() };
                    if let Some(t) = target {
                        write_all(t, &buf[..n]);
                    }
                }
            }
        }
    }
    if let Some(l) = log.as_mut() {
        let _ = l.flush();
    }
    exit.unwrap_or_else(|| wait_exit(io.pid))
}

fn any_readable(fds: &[Option<&OwnedFd>]) -> bool {
    let mut p: Vec<PollFd> = fds.iter().flatten().map(|fd| PollFd::new(fd.as_fd(), PollFlags::POLLIN)).collect();
    poll(&mut p, PollTimeout::ZERO).is_ok_and(|n| n > 0)
}

/// Attached stdin -> pty master. True when stdin reached EOF.
fn forward_input(io: &Io, buf: &mut [u8]) -> bool {
    let (Some(inp), Some(m)) = (io.attach_in.as_ref(), io.master.as_ref()) else { return true };
    match nix::unistd::read(inp, buf) {
        Ok(n) if n > 0 => {
            write_all(m, &buf[..n]);
            false
        }
        _ => true,
    }
}

fn write_all(fd: &OwnedFd, mut data: &[u8]) {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => continue,
            Err(_) => return,
        }
    }
}

/// Reap any exited child (we are a subreaper); init's exit code once it is gone.
fn reap(init: Pid) -> Option<i32> {
    let mut code = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(nix::sys::wait::WaitStatus::StillAlive) | Err(_) => return code,
            Ok(ws) => {
                if ws.pid() == Some(init) {
                    code = conductor_runtime::wait::exit_code(ws);
                }
            }
        }
    }
}

fn wait_exit(init: Pid) -> i32 {
    loop {
        match waitpid(init, None) {
            Ok(ws) => {
                if let Some(c) = conductor_runtime::wait::exit_code(ws) {
                    return c;
                }
            }
            Err(_) => return 255,
        }
    }
}

fn record_exit(dir: &Dir, name: &str, code: i32) {
    let Ok(mut st) = dir.state() else { return };
    st.status = Status::Exited;
    st.exit_code = Some(code);
    st.finished = Some(now());
    let cgroup = conductor_cgroups::Cgroup::new(Some(&crate::spec::cgroup_path(name)), name);
    st.oom_killed = cgroup.and_then(|c| c.oom_kill_count()).is_ok_and(|n| n > 0);
    let _ = dir.save_state(&st);
}

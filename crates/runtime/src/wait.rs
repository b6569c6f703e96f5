//! Waiting for a container process in the foreground (`run`, `exec` without --detach):
//! signals to the runtime are forwarded to it, and a terminal is proxied when it has one.

use std::os::fd::{AsFd, OwnedFd};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::{Context, Result};

const FORWARDED: [Signal; 7] =
    [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT, Signal::SIGUSR1, Signal::SIGUSR2, Signal::SIGWINCH];

/// The shell-style exit code of a wait status.
pub fn exit_code(ws: WaitStatus) -> Option<i32> {
    match ws {
        WaitStatus::Exited(_, c) => Some(c),
        WaitStatus::Signaled(_, s, _) => Some(128 + s as i32),
        _ => None,
    }
}

/// Wait for our child `pid`, forwarding signals and proxying `tty` (a pty master) to our stdio.
pub fn foreground(pid: Pid, tty: Option<OwnedFd>) -> Result<i32> {
    let mut mask = SigSet::empty();
    for s in FORWARDED {
        mask.add(s);
    }
    mask.add(Signal::SIGCHLD);
    mask.thread_block().ctx(|| "block signals".into())?;
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC).ctx(|| "signalfd".into())?;
    let stdin = std::io::stdin();
    let raw_mode = tty.as_ref().and_then(|m| {
        conductor_sys::pty::copy_size(&stdin, m);
        conductor_sys::pty::make_raw(&stdin).ok()
    });
    let res = event_loop(pid, &sfd, tty.as_ref());
    if let Some(old) = raw_mode {
        let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &old);
    }
    let _ = mask.thread_unblock();
    res
}

fn event_loop(pid: Pid, sfd: &SignalFd, tty: Option<&OwnedFd>) -> Result<i32> {
    let stdin = std::io::stdin();
    let mut stdin_open = tty.is_some();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(code) = reap(pid)? {
            if let Some(m) = tty {
                drain(m, &mut buf);
            }
            return Ok(code);
        }
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if let Some(m) = tty {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
            if stdin_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => r.ctx(|| "poll".into())?,
        };
        let ready: Vec<bool> = fds.iter().map(|f| f.revents().is_some_and(|r| !r.is_empty())).collect();
        if ready[0] {
            if let Ok(Some(si)) = sfd.read_signal() {
                forward(pid, si.ssi_signo as i32, tty);
            }
        }
        if let Some(m) = tty {
            if ready[1] {
                match nix::unistd::read(m, &mut buf) {
                    Ok(n) if n > 0 => write_all(std::io::stdout(), &buf[..n]),
                    _ => {}
                }
            }
            if stdin_open && ready.get(2) == Some(&true) {
                match nix::unistd::read(&stdin, &mut buf) {
                    Ok(n) if n > 0 => write_all(m, &buf[..n]),
                    _ => stdin_open = false,
                }
            }
        }
    }
}

fn forward(pid: Pid, signo: i32, tty: Option<&OwnedFd>) {
    match Signal::try_from(signo) {
        Ok(Signal::SIGCHLD) => {}
        Ok(Signal::SIGWINCH) => {
            if let Some(m) = tty {
                conductor_sys::pty::copy_size(&std::io::stdin(), m);
            }
        }
        Ok(s) => {
            let _ = nix::sys::signal::kill(pid, s);
        }
        Err(_) => {}
    }
}

fn reap(pid: Pid) -> Result<Option<i32>> {
    match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
        Ok(ws) => Ok(exit_code(ws)),
        Err(nix::errno::Errno::ECHILD) => Ok(Some(255)),
        Err(e) => Err(e).ctx(|| "waitpid".into()),
    }
}

/// Copy what is left in the pty after the process exited.
fn drain(m: &OwnedFd, buf: &mut [u8]) {
    let _ = nix::fcntl::fcntl(m, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK));
    while let Ok(n) = nix::unistd::read(m, buf) {
        if n == 0 {
            break;
        }
        write_all(std::io::stdout(), &buf[..n]);
    }
}

fn write_all(fd: impl AsFd, mut data: &[u8]) {
    while !data.is_empty() {
        match nix::unistd::write(&fd, data) {
            Ok(n) => data = &data[n..],
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => continue,
            Err(_) => return,
        }
    }
}

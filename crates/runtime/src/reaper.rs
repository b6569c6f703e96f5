//! A minimal init kept as pid 1 of the container (the engine's `--init`, like tini but built
//! in): it forks the program, forwards every signal it receives to it, reaps orphans, and exits
//! with the program's status. Programs that ignore SIGTERM as pid 1 then stop promptly.

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use conductor_sys::process::Forked;

/// The annotation that asks for it.
pub const ANNOTATION: &str = "io.conductor.init";

/// Fork: the child returns (and goes on to execve), the parent never returns.
pub fn fork_and_reap() -> nix::Result<()> {
    let forwarded = conductor_sys::signal::forwardable();
    let mut mask = SigSet::empty();
    for s in &forwarded {
        mask.add(*s);
    }
    mask.add(Signal::SIGCHLD);
    // Blocked before the fork so no signal is lost; the child unblocks before execve.
    mask.thread_block()?;
    // fork, not clone3: the container's seccomp profile may refuse clone3 (Docker's does).
    match conductor_sys::process::fork()? {
        // The child's mask and dispositions are reset before its execve.
        Forked::Child => Ok(()),
        Forked::Parent(child) => {
            conductor_sys::process::set_name("conductor-init");
            // Never exec'd, so close-on-exec means nothing here: drop every fd but stdio (the
            // runtime's channel, the engine's report pipe), so their readers see EOF.
            let _ = conductor_sys::fd::close_from(3);
            let _ = conductor_sys::signal::catch(&forwarded);
            let code = reap_loop(child, &mask);
            conductor_sys::process::exit_now(code)
        }
    }
}

fn reap_loop(child: Pid, mask: &SigSet) -> i32 {
    let Ok(sfd) = SignalFd::with_flags(mask, SfdFlags::SFD_CLOEXEC) else { return 255 };
    loop {
        let Ok(Some(si)) = sfd.read_signal() else { continue };
        let Ok(sig) = Signal::try_from(si.ssi_signo as i32) else { continue };
        if sig != Signal::SIGCHLD {
            let _ = nix::sys::signal::kill(child, sig);
            continue;
        }
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(ws) if ws.pid() == Some(child) => return crate::wait::exit_code(ws).unwrap_or(255),
                Ok(_) => {}
            }
        }
    }
}

//! File descriptor hygiene: nothing but stdio and explicitly preserved fds may reach a container
//! process (a leaked directory fd is a way out of the container, CVE-2024-21626).

use std::os::fd::RawFd;

use nix::errno::Errno;

/// Mark every fd >= `first` close-on-exec, so they vanish at execve while still usable until then.
pub fn cloexec_from(first: RawFd) -> nix::Result<()> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only changes flags.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, first as u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) };
    Errno::result(rc).map(drop)
}

/// Close every fd >= `first` now.
pub fn close_from(first: RawFd) -> nix::Result<()> {
    // SAFETY: closing fds the caller declares unused.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, first as u32, u32::MAX, 0) };
    Errno::result(rc).map(drop)
}

/// Clear FD_CLOEXEC on `fd` (preserved fds must survive execve).
pub fn clear_cloexec(fd: RawFd) -> nix::Result<()> {
    // SAFETY: fcntl flag change on an fd number.
    let flags = Errno::result(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    Errno::result(unsafe { libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) }).map(drop)
}

/// dup2(2) that tolerates `from == to` by clearing close-on-exec instead.
pub fn dup_to(from: RawFd, to: RawFd) -> nix::Result<()> {
    if from == to {
        return clear_cloexec(to);
    }
    // SAFETY: dup2 on fd numbers; the target is replaced atomically.
    Errno::result(unsafe { libc::dup2(from, to) }).map(drop)
}

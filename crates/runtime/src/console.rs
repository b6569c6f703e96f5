//! process.terminal: a pty made inside the container, its master sent over the console socket
//! (the OCI protocol podman's conmon and containerd's shim speak), its slave as stdio.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use conductor_sys::pty;

use crate::error::{Context, Result};

/// In the container (after pivot_root): new pty, master to `sock`, slave becomes the
/// controlling terminal and fds 0-2.
pub fn attach(sock: &OwnedFd, size: Option<(u16, u16)>) -> Result<()> {
    let master = pty::open_master(Path::new("/dev/ptmx")).ctx(|| "open /dev/ptmx".into())?;
    let slave = pty::open_peer(&master).ctx(|| "open pty peer".into())?;
    if let Some((rows, cols)) = size.filter(|(r, c)| *r > 0 && *c > 0) {
        pty::set_size(&slave, rows, cols).ctx(|| "process.consoleSize".into())?;
    }
    pty::send_fd(sock, master.as_raw_fd(), b"/dev/ptmx").ctx(|| "send pty master to console socket".into())?;
    drop(master);
    pty::make_controlling(slave.as_raw_fd()).ctx(|| "set controlling terminal".into())?;
    for fd in 0..3 {
        conductor_sys::fd::dup_to(slave.as_raw_fd(), fd).ctx(|| "pty as stdio".into())?;
    }
    Ok(())
}

/// Bind the terminal (now fd 0) over /dev/console, as runc does for a container's init: programs
/// that write to the console reach the same pty.
pub fn mount_console() -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let console = Path::new("/dev/console");
    // O_NOCTTY: an existing console device must not become our controlling terminal.
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true).truncate(false).write(true).mode(0o666).custom_flags(libc::O_NOCTTY);
    opts.open(console).ctx(|| "create /dev/console".into())?;
    conductor_sys::mount::mount(Some("/proc/self/fd/0"), console, None, nix::mount::MsFlags::MS_BIND, None, console)
        .ctx(|| "bind the terminal over /dev/console".into())
}

/// Connect to a console socket path given by the caller (--console-socket).
pub fn connect(path: &Path) -> Result<OwnedFd> {
    let s = std::os::unix::net::UnixStream::connect(path).ctx(|| format!("console socket {}", path.display()))?;
    Ok(s.into())
}

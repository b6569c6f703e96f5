//! Pseudo-terminals and passing fds over unix sockets (the OCI console socket protocol).

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use nix::sys::stat::Mode;

/// Open a new pty master at `ptmx` (e.g. "/dev/ptmx" in the container) and unlock it.
pub fn open_master(ptmx: &Path) -> nix::Result<OwnedFd> {
    let master = nix::fcntl::open(ptmx, OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC, Mode::empty())?;
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK takes a pointer to an int.
    Errno::result(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) })?;
    Ok(master)
}

/// Open the slave side of `master` without a path lookup (TIOCGPTPEER), so a container cannot
/// substitute another file.
pub fn open_peer(master: &impl AsFd) -> nix::Result<OwnedFd> {
    // SAFETY: TIOCGPTPEER returns a new fd for the peer.
    let fd = Errno::result(unsafe { libc::ioctl(master.as_fd().as_raw_fd(), libc::TIOCGPTPEER, libc::O_RDWR | libc::O_NOCTTY) })?;
    // SAFETY: a new fd from the kernel.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Make `tty` the controlling terminal of a new session led by the caller.
pub fn make_controlling(tty: RawFd) -> nix::Result<()> {
    nix::unistd::setsid()?;
    // SAFETY: TIOCSCTTY with arg 0.
    Errno::result(unsafe { libc::ioctl(tty, libc::TIOCSCTTY, 0) }).map(drop)
}

/// Set a terminal's window size.
pub fn set_size(tty: &impl AsFd, rows: u16, cols: u16) -> nix::Result<()> {
    let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ takes a pointer to a winsize.
    Errno::result(unsafe { libc::ioctl(tty.as_fd().as_raw_fd(), libc::TIOCSWINSZ, &ws) }).map(drop)
}

/// Copy the window size of one terminal to another (ignored when `from` is not a terminal).
pub fn copy_size(from: &impl AsFd, to: &impl AsFd) {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ fills a winsize.
    if unsafe { libc::ioctl(from.as_fd().as_raw_fd(), libc::TIOCGWINSZ, &mut ws) } == 0 {
        let _ = set_size(to, ws.ws_row, ws.ws_col);
    }
}

/// Send `fd` with `data` over a connected unix socket (SCM_RIGHTS).
pub fn send_fd(sock: &impl AsFd, fd: RawFd, data: &[u8]) -> nix::Result<()> {
    let fds = [fd];
    let iov = [IoSlice::new(data)];
    sendmsg::<()>(sock.as_fd().as_raw_fd(), &iov, &[ControlMessage::ScmRights(&fds)], MsgFlags::empty(), None)?;
    Ok(())
}

/// Receive one fd (and its data) sent by [`send_fd`].
pub fn recv_fd(sock: &impl AsFd) -> nix::Result<(OwnedFd, Vec<u8>)> {
    let mut buf = vec![0u8; 4096];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let (n, fd) = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(sock.as_fd().as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC)?;
        let fd = msg.cmsgs()?.find_map(|c| match c {
            ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
            _ => None,
        });
        (msg.bytes, fd)
    };
    buf.truncate(n);
    let fd = fd.ok_or(Errno::EBADMSG)?;
    // SAFETY: the fd arrived with the message and is ours now.
    Ok((unsafe { OwnedFd::from_raw_fd(fd) }, buf))
}

/// Put a terminal in raw mode, returning the old settings to restore.
pub fn make_raw(tty: &impl AsFd) -> nix::Result<nix::sys::termios::Termios> {
    use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
    let old = tcgetattr(tty)?;
    let mut raw = old.clone();
    cfmakeraw(&mut raw);
    tcsetattr(tty, SetArg::TCSANOW, &raw)?;
    Ok(old)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

    #[test]
    fn fd_passing_round_trip() {
        let (a, b) = socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC).unwrap();
        let f = std::fs::File::open("/proc/self/stat").unwrap();
        send_fd(&a, f.as_raw_fd(), b"hello").unwrap();
        let (fd, data) = recv_fd(&b).unwrap();
        assert_eq!(data, b"hello");
        let st = nix::sys::stat::fstat(&fd).unwrap();
        assert_eq!(st.st_ino, nix::sys::stat::fstat(&f).unwrap().st_ino);
    }

    #[test]
    fn pty_pair() {
        let m = open_master(Path::new("/dev/ptmx")).unwrap();
        let s = open_peer(&m).unwrap();
        set_size(&s, 30, 100).unwrap();
        nix::unistd::write(&s, b"x").unwrap();
        let mut b = [0u8; 1];
        nix::unistd::read(&m, &mut b).unwrap();
        assert_eq!(&b, b"x");
    }
}

//! The create-time conversation between the runtime and the container's init, over a
//! SOCK_SEQPACKET socketpair (message boundaries kept, EOF when the peer dies).

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub enum Msg {
    /// runtime -> init: uid/gid maps are written and the cgroup is joined; go on. Carries the
    /// state JSON that hooks run by init receive.
    Go(String),
    /// runtime -> init: init is in its cgroup (sent while init prepares its mounts).
    CgroupJoined,
    /// intermediate -> runtime: the pid of init (when namespaces had to be joined first).
    Pid(i32),
    /// init -> runtime: mounts are done; run prestart and createRuntime hooks now.
    CreateRuntimeHooks,
    /// runtime -> init: hooks done.
    HooksDone,
    /// init -> runtime: set up and waiting for start.
    Ready,
    /// either way: something failed; the text is the whole error.
    Error(String),
}

pub struct Channel(pub OwnedFd);

pub fn pair() -> nix::Result<(Channel, Channel)> {
    let (a, b) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)?;
    Ok((Channel(a), Channel(b)))
}

impl Channel {
    pub fn send(&self, m: &Msg) -> nix::Result<()> {
        let buf = serde_json::to_vec(m).expect("message serializes");
        nix::sys::socket::send(self.0.as_raw_fd(), &buf, nix::sys::socket::MsgFlags::MSG_NOSIGNAL)?;
        Ok(())
    }

    /// A message if one arrives within `ms` (e.g. the reason the peer died).
    pub fn try_recv(&self, ms: u16) -> Option<Msg> {
        use std::os::fd::AsFd;
        let mut fds = [nix::poll::PollFd::new(self.0.as_fd(), nix::poll::PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)) {
            Ok(n) if n > 0 => self.recv().ok().flatten(),
            _ => None,
        }
    }

    /// The next message; `None` when the peer closed its end (exited).
    pub fn recv(&self) -> nix::Result<Option<Msg>> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match nix::sys::socket::recv(self.0.as_raw_fd(), &mut buf, nix::sys::socket::MsgFlags::empty()) {
                Ok(0) => return Ok(None),
                Ok(n) => return Ok(serde_json::from_slice(&buf[..n]).ok()),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

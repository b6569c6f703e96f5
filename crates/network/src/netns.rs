//! Network namespaces as handles, and running code inside one without moving the caller.
//!
//! A [`Netns`] is either an nsfs file (`/proc/PID/ns/net`, a bind mount under `/run/netns`) or a
//! pidfd of a process inside the namespace; both work with setns(2). Netlink's
//! `IFLA_NET_NS_FD` takes only the former, so [`Netns::ns_file`] turns a pidfd into one.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::sched::CloneFlags;
use nix::unistd::Pid;

use crate::error::{Context, Error, Result};

/// A handle on a network namespace. The namespace lives at least as long as the handle.
#[derive(Debug)]
pub struct Netns {
    fd: OwnedFd,
    pidfd: bool,
    label: String,
}

impl Netns {
    /// Open an nsfs file: `/proc/PID/ns/net`, `/proc/thread-self/ns/net`, `/run/netns/NAME`.
    pub fn open(path: impl AsRef<Path>) -> Result<Netns> {
        let path = path.as_ref();
        let f = File::open(path).ctx(|| format!("open network namespace {}", path.display()))?;
        Ok(Netns { fd: f.into(), pidfd: false, label: path.display().to_string() })
    }

    /// The network namespace of process `pid`, held through a pidfd: a pid reused later cannot
    /// redirect us to another process's namespace.
    pub fn of_pid(pid: i32) -> Result<Netns> {
        let fd = conductor_sys::process::pidfd_open(Pid::from_raw(pid)).ctx(|| format!("pidfd_open({pid})"))?;
        Ok(Netns { fd, pidfd: true, label: format!("pid {pid}") })
    }

    /// Wrap an already open nsfs file descriptor.
    pub fn from_ns_fd(fd: OwnedFd) -> Netns {
        Netns { fd, pidfd: false, label: "netns fd".into() }
    }

    /// Wrap a pidfd of a process that lives in the namespace.
    pub fn from_pidfd(fd: OwnedFd) -> Netns {
        Netns { fd, pidfd: true, label: "pidfd".into() }
    }

    /// The calling thread's network namespace.
    pub fn current() -> Result<Netns> {
        Netns::open("/proc/thread-self/ns/net")
    }

    /// A new, empty network namespace (only a `lo`, down). It is made by a throwaway thread that
    /// unshares and opens its own `/proc/thread-self/ns/net`, so the caller stays where it is; it
    /// disappears, with every link in it, when the last handle is dropped.
    pub fn create() -> Result<Netns> {
        let mut ns = on_thread("netns-create", || {
            conductor_sys::ns::unshare(CloneFlags::CLONE_NEWNET).ctx(|| "unshare(CLONE_NEWNET)".into())?;
            Netns::current()
        })?;
        ns.label = format!("new netns {}", ns.inode().unwrap_or(0));
        Ok(ns)
    }

    /// Whether this handle is a pidfd (not accepted by `IFLA_NET_NS_FD`).
    pub fn is_pidfd(&self) -> bool {
        self.pidfd
    }

    /// How the namespace was named, for messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// An nsfs file descriptor for this namespace (a duplicate, or for a pidfd the namespace
    /// file opened from a thread that joined it).
    pub fn ns_file(&self) -> Result<OwnedFd> {
        if !self.pidfd {
            return self.fd.try_clone().ctx(|| format!("dup the handle of {}", self.label));
        }
        in_netns(self, || Ok(Netns::current()?.fd))
    }

    /// The namespace's inode number: two handles name the same namespace iff these are equal.
    pub fn inode(&self) -> Result<u64> {
        let f = self.ns_file()?;
        let st = nix::sys::stat::fstat(&f).ctx(|| format!("fstat {}", self.label))?;
        Ok(st.st_ino)
    }
}

impl AsFd for Netns {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Run `f` inside the network namespace `ns`, on a dedicated thread that joins it with
/// setns(CLONE_NEWNET) and ends with `f`: the calling thread's namespace never changes. Sockets
/// (netlink or not) opened by `f` belong to `ns` for their whole life, even once returned.
/// Processes spawned by `f` start in `ns`. A panic in `f` is resumed in the caller.
pub fn in_netns<T, F>(ns: &Netns, f: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send,
    T: Send,
{
    on_thread("netns", || {
        conductor_sys::ns::join(ns.as_fd(), CloneFlags::CLONE_NEWNET, "net")
            .map_err(|err| Error::Sys { what: format!("setns into {}", ns.label), err })?;
        f()
    })
}

/// Run `f` on a new thread and wait for it. The thread reports its trace events (`--explain`)
/// to the caller's subscriber; a panic is resumed here.
fn on_thread<T: Send>(name: &str, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    let dispatch = tracing::dispatcher::get_default(|d| d.clone());
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name(name.into())
            .spawn_scoped(s, || tracing::dispatcher::with_default(&dispatch, f))
            .ctx(|| format!("spawn a thread ({name})"))?
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

//! Namespaces: the clone flag of each kind, joining (setns) and leaving (unshare).

use std::os::fd::AsFd;

use nix::sched::CloneFlags;

use crate::EXPLAIN;

/// A namespace kind, named as in /proc/PID/ns and the OCI spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Pid,
    Net,
    Mount,
    Ipc,
    Uts,
    User,
    Cgroup,
    Time,
}

impl Kind {
    /// Joining order: user first (it grants the rights to join the rest), mount last (it changes
    /// what /proc paths mean).
    pub const JOIN_ORDER: [Kind; 8] =
        [Kind::User, Kind::Ipc, Kind::Uts, Kind::Net, Kind::Pid, Kind::Cgroup, Kind::Time, Kind::Mount];

    pub fn flag(self) -> CloneFlags {
        match self {
            Kind::Pid => CloneFlags::CLONE_NEWPID,
            Kind::Net => CloneFlags::CLONE_NEWNET,
            Kind::Mount => CloneFlags::CLONE_NEWNS,
            Kind::Ipc => CloneFlags::CLONE_NEWIPC,
            Kind::Uts => CloneFlags::CLONE_NEWUTS,
            Kind::User => CloneFlags::CLONE_NEWUSER,
            Kind::Cgroup => CloneFlags::CLONE_NEWCGROUP,
            // CLONE_NEWTIME shares its value with CSIGNAL bits in clone(2) but not in unshare/setns.
            Kind::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
        }
    }

    /// The file name under /proc/PID/ns.
    pub fn proc_name(self) -> &'static str {
        match self {
            Kind::Pid => "pid",
            Kind::Net => "net",
            Kind::Mount => "mnt",
            Kind::Ipc => "ipc",
            Kind::Uts => "uts",
            Kind::User => "user",
            Kind::Cgroup => "cgroup",
            Kind::Time => "time",
        }
    }
}

/// setns(2) into the namespace `fd` refers to (a /proc/PID/ns file or a pidfd with several flags).
pub fn join(fd: impl AsFd, flags: CloneFlags, what: &str) -> nix::Result<()> {
    tracing::debug!(target: EXPLAIN, step = "setns", target_ns = what, flags = ?flags);
    nix::sched::setns(fd, flags)
}

/// unshare(2): move the calling process into new namespaces.
pub fn unshare(flags: CloneFlags) -> nix::Result<()> {
    tracing::debug!(target: EXPLAIN, step = "unshare", flags = ?flags);
    nix::sched::unshare(flags)
}

/// sethostname(2) in the current UTS namespace.
pub fn set_hostname(name: &str) -> nix::Result<()> {
    tracing::debug!(target: EXPLAIN, step = "sethostname", name);
    nix::unistd::sethostname(name)
}

/// setdomainname(2) in the current UTS namespace.
pub fn set_domainname(name: &str) -> nix::Result<()> {
    tracing::debug!(target: EXPLAIN, step = "setdomainname", name);
    // SAFETY: pointer and length describe a live byte slice.
    let rc = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    nix::errno::Errno::result(rc).map(drop)
}

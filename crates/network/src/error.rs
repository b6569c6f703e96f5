//! The network layer's error type: one line each, naming the link, address or file involved.

use nix::errno::Errno;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kernel refused a netlink request. `detail` is the kernel's extended-ack message, when
    /// it sent one (e.g. "Invalid prefix for given prefix length").
    #[error("{what}: {errno}{}", detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Netlink { what: String, errno: Errno, detail: Option<String> },
    #[error("{what}: cannot decode the kernel's reply: {reason}")]
    Decode { what: String, reason: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("address pool {pool} has no free /{prefix} subnet left")]
    PoolExhausted { pool: String, prefix: u8 },
    #[error("{path}: {reason}")]
    State { path: String, reason: String },
    #[error("{0}")]
    Invalid(String),
    // The cause is part of the message, not a `source`: printed once, on one line.
    #[error("{what}: {err}")]
    Io { what: String, err: std::io::Error },
    #[error("{what}: {err}")]
    Sys { what: String, err: Errno },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The errno behind a kernel or syscall failure, if that is what this is.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Netlink { errno, .. } | Error::Sys { err: errno, .. } => Some(*errno),
            Error::Io { err, .. } => err.raw_os_error().map(Errno::from_raw),
            _ => None,
        }
    }
}

/// Attach a description of the step to a low-level error.
pub trait Context<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|err| Error::Io { what: what(), err })
    }
}

impl<T> Context<T> for std::result::Result<T, Errno> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|err| Error::Sys { what: what(), err })
    }
}

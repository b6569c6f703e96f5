//! One error type for the crate. Every message is a single line that names what failed: the
//! config field for rejected input, the file for kernel refusals.

use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input rejected before anything was written, e.g.
    /// `linux.resources.cpu.quota: must be > 0 or -1, got 0`.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },

    /// A filesystem operation on a cgroup file or directory failed.
    #[error("{op} {}: {err}", path.display())]
    Io { op: String, path: PathBuf, err: io::Error },

    /// A kernel file (mountinfo, /proc/self/cgroup, a stat file) did not parse.
    #[error("parse {what}: {reason}")]
    Parse { what: String, reason: String },

    /// The host cannot do what was asked (no cgroup mounted, controller missing, BPF refused).
    #[error("{0}")]
    Unsupported(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Invalid { field: field.into(), reason: reason.into() }
    }

    pub(crate) fn io(op: impl Into<String>, path: &Path, err: io::Error) -> Self {
        Error::Io { op: op.into(), path: path.to_path_buf(), err }
    }

    pub(crate) fn parse(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Parse { what: what.into(), reason: reason.into() }
    }

    /// The errno behind an I/O failure, so callers can tell EBUSY or ENOENT apart.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Io { err, .. } => err.raw_os_error(),
            _ => None,
        }
    }

    /// The config field an `Invalid` error is about.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

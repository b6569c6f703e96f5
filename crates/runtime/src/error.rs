//! The runtime's error type: one line each, naming the container, field or step that failed.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid container id {0:?}: {1}")]
    InvalidId(String, &'static str),
    #[error("container {0:?} already exists")]
    Exists(String),
    #[error("container {0:?} does not exist")]
    NotFound(String),
    #[error("container {id:?} is {status}: cannot {op} (needs {needs})")]
    WrongState { id: String, status: String, op: &'static str, needs: &'static str },
    #[error("{path}: {msg}")]
    Config { path: PathBuf, msg: String },
    #[error("{0}")]
    Invalid(String),
    // The cause is part of the message, not a `source`: printed once, on one line.
    #[error("{what}: {err}")]
    Io { what: String, err: std::io::Error },
    #[error("{what}: {err}")]
    Sys { what: String, err: nix::Error },
    // Not `#[from]`: that would also make it the `source`, and `{:#}` would print it twice.
    #[error("cgroup: {0}")]
    Cgroup(conductor_cgroups::Error),
    #[error("container init: {0}")]
    Init(String),
    #[error("exec: {0}")]
    Exec(String),
    #[error("hook {kind} {path}: {msg}")]
    Hook { kind: &'static str, path: String, msg: String },
}

pub type Result<T> = std::result::Result<T, Error>;

impl From<conductor_cgroups::Error> for Error {
    fn from(e: conductor_cgroups::Error) -> Self {
        Error::Cgroup(e)
    }
}

impl Error {
    /// The text a container process sends back to the runtime, which adds its own prefix.
    pub fn report(&self) -> String {
        match self {
            Error::Init(m) | Error::Exec(m) => m.clone(),
            e => e.to_string(),
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

impl<T> Context<T> for std::result::Result<T, nix::Error> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|err| Error::Sys { what: what(), err })
    }
}

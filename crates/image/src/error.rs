//! The image layer's error type: one line each, naming the image, tarball or path involved.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid image name {name:?}: {reason}")]
    InvalidName { name: String, reason: String },
    #[error("image {0:?} already exists (remove it first, or replace it)")]
    Exists(String),
    #[error("no such image: {0}")]
    NotFound(String),
    #[error("image {name:?}: {path}: {reason}")]
    Corrupt { name: String, path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    Archive { path: PathBuf, reason: String },
    #[error("debootstrap {status}: {detail}")]
    Debootstrap { status: String, detail: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("{what}: {source}")]
    Sys { what: String, source: nix::Error },
}

pub type Result<T> = std::result::Result<T, Error>;

/// Attach a description of the step to a low-level error.
pub trait Context<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io { what: what(), source })
    }
}

impl<T> Context<T> for std::result::Result<T, nix::Error> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Sys { what: what(), source })
    }
}

//! Engine errors: one line each, naming the container, image or option.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Invalid(String),
    #[error("no such container: {0}")]
    NoContainer(String),
    #[error("container name {0:?} is already in use (stop it first)")]
    NameInUse(String),
    #[error(transparent)]
    Runtime(#[from] conductor_runtime::Error),
    #[error(transparent)]
    Image(#[from] conductor_image::Error),
    #[error(transparent)]
    Cgroup(#[from] conductor_cgroups::Error),
    // The cause is part of the message, not a `source`: printed once, on one line.
    #[error("{what}: {err}")]
    Io { what: String, err: std::io::Error },
    #[error("{what}: {err}")]
    Sys { what: String, err: nix::Error },
}

pub type Result<T> = std::result::Result<T, Error>;

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

//! Stack errors: one line each; a bad stack file names its line.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A problem in the stack file, at a line.
    #[error("{file}:{line}: {msg}")]
    File { file: String, line: usize, msg: String },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Engine(#[from] conductor_engine::Error),
    #[error(transparent)]
    Image(#[from] conductor_image::Error),
    #[error("{what}: {err}")]
    Io { what: String, err: std::io::Error },
}

pub type Result<T> = std::result::Result<T, Error>;

//! The only place that touches cgroupfs. Every change (a file written, a directory made or
//! removed) emits a `conductor::explain` debug event with `path` and `value`, which the engine
//! renders for `--explain`.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use crate::error::{Error, Result};

pub(crate) const EXPLAIN: &str = "conductor::explain";

/// Write `value` to an existing cgroup file in one write(2): cgroupfs parses each write call on
/// its own, so a split write would be two (wrong) commands. Never creates the file.
pub(crate) fn write(path: &Path, value: &str) -> Result<()> {
    tracing::debug!(target: EXPLAIN, step = "write", path = %path.display(), value);
    let mut file = OpenOptions::new().write(true).open(path).map_err(|e| Error::io(format!("write {value:?} to"), path, e))?;
    let n = file.write(value.as_bytes()).map_err(|e| Error::io(format!("write {value:?} to"), path, e))?;
    if n != value.len() {
        let err = io::Error::new(io::ErrorKind::WriteZero, format!("short write ({n} of {})", value.len()));
        return Err(Error::io(format!("write {value:?} to"), path, err));
    }
    Ok(())
}

pub(crate) fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| Error::io("read", path, e))
}

/// The file's content without the trailing newline; for single-value files.
pub(crate) fn read_trim(path: &Path) -> Result<String> {
    read(path).map(|s| s.trim().to_string())
}

/// mkdir one level; returns whether the directory was made now (false: it already existed).
pub(crate) fn mkdir(path: &Path) -> Result<bool> {
    match fs::create_dir(path) {
        Ok(()) => {
            tracing::debug!(target: EXPLAIN, step = "mkdir", path = %path.display());
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => Ok(false),
        Err(e) => Err(Error::io("mkdir", path, e)),
    }
}

/// rmdir one cgroup; a directory that is already gone counts as removed.
pub(crate) fn rmdir(path: &Path) -> io::Result<()> {
    match fs::remove_dir(path) {
        Ok(()) => {
            tracing::debug!(target: EXPLAIN, step = "rmdir", path = %path.display());
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Child cgroups (sub-directories) of `dir`; empty when `dir` is gone.
pub(crate) fn child_dirs(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries.filter_map(|e| e.ok()).filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false)).map(|e| e.path()).collect()
}

//! Where the engine keeps things: data (images, containers, logs) under /var/lib/conductor and
//! run-time state (runtime state, locks) under /run/conductor; both overridable for tests.

use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct Paths {
    /// Persistent data: images/, containers/.
    pub data: PathBuf,
    /// Run-time state: runtime/ (the OCI runtime's root), locks/.
    pub run: PathBuf,
}

impl Paths {
    /// `CONDUCTOR_ROOT` / `CONDUCTOR_RUNROOT` when set, else the defaults.
    pub fn from_env() -> Paths {
        let data = std::env::var_os("CONDUCTOR_ROOT").map(PathBuf::from).unwrap_or_else(|| "/var/lib/conductor".into());
        let run = std::env::var_os("CONDUCTOR_RUNROOT").map(PathBuf::from).unwrap_or_else(|| "/run/conductor".into());
        Paths { data, run }
    }

    pub fn new(data: &Path, run: &Path) -> Paths {
        Paths { data: data.into(), run: run.into() }
    }

    pub fn containers(&self) -> PathBuf {
        self.data.join("containers")
    }

    pub fn container(&self, name: &str) -> PathBuf {
        self.containers().join(name)
    }

    pub fn runtime_root(&self) -> PathBuf {
        self.run.join("runtime")
    }

    pub fn locks(&self) -> PathBuf {
        self.run.join("locks")
    }
}

//! What the engine knows about a container, on disk under containers/<name>/:
//! `container.json` (how it was asked for; written once) and `state.json` (what happened;
//! written by the monitor). Both written atomically.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::error::{Context, Error, Result};
use crate::options::RunOptions;
use crate::paths::Paths;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub name: String,
    pub image: String,
    /// The command as run (the image's default when none was given).
    pub command: Vec<String>,
    pub created: String,
    pub options: RunOptions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Being set up by `run` (a crash here leaves something `reconcile` cleans up).
    Creating,
    Running,
    /// Running with every process frozen: derived from the cgroup when asked, never stored.
    Paused,
    Exited,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    /// Host pid of the container's init and its start time (pid reuse guard).
    pub pid: i32,
    #[serde(default)]
    pub pid_start: u64,
    /// The monitor process (parent of init).
    pub monitor_pid: i32,
    #[serde(default)]
    pub monitor_start: u64,
    pub started: Option<String>,
    pub finished: Option<String>,
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub oom_killed: bool,
    /// Why the container could not start, if it could not.
    #[serde(default)]
    pub error: Option<String>,
    /// How often the monitor re-created the container under its restart policy.
    #[serde(default)]
    pub restart_count: u32,
}

impl State {
    pub fn creating() -> State {
        State {
            status: Status::Creating,
            pid: 0,
            pid_start: 0,
            monitor_pid: 0,
            monitor_start: 0,
            started: None,
            finished: None,
            exit_code: None,
            oom_killed: false,
            error: None,
            restart_count: 0,
        }
    }
}

/// A container's directory.
pub struct Dir {
    pub path: PathBuf,
}

impl Dir {
    pub fn of(paths: &Paths, name: &str) -> Dir {
        Dir { path: paths.container(name) }
    }

    pub fn exists(&self) -> bool {
        self.path.join("container.json").exists()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.path.join("rootfs")
    }

    pub fn upper(&self) -> PathBuf {
        self.path.join("upper")
    }

    pub fn work(&self) -> PathBuf {
        self.path.join("work")
    }

    pub fn log(&self) -> PathBuf {
        self.path.join("container.log")
    }

    pub fn config(&self) -> Result<Config> {
        read_json(&self.path.join("container.json"))
    }

    pub fn save_config(&self, c: &Config) -> Result<()> {
        write_json(&self.path.join("container.json"), c)
    }

    pub fn state(&self) -> Result<State> {
        read_json(&self.path.join("state.json"))
    }

    pub fn save_state(&self, s: &State) -> Result<()> {
        write_json(&self.path.join("state.json"), s)
    }
}

fn read_json<T: DeserializeOwned>(p: &Path) -> Result<T> {
    let raw = std::fs::read(p).ctx(|| format!("read {}", p.display()))?;
    serde_json::from_slice(&raw).map_err(|e| Error::Invalid(format!("{}: {e}", p.display())))
}

/// Temp file, fsync, rename: readers see the old or the new content, never half of it.
pub fn write_json<T: Serialize>(p: &Path, v: &T) -> Result<()> {
    let tmp = p.with_extension(format!("tmp{}", std::process::id()));
    let res = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(v).expect("serializes"))?;
        f.sync_all()?;
        std::fs::rename(&tmp, p)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.ctx(|| format!("write {}", p.display()))
}

/// Names of all containers with a directory (complete or not).
pub fn names(paths: &Paths) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(paths.containers())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .collect();
    v.sort();
    v
}

/// An exclusive per-name lock (flock), held until dropped: two commands on one name serialise.
pub fn lock(paths: &Paths, name: &str) -> Result<nix::fcntl::Flock<File>> {
    let dir = paths.locks();
    std::fs::create_dir_all(&dir).ctx(|| format!("create {}", dir.display()))?;
    let p = dir.join(format!("{name}.lock"));
    let f = File::options().create(true).truncate(false).write(true).open(&p).ctx(|| format!("open {}", p.display()))?;
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| Error::Sys { what: format!("lock {name}"), err: e })
}

/// Like [`lock`] without waiting: None while someone else holds it.
pub fn try_lock(paths: &Paths, name: &str) -> Result<Option<nix::fcntl::Flock<File>>> {
    let dir = paths.locks();
    std::fs::create_dir_all(&dir).ctx(|| format!("create {}", dir.display()))?;
    let p = dir.join(format!("{name}.lock"));
    let f = File::options().create(true).truncate(false).write(true).open(&p).ctx(|| format!("open {}", p.display()))?;
    match nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(l) => Ok(Some(l)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(Error::Sys { what: format!("lock {name}"), err: e }),
    }
}

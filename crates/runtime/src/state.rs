//! The runtime's on-disk state: one directory per container under the runtime root, holding
//! `state.json` (written atomically), a copy of config.json, the `exec.fifo` that holds init
//! between create and start, and a lock.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};

pub const OCI_VERSION: &str = "1.2.0";
const STATE: &str = "state.json";
pub const CONFIG: &str = "config.json";
pub const FIFO: &str = "exec.fifo";

/// OCI status of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let s = serde_json::to_value(self).unwrap();
        f.write_str(s.as_str().unwrap())
    }
}

/// What the runtime remembers about a container between commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Persisted {
    pub id: String,
    /// Host pid of init; 0 while creating.
    pub pid: i32,
    /// Start time of init (clock ticks since boot): tells init apart from a later process that
    /// reuses its pid.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    pub cgroup: conductor_cgroups::Cgroup,
}

/// runc's `state` output.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateJson {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "HashMap::is_empty", default)]
    pub annotations: HashMap<String, String>,
}

/// Reject ids that could name a path outside the root or cannot be stored.
pub fn validate_id(id: &str) -> Result<()> {
    let bad = |why| Err(Error::InvalidId(id.chars().take(64).collect(), why));
    if id.is_empty() {
        return bad("empty");
    }
    if id.len() > 1024 {
        return bad("longer than 1024 bytes");
    }
    if id == "." || id == ".." {
        return bad("not a name");
    }
    if id.contains('\0') {
        return bad("contains NUL");
    }
    if id.contains('/') {
        return bad("contains '/'");
    }
    if !id.chars().all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c)) {
        return bad("only letters, digits and _+-. are allowed");
    }
    Ok(())
}

/// The directory name of an id: the id itself, or a stable digest when it is too long for a file
/// name (ids may be up to 1024 bytes; names only 255).
fn dir_name(id: &str) -> String {
    if id.len() <= 200 {
        return id.to_string();
    }
    let h = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    format!("{}~{h:016x}", &id[..64])
}

/// A container's state directory.
pub struct Dir {
    pub path: PathBuf,
}

impl Dir {
    pub fn of(root: &Path, id: &str) -> Result<Dir> {
        validate_id(id)?;
        Ok(Dir { path: root.join(dir_name(id)) })
    }

    /// Create the directory; fails if the id is taken.
    pub fn create(root: &Path, id: &str) -> Result<Dir> {
        let dir = Dir::of(root, id)?;
        std::fs::create_dir_all(root).ctx(|| format!("create runtime root {}", root.display()))?;
        match std::fs::create_dir(&dir.path) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Error::Exists(id.into())),
            Err(e) => Err(Error::Io { what: format!("create {}", dir.path.display()), err: e }),
        }
    }

    /// Open an existing container's directory.
    pub fn open(root: &Path, id: &str) -> Result<Dir> {
        let dir = Dir::of(root, id)?;
        if !dir.path.join(STATE).exists() {
            return Err(Error::NotFound(id.into()));
        }
        Ok(dir)
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn load(&self) -> Result<Persisted> {
        let p = self.file(STATE);
        let text = std::fs::read(&p).ctx(|| format!("read {}", p.display()))?;
        serde_json::from_slice(&text).map_err(|e| Error::Invalid(format!("{}: {e}", p.display())))
    }

    pub fn save(&self, st: &Persisted) -> Result<()> {
        write_atomic(&self.file(STATE), &serde_json::to_vec(st).expect("state serializes"))
    }

    /// An exclusive lock held until the returned value is dropped: serialises commands on one
    /// container (flock on the directory itself).
    pub fn lock(&self) -> Result<nix::fcntl::Flock<File>> {
        let f = File::open(&self.path).ctx(|| format!("open {}", self.path.display()))?;
        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| Error::Sys { what: "lock container".into(), err: e })
    }

    pub fn remove(&self) -> Result<()> {
        match std::fs::remove_dir_all(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::Io { what: format!("remove {}", self.path.display()), err: e })
            }
            _ => Ok(()),
        }
    }
}

/// Write a file so that readers see either the old or the new content: temp file, fsync, rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let res = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.ctx(|| format!("write {}", path.display()))
}

impl Persisted {
    /// The live status: derived from init's process and the fifo, never stored.
    pub fn status(&self, dir: &Dir) -> Status {
        if self.pid == 0 {
            return Status::Creating;
        }
        if !conductor_sys::process::is_alive(Pid::from_raw(self.pid), Some(self.pid_start)) {
            return Status::Stopped;
        }
        if dir.file(FIFO).exists() {
            return Status::Created;
        }
        if self.cgroup.state().is_ok_and(|s| s == conductor_cgroups::FreezerState::Frozen) {
            return Status::Paused;
        }
        Status::Running
    }

    pub fn to_json(&self, status: Status) -> StateJson {
        StateJson {
            oci_version: OCI_VERSION.into(),
            id: self.id.clone(),
            pid: if status == Status::Stopped { 0 } else { self.pid },
            status,
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            owner: self.owner.clone(),
            annotations: self.annotations.clone(),
        }
    }
}

/// All containers under a runtime root (unreadable entries are skipped).
pub fn list(root: &Path) -> Vec<(Dir, Persisted)> {
    let Ok(rd) = std::fs::read_dir(root) else { return Vec::new() };
    let mut v: Vec<_> = rd
        .flatten()
        .filter_map(|e| {
            let dir = Dir { path: e.path() };
            dir.load().ok().map(|p| (dir, p))
        })
        .collect();
    v.sort_by(|a, b| a.1.created.cmp(&b.1.created));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        validate_id("abc-1.2_x+y").unwrap();
        for bad in ["", ".", "..", "a/b", "a\0b", "a b", "../x"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
        validate_id(&"a".repeat(1024)).unwrap();
        assert!(validate_id(&"a".repeat(1025)).is_err());
    }

    #[test]
    fn long_ids_get_short_stable_dirs() {
        let long = "x".repeat(1000);
        let a = dir_name(&long);
        assert!(a.len() < 100);
        assert_eq!(a, dir_name(&long));
        assert_ne!(a, dir_name(&"x".repeat(999)));
        assert_eq!(dir_name("short"), "short");
    }

    #[test]
    fn atomic_write_replaces() {
        let d = std::env::temp_dir().join(format!("cnd-state-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("f.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1, "no temp file left");
        std::fs::remove_dir_all(&d).unwrap();
    }
}

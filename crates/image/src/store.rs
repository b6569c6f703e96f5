//! The image store: `<root>/images/<name>/{image.json, layers/0, ...}`.
//!
//! Every change is a rename, so a crash never leaves a half-made image under a real name:
//! builders fill a `.tmp-*` directory and rename it into place when complete; `remove` renames
//! the image to `.trash-*` before deleting it. Whoever works in a `.tmp-*` or `.trash-*`
//! directory holds an flock on it; `open` deletes the ones nobody holds (left by a crash).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{SecondsFormat, Utc};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::error::{Context, Error, Result};
use crate::image::{Image, ImageConfig, ImageInfo, Manifest};
use crate::{atomic, du, mountinfo, name};

/// The file that describes an image, in its directory.
pub const MANIFEST: &str = "image.json";
const TMP: &str = ".tmp-";
const TRASH: &str = ".trash-";

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A directory of images.
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// Open (creating if needed) the store under `root` (e.g. /var/lib/conductor): images live
    /// in `root/images`. Leftovers of crashed builds and removals are deleted here.
    pub fn open(root: &Path) -> Result<Store> {
        let dir = root.join("images");
        std::fs::create_dir_all(&dir).ctx(|| format!("create image store {}", dir.display()))?;
        // Layer paths end up in overlay mount options: make them absolute and symlink-free.
        let dir = dir.canonicalize().ctx(|| format!("resolve image store {}", dir.display()))?;
        let store = Store { dir };
        store.reconcile();
        Ok(store)
    }

    /// `<root>/images`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// All images, by name. An image whose image.json cannot be read is left out (with a
    /// warning) so that one bad image does not hide the others; `remove` still works on it.
    pub fn list(&self) -> Result<Vec<ImageInfo>> {
        let rd = std::fs::read_dir(&self.dir).ctx(|| format!("read image store {}", self.dir.display()))?;
        let mut out = Vec::new();
        for entry in rd {
            let entry = entry.ctx(|| format!("read image store {}", self.dir.display()))?;
            let Ok(n) = entry.file_name().into_string() else {
                continue;
            };
            if n.starts_with('.') || name::validate(&n).is_err() {
                continue;
            }
            match Image::load(&n, &entry.path()) {
                Ok(img) => out.push(img.info()),
                Err(e) => tracing::warn!("{e}"),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub fn get(&self, name: &str) -> Result<Image> {
        name::validate(name)?;
        let dir = self.image_dir(name);
        if std::fs::symlink_metadata(&dir).is_err() {
            return Err(Error::NotFound(name.into()));
        }
        Image::load(name, &dir)
    }

    /// Whether the name is taken (by an image, readable or not).
    pub fn exists(&self, name: &str) -> Result<bool> {
        name::validate(name)?;
        Ok(std::fs::symlink_metadata(self.image_dir(name)).is_ok())
    }

    /// Delete an image. The engine checks that no container uses it first.
    pub fn remove(&self, name: &str) -> Result<()> {
        name::validate(name)?;
        let dir = self.image_dir(name);
        if !dir.is_dir() {
            return Err(Error::NotFound(name.into()));
        }
        let mounts = mountinfo::mounts_under(&dir).ctx(|| "read /proc/self/mountinfo".into())?;
        if let Some(m) = mounts.first() {
            return Err(Error::Invalid(format!("image {name:?}: {} is mounted inside it", m.display())));
        }
        self.retire(name, &dir)
    }

    /// Make an image of a prepared root directory, which is moved (not copied) into the store
    /// and so must be on the store's filesystem. On failure it is moved back.
    pub fn create_from_dir(&self, name: &str, dir: &Path, config: ImageConfig) -> Result<Image> {
        self.check_free(name, false)?;
        if !dir.is_dir() {
            return Err(Error::Invalid(format!("{}: not a directory", dir.display())));
        }
        let mut staging = self.stage(name)?;
        let layer = staging.layer(0);
        std::fs::rename(dir, &layer).map_err(|e| match Errno::from_raw(e.raw_os_error().unwrap_or(0)) {
            Errno::EXDEV => Error::Invalid(format!(
                "{}: not on the image store's filesystem ({}); build it there",
                dir.display(),
                self.dir.display()
            )),
            _ => Error::Io { what: format!("move {} into the image store", dir.display()), source: e },
        })?;
        let source = format!("directory {}", dir.display());
        let res = self.commit(&mut staging, name, config, source, false);
        if res.is_err() {
            let _ = std::fs::rename(&layer, dir);
        }
        res
    }

    fn image_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Fail early, before a long build, when the name is invalid or taken.
    pub(crate) fn check_free(&self, name: &str, replace: bool) -> Result<()> {
        if self.exists(name)? && !replace {
            return Err(Error::Exists(name.into()));
        }
        Ok(())
    }

    /// A fresh private directory to build `name` in, deleted on drop unless committed.
    pub(crate) fn stage(&self, name: &str) -> Result<Staging> {
        loop {
            let dir = self.scratch_path(TMP, name);
            match std::fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e).ctx(|| format!("create {}", dir.display())),
            }
            let lock = match lock(&dir) {
                Ok(l) => l,
                Err(e) => {
                    let _ = std::fs::remove_dir(&dir);
                    return Err(e);
                }
            };
            let staging = Staging { dir, _lock: lock, committed: false };
            let layers = staging.dir.join("layers");
            std::fs::create_dir(&layers).ctx(|| format!("create {}", layers.display()))?;
            return Ok(staging);
        }
    }

    /// Record the image (size, config, source) and rename it into place as `name`. With
    /// `replace`, an existing image of that name is retired first.
    pub(crate) fn commit(
        &self,
        staging: &mut Staging,
        name: &str,
        config: ImageConfig,
        source: String,
        replace: bool,
    ) -> Result<Image> {
        let layers = vec!["layers/0".to_string()];
        let mut size = 0;
        for l in &layers {
            let p = staging.dir.join(l);
            size += du::apparent_size(&p).ctx(|| format!("measure {}", p.display()))?;
        }
        let created = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
        let m = Manifest { name: name.into(), created, size, layers, config, source };
        let json = serde_json::to_vec_pretty(&m).expect("manifest serializes");
        atomic::write(&staging.dir.join(MANIFEST), &json)?;

        let dst = self.image_dir(name);
        if let Err(e) = std::fs::rename(&staging.dir, &dst) {
            let taken = matches!(Errno::from_raw(e.raw_os_error().unwrap_or(0)), Errno::ENOTEMPTY | Errno::EEXIST);
            if !taken {
                return Err(e).ctx(|| format!("rename {} to {}", staging.dir.display(), dst.display()));
            }
            if !replace {
                return Err(Error::Exists(name.into()));
            }
            let old = self.trash(name, &dst)?;
            std::fs::rename(&staging.dir, &dst).ctx(|| format!("rename {} to {}", staging.dir.display(), dst.display()))?;
            staging.committed = true;
            remove_tree(&old.0);
        }
        staging.committed = true;
        atomic::sync_dir(&self.dir).ctx(|| format!("sync {}", self.dir.display()))?;
        Image::load(name, &dst)
    }

    /// Rename an image out of its name, then delete it.
    fn retire(&self, name: &str, dir: &Path) -> Result<()> {
        let (trash, _lock) = self.trash(name, dir)?;
        remove_tree(&trash);
        Ok(())
    }

    /// Rename `dir` to a locked `.trash-*` name (durably): from here on it is garbage.
    fn trash(&self, name: &str, dir: &Path) -> Result<(PathBuf, Flock<File>)> {
        let lock = lock(dir)?;
        let trash = self.scratch_path(TRASH, name);
        std::fs::rename(dir, &trash).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound(name.into()),
            _ => Error::Io { what: format!("rename {} to {}", dir.display(), trash.display()), source: e },
        })?;
        atomic::sync_dir(&self.dir).ctx(|| format!("sync {}", self.dir.display()))?;
        Ok((trash, lock))
    }

    fn scratch_path(&self, prefix: &str, name: &str) -> PathBuf {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        self.dir.join(format!("{prefix}{name}-{}-{n}", std::process::id()))
    }

    /// Delete the `.tmp-*` and `.trash-*` directories that no live process holds.
    fn reconcile(&self) {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in rd.flatten() {
            let n = entry.file_name();
            let n = n.to_string_lossy();
            if !(n.starts_with(TMP) || n.starts_with(TRASH)) {
                continue;
            }
            let path = entry.path();
            match try_lock(&path) {
                Ok(Some(_held)) => {
                    tracing::info!(path = %path.display(), "removing leftover of an interrupted image build or removal");
                    remove_tree(&path);
                }
                Ok(None) => {} // in use by another process
                Err(e) => tracing::warn!("{}: {e}", path.display()),
            }
        }
    }
}

/// A build directory in the store; deleted when dropped uncommitted (error or panic).
pub(crate) struct Staging {
    dir: PathBuf,
    _lock: Flock<File>,
    committed: bool,
}

impl Staging {
    /// Where layer `i` goes (not created).
    pub(crate) fn layer(&self, i: usize) -> PathBuf {
        self.dir.join("layers").join(i.to_string())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            remove_tree(&self.dir);
        }
    }
}

fn lock(dir: &Path) -> Result<Flock<File>> {
    let f = File::open(dir).ctx(|| format!("open {}", dir.display()))?;
    Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| e).ctx(|| format!("lock {}", dir.display()))
}

fn try_lock(dir: &Path) -> Result<Option<Flock<File>>> {
    let f = File::open(dir).ctx(|| format!("open {}", dir.display()))?;
    match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
        Ok(l) => Ok(Some(l)),
        Err((_, Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(e).ctx(|| format!("lock {}", dir.display())),
    }
}

/// Delete a directory tree we own; anything mounted inside it (debootstrap's /proc when it was
/// killed) is detached first, so the deletion never reaches into a mounted filesystem.
/// Failures are logged: this runs on error and drop paths, and `open` retries later.
pub(crate) fn remove_tree(dir: &Path) {
    if let Ok(mounts) = mountinfo::mounts_under(dir) {
        for m in mounts {
            if let Err(e) = conductor_sys::mount::umount(&m, nix::mount::MntFlags::MNT_DETACH) {
                tracing::warn!("unmount {}: {e}", m.display());
                return;
            }
        }
    }
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!("remove {}: {e}", dir.display()),
    }
}

//! `import`: an image from a rootfs tarball (plain or gzip, told apart by magic bytes).
//!
//! Extraction keeps modes (setuid included), numeric ownership, symlinks, hard links, device
//! nodes and fifos. Nothing is ever written outside the layer directory: `..` in a path or a
//! hard link target is refused, a leading `/` is dropped (as GNU tar does), and every parent
//! directory is checked, after resolving symlinks, to lie inside the layer, so a symlink in
//! the archive (`etc -> /etc`) cannot carry a later entry out of it. Symlink targets themselves
//! are data and may be absolute: they are resolved inside the container at run time.

use std::cell::Cell;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use nix::sys::stat::{Mode, SFlag};
use tar::EntryType;

use crate::error::{Error, Result};
use crate::image::{Image, ImageConfig};
use crate::progress::{Progress, Unit};
use crate::store::Store;

/// Options of [`Store::import_with`].
#[derive(Clone, Debug, Default)]
pub struct ImportOpts {
    /// Replace an existing image of the same name (atomically, once the new one is complete).
    pub replace: bool,
    pub config: ImageConfig,
}

impl Store {
    /// Import a rootfs tarball as image `name` (which must not exist yet), default config.
    pub fn import(&self, tarball: &Path, name: &str, progress: &mut dyn Progress) -> Result<Image> {
        self.import_with(tarball, name, &ImportOpts::default(), progress)
    }

    pub fn import_with(&self, tarball: &Path, name: &str, opts: &ImportOpts, progress: &mut dyn Progress) -> Result<Image> {
        let res = self.import_inner(tarball, name, opts, progress);
        progress.finish();
        res
    }

    fn import_inner(&self, tarball: &Path, name: &str, opts: &ImportOpts, progress: &mut dyn Progress) -> Result<Image> {
        self.check_free(name, opts.replace)?;
        let t = open(tarball)?;
        let mut staging = self.stage(name)?;
        progress.stage("importing", Some(t.len), Unit::Bytes);
        unpack(t.stream, &staging.layer(0), |path| progress.advance(t.read.get(), &path.to_string_lossy()))
            .map_err(|reason| Error::Archive { path: tarball.into(), reason })?;
        let source = format!("import of {}", tarball.display());
        self.commit(&mut staging, name, opts.config.clone(), source, opts.replace)
    }
}

/// Counts the bytes read from the tarball file, for progress.
struct Counting<R> {
    inner: R,
    read: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

/// An opened tarball: its tar stream, its size, and how many of its bytes were read so far.
pub(crate) struct Tarball {
    pub stream: Box<dyn Read>,
    pub len: u64,
    pub read: Rc<Cell<u64>>,
}

pub(crate) fn open(tarball: &Path) -> Result<Tarball> {
    let err = |reason: String| Error::Archive { path: tarball.into(), reason };
    let f = File::open(tarball).map_err(|e| err(e.to_string()))?;
    let len = f.metadata().map_err(|e| err(e.to_string()))?.len();
    let read = Rc::new(Cell::new(0));
    let mut r = BufReader::with_capacity(1 << 16, Counting { inner: f, read: read.clone() });
    let head = r.fill_buf().map_err(|e| err(e.to_string()))?;
    let stream: Box<dyn Read> = match compression(head) {
        Some("gzip") => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
        Some(other) => return Err(err(format!("compressed with {other}: only plain and gzip tarballs are supported"))),
        None => Box::new(r),
    };
    Ok(Tarball { stream, len, read })
}

/// The compression named by the magic bytes at the start of a file, if any.
fn compression(head: &[u8]) -> Option<&'static str> {
    const MAGIC: [(&[u8], &str); 4] =
        [(b"\x1f\x8b", "gzip"), (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"), (b"BZh", "bzip2")];
    MAGIC.iter().find(|(m, _)| head.starts_with(m)).map(|(_, n)| *n)
}

/// Extract a tar stream into `dst` (created if missing), calling `on_entry` after each entry.
/// Returns the number of entries. Errors name the entry.
pub(crate) fn unpack<R: Read>(reader: R, dst: &Path, mut on_entry: impl FnMut(&Path)) -> std::result::Result<u64, String> {
    std::fs::create_dir_all(dst).map_err(|e| format!("create {}: {e}", dst.display()))?;
    let dst = dst.canonicalize().map_err(|e| format!("resolve {}: {e}", dst.display()))?;
    let mut ar = tar::Archive::new(reader);
    ar.set_preserve_permissions(true);
    ar.set_preserve_ownerships(true);
    ar.set_preserve_mtime(true);
    ar.set_unpack_xattrs(false);
    ar.set_overwrite(true);
    let entries = ar.entries().map_err(|e| format!("not a tar archive: {}", chain(&e)))?;
    // Directories last, deepest first: their modes must not stop the extraction of their
    // contents, and adding files would change their times.
    let mut dirs = Vec::new();
    let mut count = 0;
    for entry in entries {
        let mut e = entry.map_err(|e| format!("not a valid tar archive: {}", chain(&e)))?;
        let raw = e.path().map_err(|err| format!("entry {:?}: {err}", e.path_bytes()))?.into_owned();
        let rel = entry_path(&raw).map_err(|why| format!("entry {}: {why}", raw.display()))?;
        let fail = |why: std::io::Error| format!("entry {}: {why}", raw.display());
        let kind = e.header().entry_type();
        match kind {
            _ if rel.as_os_str().is_empty() => apply_root(&e, &dst).map_err(fail)?,
            EntryType::Directory => dirs.push(e),
            EntryType::Link => hard_link(&e, &dst, &rel).map_err(fail)?,
            EntryType::Char | EntryType::Block | EntryType::Fifo => special(&e, &dst, &rel).map_err(fail)?,
            _ => unpack_in(&mut e, &dst, &raw)?,
        }
        count += 1;
        on_entry(&rel);
    }
    dirs.sort_by(|a, b| b.path_bytes().cmp(&a.path_bytes()));
    for mut d in dirs {
        let raw = d.path().map_err(|e| e.to_string())?.into_owned();
        unpack_in(&mut d, &dst, &raw)?;
    }
    if count == 0 {
        return Err("empty archive: no files".into());
    }
    Ok(count)
}

/// Regular files, directories and symlinks: the tar crate checks that the resolved parent is
/// inside `dst`, and writes new files with O_EXCL, replacing (never following) what is there.
fn unpack_in<R: Read>(e: &mut tar::Entry<R>, dst: &Path, raw: &Path) -> std::result::Result<(), String> {
    match e.unpack_in(dst) {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!("entry {}: outside the image", raw.display())),
        Err(err) => Err(format!("entry {}: {}", raw.display(), chain(&err))),
    }
}

/// An error with its causes, minus the tar crate's "failed to unpack `<temp path>`" wrappers
/// (the entry is named already) and with its escape message made plain.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = Some(e);
    while let Some(c) = cur {
        let m = c.to_string();
        if m.contains("outside of destination") {
            return "it would be written outside the image".into();
        }
        if !m.starts_with("failed to unpack") && !parts.iter().any(|p| p.contains(&m)) {
            parts.push(m);
        }
        cur = c.source();
    }
    if parts.is_empty() {
        e.to_string()
    } else {
        parts.join(": ")
    }
}

/// The entry's path relative to the layer root: leading `/` and `.` components dropped, `..`
/// refused (anywhere: even `a/../b` has no business in a rootfs tarball).
pub(crate) fn entry_path(raw: &Path) -> std::result::Result<PathBuf, &'static str> {
    let mut rel = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(n) => rel.push(n),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => return Err("path contains '..': it would escape the image"),
        }
    }
    Ok(rel)
}

/// The archive's entry for "./" sets the mode and owner of the layer root.
fn apply_root<R: Read>(e: &tar::Entry<R>, dst: &Path) -> std::io::Result<()> {
    if e.header().entry_type() != EntryType::Directory {
        return Err(std::io::Error::other("the root of the archive is not a directory"));
    }
    set_owner_mode(e, dst)
}

/// `lchown` then `chmod` (chown clears setuid bits, so the mode goes last).
fn set_owner_mode<R: Read>(e: &tar::Entry<R>, path: &Path) -> std::io::Result<()> {
    let h = e.header();
    let id = |v: u64| u32::try_from(v).map_err(|_| std::io::Error::other(format!("id {v} out of range")));
    std::os::unix::fs::lchown(path, Some(id(h.uid()?)?), Some(id(h.gid()?)?))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(h.mode()? & 0o7777))
}

/// The resolved directory that entry `rel` goes in: created if missing, and checked to lie
/// inside `dst` (the missing part is created below an existing ancestor that is inside, so it
/// cannot be redirected by a symlink).
fn parent_inside(dst: &Path, rel: &Path) -> std::io::Result<PathBuf> {
    let parent = dst.join(rel.parent().unwrap_or(Path::new("")));
    let mut existing = parent.as_path();
    while std::fs::symlink_metadata(existing).is_err() {
        existing = existing.parent().unwrap_or(dst);
    }
    let inside = |p: &Path| -> std::io::Result<PathBuf> {
        let c = p.canonicalize()?;
        if c.starts_with(dst) {
            Ok(c)
        } else {
            Err(std::io::Error::other(format!("{} leads outside the image (to {})", p.display(), c.display())))
        }
    };
    inside(existing)?;
    std::fs::create_dir_all(&parent)?;
    inside(&parent)
}

/// The final component of an entry path (entry_path never yields one ending in "..").
fn leaf(rel: &Path) -> std::io::Result<&std::ffi::OsStr> {
    rel.file_name().ok_or_else(|| std::io::Error::other("no file name"))
}

/// Replace whatever is at `path` (not a directory), as a later tar entry overrides an earlier.
fn clear(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(md) if md.is_dir() => Err(std::io::Error::other("a directory is in the way")),
        Ok(_) => std::fs::remove_file(path),
        Err(_) => Ok(()),
    }
}

/// A hard link to an earlier entry; both ends resolved inside `dst` (the target's parent is
/// resolved, not the target itself: link(2) does not follow a symlink target).
fn hard_link<R: Read>(e: &tar::Entry<R>, dst: &Path, rel: &Path) -> std::io::Result<()> {
    let target = e.link_name()?.ok_or_else(|| std::io::Error::other("hard link without a target"))?;
    let target_rel =
        entry_path(&target).map_err(|why| std::io::Error::other(format!("link target {}: {why}", target.display())))?;
    let from = parent_inside(dst, &target_rel)?.join(leaf(&target_rel)?);
    let to = parent_inside(dst, rel)?.join(leaf(rel)?);
    clear(&to)?;
    std::fs::hard_link(&from, &to).map_err(|err| std::io::Error::other(format!("link to {}: {err}", target.display())))
}

/// Character and block devices and fifos (the tar crate would write them as plain files).
fn special<R: Read>(e: &tar::Entry<R>, dst: &Path, rel: &Path) -> std::io::Result<()> {
    let h = e.header();
    let (kind, dev) = match h.entry_type() {
        EntryType::Char => (SFlag::S_IFCHR, devno(h)?),
        EntryType::Block => (SFlag::S_IFBLK, devno(h)?),
        _ => (SFlag::S_IFIFO, 0),
    };
    let parent = parent_inside(dst, rel)?;
    let name = leaf(rel)?;
    let path = parent.join(name);
    clear(&path)?;
    let dir = File::open(&parent)?;
    let name = name.to_str().ok_or_else(|| std::io::Error::other("device name is not UTF-8"))?;
    conductor_sys::mount::mknod_at(&dir, name, kind, Mode::from_bits_truncate(0o600), dev)?;
    set_owner_mode(e, &path)
}

fn devno(h: &tar::Header) -> std::io::Result<u64> {
    let major = h.device_major()?.unwrap_or(0);
    let minor = h.device_minor()?.unwrap_or(0);
    Ok(nix::sys::stat::makedev(major.into(), minor.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cnd-image-import-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A tar of raw headers: (path, type, link target, data). Paths are written as given,
    /// bypassing the checks tar::Builder makes, to build hostile archives.
    fn tarball(entries: &[(&str, EntryType, &str, &[u8])]) -> Vec<u8> {
        let (uid, gid) = (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw());
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, link, data) in entries {
            let mut h = tar::Header::new_old();
            let name = &mut h.as_old_mut().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            let ln = &mut h.as_old_mut().linkname;
            ln[..link.len()].copy_from_slice(link.as_bytes());
            h.set_entry_type(*kind);
            h.set_mode(if *kind == EntryType::Directory { 0o755 } else { 0o644 });
            h.set_uid(uid.into());
            h.set_gid(gid.into());
            h.set_size(data.len() as u64);
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn run(entries: &[(&str, EntryType, &str, &[u8])], dst: &Path) -> std::result::Result<u64, String> {
        unpack(&tarball(entries)[..], dst, |_| {})
    }

    #[test]
    fn entry_paths() {
        let ok = |p: &str| entry_path(Path::new(p)).unwrap();
        assert_eq!(ok("./etc/passwd"), PathBuf::from("etc/passwd"));
        assert_eq!(ok("/etc//passwd"), PathBuf::from("etc/passwd"));
        assert_eq!(ok("./"), PathBuf::new());
        for bad in ["../x", "a/../../x", "./..", "a/.."] {
            assert!(entry_path(Path::new(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn detects_compression_by_magic() {
        assert_eq!(compression(b"\x1f\x8b\x08\x00"), Some("gzip"));
        assert_eq!(compression(b"\xfd7zXZ\x00\x00"), Some("xz"));
        assert_eq!(compression(b"./etc\0\0\0"), None);
        assert_eq!(compression(b""), None);
    }

    #[test]
    fn refuses_dotdot() {
        let d = tmp("dotdot");
        let err =
            run(&[("ok", EntryType::Regular, "", b"x"), ("../evil", EntryType::Regular, "", b"x")], &d.join("root")).unwrap_err();
        assert!(err.contains("../evil") && err.contains("escape"), "{err}");
        assert!(!d.join("evil").exists());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn refuses_writing_through_a_symlink_out_of_the_layer() {
        let d = tmp("symlink");
        let outside = d.join("outside");
        std::fs::create_dir(&outside).unwrap();
        let target = outside.to_str().unwrap();
        for second in [("link/file", EntryType::Regular), ("link/dev", EntryType::Fifo), ("link/new/dir/f", EntryType::Regular)] {
            let root = d.join("root");
            let _ = std::fs::remove_dir_all(&root);
            let err = run(&[("link", EntryType::Symlink, target, b""), (second.0, second.1, "", b"data")], &root).unwrap_err();
            assert!(err.contains(second.0), "{err}");
            assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "{} wrote outside", second.0);
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn refuses_hard_links_out_of_the_layer() {
        let d = tmp("hardlink");
        std::fs::write(d.join("secret"), "s").unwrap();
        let err = run(&[("h", EntryType::Link, "../secret", b"")], &d.join("root")).unwrap_err();
        assert!(err.contains("escape"), "{err}");
        let target = d.to_str().unwrap().to_string();
        let err = run(&[("l", EntryType::Symlink, &target, b""), ("h", EntryType::Link, "l/secret", b"")], &d.join("root2"))
            .unwrap_err();
        assert!(err.contains("outside the image"), "{err}");
        assert_eq!(std::fs::metadata(d.join("secret")).unwrap().nlink(), 1);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn absolute_paths_and_symlink_targets_stay_inside() {
        let d = tmp("abs");
        let root = d.join("root");
        let n = run(
            &[
                ("/abs/file", EntryType::Regular, "", b"hello"),
                ("./etc", EntryType::Directory, "", b""),
                ("etc/passwd-link", EntryType::Symlink, "/etc/passwd", b""),
                ("hard", EntryType::Link, "/abs/file", b""),
            ],
            &root,
        )
        .unwrap();
        assert_eq!(n, 4);
        assert_eq!(std::fs::read(root.join("abs/file")).unwrap(), b"hello");
        assert_eq!(std::fs::read_link(root.join("etc/passwd-link")).unwrap(), Path::new("/etc/passwd"));
        assert_eq!(std::fs::metadata(root.join("hard")).unwrap().ino(), std::fs::metadata(root.join("abs/file")).unwrap().ino());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn later_entries_replace_earlier_ones_without_following_symlinks() {
        let d = tmp("replace");
        let victim = d.join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let root = d.join("root");
        let target = victim.to_str().unwrap();
        run(&[("f", EntryType::Symlink, target, b""), ("f", EntryType::Regular, "", b"new")], &root).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert_eq!(std::fs::read(root.join("f")).unwrap(), b"new");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn rejects_garbage_and_empty_archives() {
        let d = tmp("garbage");
        let err = unpack("not a tar archive\n".repeat(64).as_bytes(), &d.join("a"), |_| {}).unwrap_err();
        assert!(err.contains("tar"), "{err}");
        let err = unpack(&[0u8; 1024][..], &d.join("b"), |_| {}).unwrap_err();
        assert!(err.contains("empty"), "{err}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}

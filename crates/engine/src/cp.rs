//! `conductor cp`: files and directories between the host and a container's root filesystem
//! (the overlay mounted at `containers/<name>/rootfs`), with Docker's rules for where things
//! land and with modes and modification times kept.
//!
//! Every path on the container's side is resolved *inside* its root (openat2
//! `RESOLVE_IN_ROOT`, `conductor_sys::mount::open_in_root`): an absolute symlink in the image
//! means the container's `/`, and `..` stops at it, so no link can carry a copy to the host.
//! Below the resolved directory each step is one name at a time, opened with `O_NOFOLLOW`: an
//! existing symlink at a name being written is replaced, never followed. Files copied out lose
//! their set-user/group-ID bits (the copies are root's on the host).

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use conductor_sys::mount::{open_dir, open_in_root};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fstatat, Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd::UnlinkatFlags;
use serde::{Deserialize, Serialize};

use crate::container::Engine;
use crate::error::{Error, Result};
use crate::record::{self, Dir};

/// A host path copied into a container before its program starts (`run`'s copies, stacks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopySpec {
    pub src: PathBuf,
    pub dst: PathBuf,
}

/// What is at a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Missing,
    File,
    Dir,
}

impl Engine {
    /// `cp SRC NAME:DST`.
    pub fn copy_to(&self, cname: &str, src: &Path, dst: &Path) -> Result<()> {
        let dir = self.existing(cname)?;
        let _lock = record::lock(&self.paths, cname)?;
        copy_in(&mounted_rootfs(&dir, cname)?, src, dst)
    }

    /// `cp NAME:SRC DST`.
    pub fn copy_from(&self, cname: &str, src: &Path, dst: &Path) -> Result<()> {
        let dir = self.existing(cname)?;
        let _lock = record::lock(&self.paths, cname)?;
        copy_out(&mounted_rootfs(&dir, cname)?, src, dst)
    }
}

/// The rootfs, refused unless the overlay is mounted there (writing to the bare mount point
/// would be lost under the next mount).
fn mounted_rootfs(dir: &Dir, cname: &str) -> Result<PathBuf> {
    let rootfs = dir.rootfs();
    let dev = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).ok();
    if dev(&rootfs).is_none() || dev(&rootfs) == dev(&dir.path) {
        return Err(Error::Invalid(format!("container {cname:?} has no mounted root filesystem")));
    }
    Ok(rootfs)
}

/// Where a copy of `src` goes given what is at `dst`: the path that `src` itself becomes.
/// Docker's rules: a file onto a missing path or a file replaces it, into a directory keeps its
/// name; a directory onto a missing path becomes it, into a directory keeps its name unless
/// SRC ends in `/.` (then only its contents are copied).
fn target(src: &Path, src_is_dir: bool, dst: &Path, dst_kind: Kind) -> Result<PathBuf> {
    let s = src.as_os_str().as_encoded_bytes();
    let d = dst.as_os_str().as_encoded_bytes();
    let contents_only = s.ends_with(b"/.") || s == b".";
    let base = || {
        src.components()
            .rfind(|c| matches!(c, Component::Normal(_)))
            .map(|c| dst.join(c.as_os_str()))
            .ok_or_else(|| Error::Invalid(format!("cp: cannot tell the name of {}", src.display())))
    };
    match (src_is_dir, dst_kind) {
        (false, _) if s.ends_with(b"/") => Err(Error::Invalid(format!("cp: {} is not a directory", src.display()))),
        (false, Kind::Missing) if d.ends_with(b"/") => {
            Err(Error::Invalid(format!("cp: destination directory {} does not exist", dst.display())))
        }
        (false, Kind::Missing | Kind::File) => Ok(dst.into()),
        (true, Kind::File) => Err(Error::Invalid(format!("cp: cannot copy a directory onto file {}", dst.display()))),
        (true, Kind::Missing) => Ok(dst.into()),
        (true, Kind::Dir) if contents_only => Ok(dst.into()),
        (_, Kind::Dir) => base(),
    }
}

/// `path`'s parent and last name; the name must be a real one (not `.`, `..` or empty).
fn split(path: &Path) -> Result<(PathBuf, &OsStr)> {
    match path.components().next_back() {
        Some(Component::Normal(n)) => Ok((path.parent().unwrap_or(Path::new("/")).to_path_buf(), n)),
        _ => Err(Error::Invalid(format!("cp: {} names no file", path.display()))),
    }
}

fn sys(what: impl std::fmt::Display) -> impl FnOnce(Errno) -> Error {
    move |err| Error::Sys { what: format!("cp: {what}"), err }
}

fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> Error {
    move |err| Error::Io { what: format!("cp: {what}"), err }
}

// ---- host -> container ----

/// Copy host `src` to `dst` inside the root filesystem at `rootfs`.
pub(crate) fn copy_in(rootfs: &Path, src: &Path, dst: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(src).map_err(io(src.display()))?;
    let root = open_dir(rootfs).map_err(sys(rootfs.display()))?;
    let kind = match open_in_root(&root, dst, OFlag::O_PATH, Mode::empty()) {
        Ok(fd) => kind_of(&fd)?,
        Err(Errno::ENOENT) => Kind::Missing,
        Err(e) => return Err(sys(format!("container path {}", dst.display()))(e)),
    };
    let to = target(src, meta.is_dir(), dst, kind)?;
    let (parent, name) = split(&to)?;
    let pdir = open_in_root(&root, &parent, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty())
        .map_err(sys(format!("container directory {}", parent.display())))?;
    put(&pdir, name, src, &meta)
}

fn kind_of(fd: &OwnedFd) -> Result<Kind> {
    let st = nix::sys::stat::fstat(fd).map_err(sys("stat"))?;
    Ok(if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR { Kind::Dir } else { Kind::File })
}

/// Create `name` in `dir` as a copy of host `src` (recursively for a directory).
fn put(dir: &OwnedFd, name: &OsStr, src: &Path, meta: &std::fs::Metadata) -> Result<()> {
    let shown = || src.display().to_string();
    let ft = meta.file_type();
    let existing =
        fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).ok().map(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT);
    let existing_dir = existing == Some(SFlag::S_IFDIR);
    if ft.is_dir() {
        if existing.is_some() && !existing_dir {
            nix::unistd::unlinkat(dir, name, UnlinkatFlags::NoRemoveDir).map_err(sys(shown()))?;
        }
        if !existing_dir {
            nix::sys::stat::mkdirat(dir, name, Mode::from_bits_truncate(0o700)).map_err(sys(shown()))?;
        }
        let sub = nix::fcntl::openat(
            dir,
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(sys(shown()))?;
        for e in std::fs::read_dir(src).map_err(io(shown()))? {
            let e = e.map_err(io(shown()))?;
            let m = e.metadata().map_err(io(e.path().display()))?;
            put(&sub, &e.file_name(), &e.path(), &m)?;
        }
        return finish(&sub, meta);
    }
    if existing_dir {
        return Err(Error::Invalid(format!("cp: cannot overwrite a directory with {}", shown())));
    }
    if existing.is_some() {
        nix::unistd::unlinkat(dir, name, UnlinkatFlags::NoRemoveDir).map_err(sys(shown()))?;
    }
    if ft.is_symlink() {
        let to = std::fs::read_link(src).map_err(io(shown()))?;
        return nix::unistd::symlinkat(&to, dir, name).map_err(sys(shown()));
    }
    if !ft.is_file() {
        return Err(Error::Invalid(format!("cp: {} is not a regular file, directory or symlink", shown())));
    }
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = nix::fcntl::openat(dir, name, flags, Mode::from_bits_truncate(0o600)).map_err(sys(shown()))?;
    let mut out = File::from(fd);
    std::io::copy(&mut File::open(src).map_err(io(shown()))?, &mut out).map_err(io(shown()))?;
    finish(&out, meta)
}

/// Mode (with setuid/setgid/sticky; no umask) and modification time, as on the source.
fn finish(fd: &impl AsFd, meta: &std::fs::Metadata) -> Result<()> {
    nix::sys::stat::fchmod(fd, Mode::from_bits_truncate(meta.mode() & 0o7777)).map_err(sys("chmod"))?;
    let mtime = TimeSpec::new(meta.mtime(), meta.mtime_nsec());
    nix::sys::stat::futimens(fd, &TimeSpec::UTIME_OMIT, &mtime).map_err(sys("set times"))
}

// ---- container -> host ----

/// Copy `src` inside the root filesystem at `rootfs` to host `dst`.
pub(crate) fn copy_out(rootfs: &Path, src: &Path, dst: &Path) -> Result<()> {
    let root = open_dir(rootfs).map_err(sys(rootfs.display()))?;
    // The source's last name is not followed (Docker copies a symlink as a symlink).
    let (parent, name) = match split(src) {
        Ok((p, n)) => (p, Some(n)),
        Err(_) => (src.to_path_buf(), None),
    };
    let pdir = open_in_root(&root, &parent, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty())
        .map_err(sys(format!("container path {}", parent.display())))?;
    let name = name.unwrap_or(OsStr::new("."));
    let st = fstatat(&pdir, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(sys(format!("container path {}", src.display())))?;
    let is_dir = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
    let kind = match std::fs::metadata(dst) {
        Ok(m) if m.is_dir() => Kind::Dir,
        Ok(_) => Kind::File,
        Err(_) => Kind::Missing,
    };
    let to = target(src, is_dir, dst, kind)?;
    if let Some(p) = to.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !p.is_dir() {
            return Err(Error::Invalid(format!("cp: directory {} does not exist", p.display())));
        }
    }
    get(&pdir, name, &to)
}

/// Create host path `to` as a copy of `name` in container directory `dir`.
fn get(dir: &OwnedFd, name: &OsStr, to: &Path) -> Result<()> {
    let shown = || to.display().to_string();
    let st = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(sys(shown()))?;
    let fmt = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    let mode = st.st_mode & 0o7777;
    let mtime = std::time::UNIX_EPOCH + std::time::Duration::new(st.st_mtime as u64, st.st_mtime_nsec as u32);
    let existing = std::fs::symlink_metadata(to).ok();
    if fmt == SFlag::S_IFDIR {
        match &existing {
            Some(m) if m.is_dir() => {}
            Some(_) => return Err(Error::Invalid(format!("cp: cannot copy a directory onto file {}", shown()))),
            None => std::fs::create_dir(to).map_err(io(shown()))?,
        }
        let fd = nix::fcntl::openat(
            dir,
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(sys(shown()))?;
        let mut entries = nix::dir::Dir::from_fd(fd.try_clone().map_err(io(shown()))?).map_err(sys(shown()))?;
        let names: Vec<std::ffi::OsString> = entries
            .iter()
            .flatten()
            .map(|e| std::ffi::OsString::from(<OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(e.file_name().to_bytes())))
            .filter(|n| n != "." && n != "..")
            .collect();
        for n in names {
            get(&fd, &n, &to.join(&n))?;
        }
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode)).map_err(io(shown()))?;
        return File::open(to).and_then(|f| f.set_modified(mtime)).map_err(io(shown()));
    }
    if existing.as_ref().is_some_and(|m| m.is_dir()) {
        return Err(Error::Invalid(format!("cp: cannot overwrite directory {} with a file", shown())));
    }
    if existing.is_some() {
        std::fs::remove_file(to).map_err(io(shown()))?;
    }
    if fmt == SFlag::S_IFLNK {
        let link = nix::fcntl::readlinkat(dir, name).map_err(sys(shown()))?;
        return std::os::unix::fs::symlink(link, to).map_err(io(shown()));
    }
    if fmt != SFlag::S_IFREG {
        return Err(Error::Invalid(format!("cp: {} is not a regular file, directory or symlink", name.to_string_lossy())));
    }
    let (src, size) = open_regular(dir, name)?;
    let mut out = File::options().write(true).create_new(true).open(to).map_err(io(shown()))?;
    // At most the size it had when opened: a file the container keeps growing cannot make the
    // copy (and the name lock it holds) last for ever.
    std::io::copy(&mut std::io::Read::take(src, size), &mut out).map_err(io(shown()))?;
    // The copy belongs to whoever runs cp (root), not to the file's owner in the container:
    // with its set-user/group-ID bits it would be a privileged program on the host that the
    // container chose (cp without ownership clears them too).
    out.set_permissions(std::fs::Permissions::from_mode(mode & !0o6000)).map_err(io(shown()))?;
    out.set_modified(mtime).map_err(io(shown()))
}

/// `name` in container directory `dir`, opened for reading only if it is a regular file, and
/// its size. The type is checked on the inode that was opened (`O_PATH`, no follow), which is
/// then reopened through its descriptor, not on the name: between a stat and an open of the
/// name the container could put a fifo there (the open would block for ever, holding the name
/// lock that `stop` waits for) or a device node (it has CAP_MKNOD; its device cgroup keeps it
/// from opening the host's disk, but the copy runs on the host, outside that cgroup).
fn open_regular(dir: &OwnedFd, name: &OsStr) -> Result<(File, u64)> {
    let shown = || format!("container file {}", name.to_string_lossy());
    let path = nix::fcntl::openat(dir, name, OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(sys(shown()))?;
    let st = nix::sys::stat::fstat(&path).map_err(sys(shown()))?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        return Err(Error::Invalid(format!("cp: {} is not a regular file, directory or symlink", name.to_string_lossy())));
    }
    let file = File::open(format!("/proc/self/fd/{}", path.as_raw_fd())).map_err(io(shown()))?;
    Ok((file, st.st_size as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(src: &str, is_dir: bool, dst: &str, k: Kind) -> Result<PathBuf> {
        target(Path::new(src), is_dir, Path::new(dst), k)
    }

    #[test]
    fn docker_destination_rules() {
        assert_eq!(t("a.txt", false, "/x", Kind::Missing).unwrap(), PathBuf::from("/x"));
        assert_eq!(t("a.txt", false, "/x", Kind::File).unwrap(), PathBuf::from("/x"));
        assert_eq!(t("d/a.txt", false, "/x", Kind::Dir).unwrap(), PathBuf::from("/x/a.txt"));
        assert!(t("a.txt", false, "/x/", Kind::Missing).is_err(), "a missing directory");
        assert!(t("a.txt/", false, "/x", Kind::Missing).is_err(), "a file named as a directory");
        assert_eq!(t("svc", true, "/srv", Kind::Missing).unwrap(), PathBuf::from("/srv"));
        assert_eq!(t("ex/svc", true, "/srv", Kind::Dir).unwrap(), PathBuf::from("/srv/svc"));
        assert_eq!(t("ex/svc/.", true, "/srv", Kind::Dir).unwrap(), PathBuf::from("/srv"));
        assert!(t("svc", true, "/etc/hosts", Kind::File).is_err());
    }

    #[test]
    fn split_refuses_nameless_paths() {
        assert_eq!(split(Path::new("/a/b")).unwrap(), (PathBuf::from("/a"), OsStr::new("b")));
        assert_eq!(split(Path::new("/b")).unwrap(), (PathBuf::from("/"), OsStr::new("b")));
        for p in ["/", "/a/..", ""] {
            assert!(split(Path::new(p)).is_err(), "{p}");
        }
    }

    /// A name the container may have swapped after `get` looked at it: only a regular file is
    /// opened; a fifo must not block the copy and a device node must not be read.
    #[test]
    fn only_regular_files_are_opened() {
        let base = std::env::temp_dir().join(format!("cnd-cp-special-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        std::fs::write(base.join("file"), "12345").unwrap();
        std::os::unix::fs::symlink("file", base.join("link")).unwrap();
        nix::unistd::mkfifo(&base.join("fifo"), Mode::from_bits_truncate(0o644)).unwrap();
        let dev = nix::sys::stat::mknod(
            &base.join("null"),
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(1, 3),
        );
        let dir = open_dir(&base).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let r = |n: &str| open_regular(&dir, OsStr::new(n)).map(|(_, size)| size).map_err(|e| e.to_string());
            let _ = tx.send([r("file"), r("link"), r("fifo"), r("null")]);
        });
        let [file, link, fifo, null] = rx.recv_timeout(std::time::Duration::from_secs(10)).expect("opening a fifo blocked");
        assert_eq!(file, Ok(5));
        assert!(link.unwrap_err().contains("not a regular file"));
        assert!(fifo.unwrap_err().contains("not a regular file"));
        if dev.is_ok() {
            assert!(null.unwrap_err().contains("not a regular file"));
        }
        std::fs::remove_dir_all(&base).unwrap();
    }

    /// Both directions on plain directories: a tree with modes, a symlink, and an escaping
    /// symlink on the container side that must be resolved inside the root.
    #[test]
    fn round_trip_confined() {
        let base = std::env::temp_dir().join(format!("cnd-cp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let (root, host) = (base.join("root"), base.join("host"));
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(host.join("svc/sub")).unwrap();
        std::fs::write(host.join("svc/run.sh"), "echo hi\n").unwrap();
        std::fs::set_permissions(host.join("svc/run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(host.join("svc/sub/data"), "x").unwrap();
        std::os::unix::fs::symlink("run.sh", host.join("svc/link")).unwrap();
        // In the "container": /escape points at the host's base directory, by absolute path.
        std::os::unix::fs::symlink(&host, root.join("escape")).unwrap();

        copy_in(&root, &host.join("svc"), Path::new("/srv")).unwrap();
        let m = std::fs::metadata(root.join("srv/run.sh")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o755);
        assert_eq!(std::fs::read_link(root.join("srv/link")).unwrap(), PathBuf::from("run.sh"));
        assert_eq!(std::fs::read_to_string(root.join("srv/sub/data")).unwrap(), "x");

        // Through the escaping link: resolved as the container's own path, which is missing.
        let e = copy_in(&root, &host.join("svc/run.sh"), Path::new("/escape/svc/pwned")).unwrap_err();
        assert!(e.to_string().contains("container directory"), "{e}");
        assert!(!host.join("svc/pwned").exists(), "wrote through a symlink to the host");
        // Out again, keeping the mode; copying the link itself, not what it points to.
        copy_out(&root, Path::new("/srv"), &host.join("back")).unwrap();
        assert_eq!(std::fs::metadata(host.join("back/run.sh")).unwrap().mode() & 0o7777, 0o755);
        // A set-ID program made in the container is no set-ID program on the host.
        std::fs::set_permissions(root.join("srv/run.sh"), std::fs::Permissions::from_mode(0o6755)).unwrap();
        copy_out(&root, Path::new("/srv/run.sh"), &host.join("suid")).unwrap();
        assert_eq!(std::fs::metadata(host.join("suid")).unwrap().mode() & 0o7777, 0o755);
        copy_out(&root, Path::new("/escape"), &host.join("esc")).unwrap();
        assert!(std::fs::symlink_metadata(host.join("esc")).unwrap().file_type().is_symlink());
        assert!(copy_out(&root, Path::new("/escape/svc/run.sh"), &host.join("x")).is_err());
        assert!(copy_out(&root, Path::new("/missing"), &host.join("y")).is_err());
        std::fs::remove_dir_all(&base).unwrap();
    }
}

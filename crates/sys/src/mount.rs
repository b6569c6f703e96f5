//! Mounts: mount(2)/umount2(2), pivot_root, and path resolution confined to a root directory
//! (openat2 RESOLVE_IN_ROOT), so a symlink inside a container image can never send a mount or a
//! mkdir outside of it.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
pub use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::Mode;

use crate::EXPLAIN;

/// mount(2) with an explain event. `shown` is the path the user knows (e.g. the container path)
/// when `target` is a /proc/self/fd magic link.
pub fn mount(
    source: Option<&str>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
    shown: &Path,
) -> nix::Result<()> {
    tracing::debug!(target: EXPLAIN, step = "mount", source = source.unwrap_or(""), target = %shown.display(),
        fstype = fstype.unwrap_or(""), flags = ?flags, data = data.unwrap_or(""));
    nix::mount::mount(source, target, fstype, flags, data)
}

/// umount2(2).
pub fn umount(target: &Path, flags: MntFlags) -> nix::Result<()> {
    tracing::debug!(target: EXPLAIN, step = "umount2", target = %target.display(), flags = ?flags);
    nix::mount::umount2(target, flags)
}

/// The /proc/self/fd path of an fd: mounting onto it mounts onto exactly the resolved inode.
pub fn fd_path(fd: &impl AsRawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;

/// openat2(2) with RESOLVE_IN_ROOT: `path` is resolved as if `root` were "/", symlinks included.
pub fn open_in_root(root: &impl AsFd, path: &Path, flags: OFlag, mode: Mode) -> nix::Result<OwnedFd> {
    let rel = relative(path);
    let c = CString::new(rel.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)?;
    let how = OpenHow {
        flags: (flags | OFlag::O_CLOEXEC).bits() as u64,
        mode: if flags.contains(OFlag::O_CREAT) { mode.bits() as u64 } else { 0 },
        resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: valid NUL-terminated path and open_how struct of the size we pass.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_fd().as_raw_fd(),
            c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    let fd = Errno::result(rc)? as RawFd;
    // SAFETY: a new fd from the kernel.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `path` without its leading "/" and with "." removed, for *at() calls.
fn relative(path: &Path) -> PathBuf {
    let rel: PathBuf = path.components().filter(|c| !matches!(c, Component::RootDir | Component::CurDir)).collect();
    if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    }
}

/// What to create at the end of a path when it is missing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Leaf {
    Dir,
    File,
}

/// mkdir -p inside `root` (confined), then open the leaf as O_PATH. Missing directories get
/// `mode`; a missing leaf file is created empty (a bind-mount target for a file).
pub fn ensure_in_root(root: &impl AsFd, path: &Path, leaf: Leaf, mode: Mode) -> nix::Result<OwnedFd> {
    let rel = relative(path);
    let mut done = PathBuf::new();
    let comps: Vec<_> = rel.components().collect();
    for (i, comp) in comps.iter().enumerate() {
        let parent = done.clone();
        done.push(comp);
        let last = i + 1 == comps.len();
        match open_in_root(root, &done, OFlag::O_PATH, Mode::empty()) {
            Ok(fd) if last => return Ok(fd),
            Ok(_) => continue,
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        let dir = open_in_root(root, &parent, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())?;
        let name = comp.as_os_str();
        let res = if last && leaf == Leaf::File {
            nix::fcntl::openat(&dir, name, OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::from_bits_truncate(0o644))
                .map(drop)
        } else {
            nix::sys::stat::mkdirat(&dir, name, mode)
        };
        match res {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e),
        }
    }
    open_in_root(root, &rel, OFlag::O_PATH, Mode::empty())
}

/// Open a directory (O_PATH) for use as a root or a mount target.
pub fn open_dir(path: &Path) -> nix::Result<OwnedFd> {
    nix::fcntl::open(path, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
}

/// Make `new_root` the root of the current mount namespace and detach the old root (runc's
/// pivot_root(".", ".") trick: no put_old directory needed inside the new root).
pub fn pivot_root(new_root: &Path) -> nix::Result<()> {
    tracing::debug!(target: EXPLAIN, step = "pivot_root", new_root = %new_root.display());
    let old = nix::fcntl::open("/", OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    let new = nix::fcntl::open(new_root, OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    nix::unistd::fchdir(&new)?;
    nix::unistd::pivot_root(".", ".")?;
    nix::unistd::fchdir(&old)?;
    // The old root stays stacked under "."; keep its unmount from propagating to the host.
    nix::mount::mount(None::<&str>, ".", None::<&str>, MsFlags::MS_SLAVE | MsFlags::MS_REC, None::<&str>)?;
    umount(Path::new("."), MntFlags::MNT_DETACH)?;
    nix::unistd::chdir("/")
}

/// Without pivot_root (e.g. a ramfs root): move the rootfs over / and chroot into it.
pub fn move_root(new_root: &Path) -> nix::Result<()> {
    tracing::debug!(target: EXPLAIN, step = "chroot (MS_MOVE, no pivot_root)", new_root = %new_root.display());
    nix::unistd::chdir(new_root)?;
    nix::mount::mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)?;
    nix::unistd::chroot(".")?;
    nix::unistd::chdir("/")
}

/// Read-only remount of an existing mount point, keeping its other per-mount flags (the kernel
/// refuses to drop nosuid/nodev/noexec/atime flags that are locked in a user namespace).
pub fn remount_ro(target: &Path, shown: &Path) -> nix::Result<()> {
    let st = nix::sys::statvfs::statvfs(target)?;
    let mut flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
    flags |= locked_flags(st.flags());
    mount(None, target, None, flags, None, shown)
}

/// The statvfs flags that must be repeated on a bind remount.
pub fn locked_flags(f: nix::sys::statvfs::FsFlags) -> MsFlags {
    use nix::sys::statvfs::FsFlags as F;
    let mut m = MsFlags::empty();
    for (s, ms) in [
        (F::ST_NOSUID, MsFlags::MS_NOSUID),
        (F::ST_NODEV, MsFlags::MS_NODEV),
        (F::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (F::ST_NOATIME, MsFlags::MS_NOATIME),
        (F::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (F::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(s) {
            m |= ms;
        }
    }
    m
}

/// mknod(2) relative to a directory fd.
pub fn mknod_at(dir: &impl AsFd, name: &str, kind: nix::sys::stat::SFlag, mode: Mode, dev: u64) -> nix::Result<()> {
    tracing::debug!(target: EXPLAIN, step = "mknod", name, kind = ?kind, mode = mode.bits(), major = libc::major(dev), minor = libc::minor(dev));
    nix::sys::stat::mknodat(dir, name, kind, mode, dev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_strips_root() {
        assert_eq!(relative(Path::new("/a/./b")), PathBuf::from("a/b"));
        assert_eq!(relative(Path::new("/")), PathBuf::from("."));
    }

    #[test]
    fn symlinks_cannot_escape_the_root() {
        let dir = std::env::temp_dir().join(format!("cnd-sys-root-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("rootfs")).unwrap();
        std::os::unix::fs::symlink("/../../..", dir.join("rootfs/evil")).unwrap();
        let root = open_dir(&dir.join("rootfs")).unwrap();
        let fd = ensure_in_root(&root, Path::new("/evil/made/here"), Leaf::Dir, Mode::from_bits_truncate(0o755)).unwrap();
        drop(fd);
        assert!(dir.join("rootfs/made/here").is_dir(), "created inside the root");
        assert!(!Path::new("/made").exists());
        let f = ensure_in_root(&root, Path::new("/evil/file"), Leaf::File, Mode::empty()).unwrap();
        drop(f);
        assert!(dir.join("rootfs/file").is_file());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

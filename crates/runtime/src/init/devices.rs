//! /dev inside the container: the default device nodes, `linux.devices`, and the standard
//! symlinks. In a user namespace mknod is not allowed, so host nodes are bind-mounted instead.

use std::os::fd::OwnedFd;
use std::path::Path;

use conductor_sys::mount::{self as m, Leaf, MsFlags};
use nix::sys::stat::{Mode, SFlag};
use oci_spec::runtime::{LinuxDeviceType, Spec};

use crate::error::{Context, Result};

struct Node<'a> {
    path: &'a Path,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
}

const DEFAULTS: [(&str, u64, u64); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

const LINKS: [(&str, &str); 5] = [
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
    ("pts/ptmx", "/dev/ptmx"),
];

pub fn create(root: &OwnedFd, spec: &Spec, dev_bound: bool, in_userns: bool) -> Result<()> {
    if !dev_bound {
        for (p, major, minor) in DEFAULTS {
            let node = Node { path: Path::new(p), kind: SFlag::S_IFCHR, major, minor, mode: 0o666, uid: 0, gid: 0 };
            make(root, &node, in_userns)?;
        }
        for (target, link) in LINKS {
            symlink(root, target, link)?;
        }
        if Path::new("/proc/kcore").exists() {
            symlink(root, "/proc/kcore", "/dev/core")?;
        }
    }
    let devices = spec.linux().as_ref().and_then(|l| l.devices().as_ref());
    for d in devices.into_iter().flatten() {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => continue,
        };
        let node = Node {
            path: d.path(),
            kind,
            major: d.major() as u64,
            minor: d.minor() as u64,
            mode: d.file_mode().unwrap_or(0o666),
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        };
        make(root, &node, in_userns)?;
    }
    Ok(())
}

fn make(root: &OwnedFd, n: &Node, in_userns: bool) -> Result<()> {
    let what = || format!("device {}", n.path.display());
    let parent = n.path.parent().unwrap_or(Path::new("/"));
    let name = n.path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let dir = m::ensure_in_root(root, parent, Leaf::Dir, Mode::from_bits_truncate(0o755)).ctx(what)?;
    // Replace whatever the image has at that path.
    let _ = nix::unistd::unlinkat(&dir, name.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir);
    if in_userns {
        let target = m::ensure_in_root(root, n.path, Leaf::File, Mode::empty()).ctx(what)?;
        return m::mount(Some(&n.path.to_string_lossy()), &m::fd_path(&target), None, MsFlags::MS_BIND, None, n.path).ctx(what);
    }
    let dev = libc::makedev(n.major as u32, n.minor as u32);
    m::mknod_at(&dir, &name, n.kind, Mode::from_bits_truncate(n.mode & 0o7777), dev).ctx(what)?;
    let path = format!("/proc/self/fd/{}/{name}", std::os::fd::AsRawFd::as_raw_fd(&dir));
    // mknod applies the umask; set the mode exactly.
    nix::sys::stat::fchmodat(
        nix::fcntl::AT_FDCWD,
        path.as_str(),
        Mode::from_bits_truncate(n.mode & 0o7777),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .ctx(what)?;
    nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        path.as_str(),
        Some(n.uid.into()),
        Some(n.gid.into()),
        nix::fcntl::AtFlags::empty(),
    )
    .ctx(what)
}

fn symlink(root: &OwnedFd, target: &str, link: &str) -> Result<()> {
    let dir =
        m::ensure_in_root(root, Path::new("/dev"), Leaf::Dir, Mode::from_bits_truncate(0o755)).ctx(|| "mkdir /dev".into())?;
    let name = &link["/dev/".len()..];
    match nix::unistd::symlinkat(target, &dir, name) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(()),
        Err(e) => Err(e).ctx(|| format!("symlink {link}")),
    }
}

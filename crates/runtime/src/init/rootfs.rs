//! The container's filesystem view, built inside its new mount namespace: propagation, the
//! rootfs bind, every configured mount (confined to the rootfs), /dev, then pivot_root and the
//! masked and read-only paths.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use conductor_sys::mount::{self as m, Leaf, MsFlags};
use nix::errno::Errno;
use nix::sys::stat::Mode;
use oci_spec::runtime::{Mount, Spec};

use super::mounts::{propagation, Options};
use crate::error::{Context, Error, Result};

/// linux.rootfsPropagation as mount flags; None when not set.
fn root_propagation(spec: &Spec) -> Result<Option<MsFlags>> {
    match spec.linux().as_ref().and_then(|l| l.rootfs_propagation().as_deref()) {
        None | Some("") => Ok(None),
        Some(p) => {
            propagation(p).map(Some).ok_or_else(|| Error::Invalid(format!("linux.rootfsPropagation: unknown value {p:?}")))
        }
    }
}

/// Everything before pivot_root. The runtime moves init into its cgroup while init works on
/// its mounts, because that move can wait for an RCU grace period (the largest part of a
/// create). With `join_cgroup`, it is called before the first cgroup mount (or at the end);
/// without, cgroup mounts are left to [`mount_cgroups`] after pivot_root.
pub fn prepare(
    spec: &Spec,
    rootfs: &Path,
    in_userns: bool,
    own: Option<&OwnCgroups>,
    mut join_cgroup: Option<&mut dyn FnMut() -> Result<()>>,
) -> Result<()> {
    if let Some(label) = spec.linux().as_ref().and_then(|l| l.mount_label().as_deref()).filter(|l| !l.is_empty()) {
        tracing::warn!("linux.mountLabel {label:?} ignored: SELinux is not enabled on this host");
    }
    let prop = root_propagation(spec)?.unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
    // Stop our mounts from reaching the host (and, with rslave, still see host unmounts).
    m::mount(None, Path::new("/"), None, prop, None, Path::new("/")).ctx(|| "make / propagation".into())?;
    // pivot_root refuses a shared parent, and the rootfs bind must not propagate anywhere.
    parent_mount_private(rootfs)?;
    // pivot_root needs the new root to be a mount point.
    m::mount(Some(&rootfs.to_string_lossy()), rootfs, None, MsFlags::MS_BIND | MsFlags::MS_REC, None, rootfs)
        .ctx(|| format!("bind rootfs {}", rootfs.display()))?;
    let root = m::open_dir(rootfs).ctx(|| format!("open rootfs {}", rootfs.display()))?;

    let mounts = spec.mounts().as_deref().unwrap_or(&[]);
    let mut joined = false;
    for (i, mnt) in mounts.iter().enumerate() {
        if is_cgroup(mnt) {
            match join_cgroup.as_mut() {
                None => continue,
                Some(join) if !joined => {
                    join()?;
                    joined = true;
                }
                Some(_) => {}
            }
        }
        mount_one(&root, mnt, in_userns, own)
            .map_err(|e| Error::Init(format!("mounts[{i}] {}: {e}", mnt.destination().display())))?;
    }
    if let Some(join) = join_cgroup.filter(|_| !joined) {
        join()?;
    }
    let dev_bound = mounts.iter().any(|mt| mt.destination() == Path::new("/dev") && is_bind(mt));
    super::devices::create(&root, spec, dev_bound, in_userns)?;
    Ok(())
}

/// Make the mount that holds `path` private: MS_PRIVATE on each ancestor until one is a mount
/// point (EINVAL means "not a mount point", as runc walks it).
fn parent_mount_private(path: &Path) -> Result<()> {
    let mut p = path;
    loop {
        match m::mount(None, p, None, MsFlags::MS_PRIVATE, None, p) {
            Err(Errno::EINVAL) if p != Path::new("/") => p = p.parent().unwrap_or(Path::new("/")),
            r => return r.ctx(|| format!("make parent mount of {} private", path.display())),
        }
    }
}

/// After pivot_root: an explicit linux.rootfsPropagation applies to the new root (before it, a
/// shared new root makes pivot_root fail).
pub fn apply_root_propagation(spec: &Spec) -> Result<()> {
    match root_propagation(spec)? {
        Some(prop) => m::mount(None, Path::new("/"), None, prop, None, Path::new("/")).ctx(|| "linux.rootfsPropagation".into()),
        None => Ok(()),
    }
}

fn is_cgroup(mt: &Mount) -> bool {
    matches!(mt.typ().as_deref(), Some("cgroup" | "cgroup2"))
}

/// After pivot_root: the cgroup mounts [`prepare`] left out.
pub fn mount_cgroups(spec: &Spec, in_userns: bool, own: Option<&OwnCgroups>) -> Result<()> {
    let root = m::open_dir(Path::new("/")).ctx(|| "open /".into())?;
    for (i, mnt) in spec.mounts().iter().flatten().enumerate().filter(|(_, mt)| is_cgroup(mt)) {
        mount_one(&root, mnt, in_userns, own)
            .map_err(|e| Error::Init(format!("mounts[{i}] {}: {e}", mnt.destination().display())))?;
    }
    Ok(())
}

fn is_bind(mt: &Mount) -> bool {
    mt.typ().as_deref() == Some("bind") || mt.options().iter().flatten().any(|o| o == "bind" || o == "rbind")
}

fn mount_one(root: &OwnedFd, mnt: &Mount, in_userns: bool, own: Option<&OwnCgroups>) -> std::result::Result<(), String> {
    let opts = Options::parse(mnt.options().as_deref().unwrap_or(&[]))?;
    let dest = mnt.destination();
    let typ = mnt.typ().as_deref().unwrap_or("");
    let bind = opts.bind || typ == "bind";
    let source = mnt.source().as_ref().map(|s| s.to_string_lossy().into_owned());
    let shown = Path::new(dest);

    if typ == "cgroup" || typ == "cgroup2" {
        return mount_cgroup(root, dest, &opts, own).map_err(|e| e.to_string());
    }
    let leaf = match (&source, bind) {
        (Some(src), true) if !Path::new(src).is_dir() => Leaf::File,
        _ => Leaf::Dir,
    };
    let target =
        m::ensure_in_root(root, dest, leaf, Mode::from_bits_truncate(0o755)).map_err(|e| format!("create mount point: {e}"))?;
    let tpath = m::fd_path(&target);
    if bind {
        let src = source.ok_or("bind mount without source")?;
        let rec = opts.flags & MsFlags::MS_REC;
        m::mount(Some(&src), &tpath, None, MsFlags::MS_BIND | rec, None, shown).map_err(|e| format!("bind {src}: {e}"))?;
        // Per-mount flags on a bind need a remount; reopen so we address the new mount.
        let extra = opts.flags & !(MsFlags::MS_REC | MsFlags::MS_BIND | MsFlags::MS_REMOUNT);
        if !extra.is_empty() {
            let target = m::ensure_in_root(root, dest, leaf, Mode::empty()).map_err(|e| e.to_string())?;
            let tpath = m::fd_path(&target);
            let st = nix::sys::statvfs::statvfs(&tpath).map_err(|e| e.to_string())?;
            let keep = m::locked_flags(st.flags()) & !opts.cleared;
            m::mount(None, &tpath, None, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | extra | keep, None, shown)
                .map_err(|e| format!("remount {extra:?}: {e}"))?;
        }
    } else {
        let data = opts.data();
        let src = source.unwrap_or_else(|| typ.to_string());
        match m::mount(Some(&src), &tpath, Some(typ), opts.flags, data.as_deref(), shown) {
            // sysfs needs a network namespace we own; without one, expose the host's read-only.
            Err(Errno::EPERM) if typ == "sysfs" && in_userns => {
                m::mount(Some("/sys"), &tpath, None, MsFlags::MS_BIND | MsFlags::MS_REC, None, shown)
                    .map_err(|e| e.to_string())?;
            }
            r => r.map_err(|e| format!("mount {typ}: {e}"))?,
        }
    }
    for p in &opts.propagation {
        let target = m::ensure_in_root(root, dest, leaf, Mode::empty()).map_err(|e| e.to_string())?;
        m::mount(None, &m::fd_path(&target), None, *p, None, shown).map_err(|e| format!("propagation {p:?}: {e}"))?;
    }
    Ok(())
}

/// A cgroup filesystem for the container: cgroup2 on a unified host; on v1, a tmpfs with one
/// mount per hierarchy (inside a cgroup namespace each shows the container's cgroup as root).
/// The container's own cgroup directories (by hierarchy key, as `Cgroup::paths`), which are
/// bind-mounted when the container has no cgroup namespace: a fresh cgroup mount would show the
/// host's whole tree.
pub type OwnCgroups = std::collections::BTreeMap<String, PathBuf>;

fn mount_cgroup(root: &OwnedFd, dest: &Path, opts: &Options, own: Option<&OwnCgroups>) -> Result<()> {
    let flags = opts.flags | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let mut mp = MountPoints { root, held: Vec::new() };
    match conductor_cgroups::detect()? {
        conductor_cgroups::Hierarchy::V2 { .. } => mp.cgroup(dest, "cgroup2", None, own.and_then(|o| o.get("")), flags)?,
        conductor_cgroups::Hierarchy::V1 { mounts, .. } => {
            let tmpfs = mp.at(dest)?;
            m::mount(Some("tmpfs"), &tmpfs, Some("tmpfs"), flags & !MsFlags::MS_RDONLY, Some("mode=755"), dest)
                .ctx(|| "mount cgroup tmpfs".into())?;
            for h in mounts {
                let name = h.mountpoint.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let key = h.controllers.join(",");
                let named = h.controllers.iter().any(|c| c.starts_with("name="));
                let data = if named { format!("none,{key}") } else { key.clone() };
                mp.cgroup(&dest.join(&name), "cgroup", Some(&data), own.and_then(|o| o.get(&key)), flags)?;
            }
            if flags.contains(MsFlags::MS_RDONLY) {
                let p = mp.at(dest)?;
                m::mount(None, &p, None, MsFlags::MS_REMOUNT | MsFlags::MS_BIND | flags, None, dest)
                    .ctx(|| "remount cgroup tmpfs ro".into())?;
            }
        }
    }
    Ok(())
}

/// Mount points inside the rootfs, addressed through /proc/self/fd: each fd stays open while
/// its path may be used.
struct MountPoints<'a> {
    root: &'a OwnedFd,
    held: Vec<OwnedFd>,
}

impl MountPoints<'_> {
    fn at(&mut self, p: &Path) -> Result<PathBuf> {
        let fd = m::ensure_in_root(self.root, p, Leaf::Dir, Mode::from_bits_truncate(0o755))
            .ctx(|| format!("mkdir {}", p.display()))?;
        let path = m::fd_path(&fd);
        self.held.push(fd);
        Ok(path)
    }

    /// One hierarchy at `target`: a new cgroup filesystem, or a bind of our own directory.
    fn cgroup(&mut self, target: &Path, fstype: &str, data: Option<&str>, own: Option<&PathBuf>, flags: MsFlags) -> Result<()> {
        let mp = self.at(target)?;
        let Some(src) = own else {
            return m::mount(Some(fstype), &mp, Some(fstype), flags, data, target)
                .ctx(|| format!("mount {fstype} {}", data.unwrap_or("")));
        };
        m::mount(Some(&src.to_string_lossy()), &mp, None, MsFlags::MS_BIND | MsFlags::MS_REC, None, target)
            .ctx(|| format!("bind {}", src.display()))?;
        let mp = self.at(target)?;
        m::mount(None, &mp, None, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags, None, target).ctx(|| "remount cgroup".into())
    }
}

/// pivot_root (or MS_MOVE + chroot with --no-pivot) into the prepared rootfs.
pub fn enter(rootfs: &Path, no_pivot: bool) -> Result<()> {
    if no_pivot {
        m::move_root(rootfs).ctx(|| "move root".into())
    } else {
        m::pivot_root(rootfs).ctx(|| format!("pivot_root {}", rootfs.display()))
    }
}

/// A missing process.cwd is created (as runc does), before the root may turn read-only. After
/// pivot_root every path, symlinks included, resolves inside the container.
pub fn make_cwd(cwd: &Path) -> Result<()> {
    std::fs::create_dir_all(cwd).ctx(|| format!("process.cwd {}", cwd.display()))
}

/// After pivot_root: read-only and masked paths, then a read-only root if asked.
pub fn finish(spec: &Spec, before_read_only_root: &mut dyn FnMut() -> Result<()>) -> Result<()> {
    let linux = spec.linux().as_ref();
    for p in linux.and_then(|l| l.readonly_paths().as_ref()).into_iter().flatten() {
        readonly(Path::new(p))?;
    }
    for p in linux.and_then(|l| l.masked_paths().as_ref()).into_iter().flatten() {
        mask(Path::new(p))?;
    }
    before_read_only_root()?;
    if spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false) {
        m::remount_ro(Path::new("/"), Path::new("/")).ctx(|| "remount / read-only".into())?;
    }
    Ok(())
}

fn readonly(p: &Path) -> Result<()> {
    match m::mount(Some(&p.to_string_lossy()), p, None, MsFlags::MS_BIND | MsFlags::MS_REC, None, p) {
        Err(Errno::ENOENT) => return Ok(()),
        r => r.ctx(|| format!("readonlyPaths {}", p.display()))?,
    }
    m::remount_ro(p, p).ctx(|| format!("readonlyPaths {}", p.display()))
}

fn mask(p: &Path) -> Result<()> {
    let res = match std::fs::metadata(p) {
        Err(_) => return Ok(()),
        Ok(md) if md.is_dir() => m::mount(Some("tmpfs"), p, Some("tmpfs"), MsFlags::MS_RDONLY, None, p),
        Ok(_) => m::mount(Some("/dev/null"), p, None, MsFlags::MS_BIND, None, p),
    };
    res.ctx(|| format!("maskedPaths {}", p.display()))
}

//! The overlay mount plan: a container's rootfs is an overlayfs of the image's layers (read
//! only, shared by every container of the image) under a per-container upper and work dir, so
//! creating a container copies nothing, whatever the image's size.

use std::path::{Path, PathBuf};

use conductor_sys::mount::{MntFlags, MsFlags};
use nix::errno::Errno;

use crate::error::{Context, Error, Result};
use crate::image::Image;

/// Mount options are one page at most.
const MAX_OPTIONS: usize = 4095;

/// Mount `image` at `target` as overlayfs: its layers as lowerdirs, `upper` taking the
/// container's writes, `work` overlayfs's scratch dir (on the same filesystem as `upper`).
/// `upper`, `work` and `target` are created if missing.
pub fn mount_rootfs(image: &Image, upper: &Path, work: &Path, target: &Path) -> Result<()> {
    for d in [upper, work, target] {
        std::fs::create_dir_all(d).ctx(|| format!("create {}", d.display()))?;
    }
    let data = options(image.layers(), upper, work)?;
    conductor_sys::mount::mount(Some("overlay"), target, Some("overlay"), MsFlags::empty(), Some(&data), target)
        .map_err(|e| mount_error(image, target, e))
}

/// Unmount a rootfs mounted by [`mount_rootfs`]. A busy mount (a process still has a file
/// open) is detached lazily; a target that is not mounted is fine (cleanup after a crash).
pub fn unmount_rootfs(target: &Path) -> Result<()> {
    match conductor_sys::mount::umount(target, MntFlags::empty()) {
        Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => Ok(()),
        Err(Errno::EBUSY) => {
            conductor_sys::mount::umount(target, MntFlags::MNT_DETACH).ctx(|| format!("unmount {}", target.display()))
        }
        Err(e) => Err(e).ctx(|| format!("unmount {}", target.display())),
    }
}

/// The overlayfs mount data: `lowerdir=top:...:bottom,upperdir=..,workdir=..`. `layers` are
/// bottom-most first, as an image lists them.
pub fn options(layers: &[PathBuf], upper: &Path, work: &Path) -> Result<String> {
    if layers.is_empty() {
        return Err(Error::Invalid("an image without layers cannot be mounted".into()));
    }
    let mut lower = Vec::new();
    for l in layers.iter().rev() {
        lower.push(plain(l)?);
    }
    let data = format!("lowerdir={},upperdir={},workdir={}", lower.join(":"), plain(upper)?, plain(work)?);
    if data.len() > MAX_OPTIONS {
        return Err(Error::Invalid(format!("overlay options for {} layers exceed one page", layers.len())));
    }
    Ok(data)
}

/// A path as it can appear in overlay options: absolute, UTF-8, without the separators ',' and
/// ':' or the escape '\'.
fn plain(p: &Path) -> Result<&str> {
    let s = p.to_str().filter(|s| s.starts_with('/') && !s.contains([',', ':', '\\']));
    s.ok_or_else(|| Error::Invalid(format!("{}: overlay paths must be absolute, without ',', ':' or '\\'", p.display())))
}

fn mount_error(image: &Image, target: &Path, e: Errno) -> Error {
    let hint = match e {
        Errno::EINVAL => " (upper and work dirs must be on one filesystem that supports overlay upper dirs)",
        Errno::ENODEV => " (overlayfs is not available: modprobe overlay)",
        _ => "",
    };
    Error::Sys { what: format!("mount image {:?} at {}{hint}", image.name, target.display()), source: e }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowerdirs_top_most_first() {
        let layers = [PathBuf::from("/s/img/layers/0"), PathBuf::from("/s/img/layers/1")];
        let o = options(&layers, Path::new("/c/upper"), Path::new("/c/work")).unwrap();
        assert_eq!(o, "lowerdir=/s/img/layers/1:/s/img/layers/0,upperdir=/c/upper,workdir=/c/work");
        let one = options(&layers[..1], Path::new("/c/upper"), Path::new("/c/work")).unwrap();
        assert_eq!(one, "lowerdir=/s/img/layers/0,upperdir=/c/upper,workdir=/c/work");
    }

    #[test]
    fn refuses_paths_that_break_the_options() {
        let up = Path::new("/c/upper");
        for bad in ["/a,b", "/a:b", "relative", "/a\\b"] {
            let err = options(&[PathBuf::from(bad)], up, up).unwrap_err().to_string();
            assert!(err.starts_with(bad), "{err}");
        }
        assert!(options(&[], up, up).is_err());
        let many: Vec<PathBuf> = (0..200).map(|i| PathBuf::from(format!("/var/lib/conductor/images/x/layers/{i}"))).collect();
        assert!(options(&many, up, up).unwrap_err().to_string().contains("one page"));
    }
}

//! Shared fixtures of the image tests: a root check, a self-removing temp dir, and a busybox
//! rootfs made from the host's /bin/busybox (Debian's busybox-static).

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use nix::sys::stat::{Mode, SFlag};

static N: AtomicU32 = AtomicU32::new(0);

/// True when running as root; otherwise prints why the test is skipped.
pub fn root(test: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("skipping {test}: needs root (ownership, device nodes, mounts)");
    }
    root
}

/// A temp directory, removed on drop (after checking nothing is mounted in it).
pub struct Tmp(pub PathBuf);

impl Tmp {
    pub fn new(tag: &str) -> Tmp {
        let n = N.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("cnd-image-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let left = mounts_under(&self.0);
        if !left.is_empty() && !std::thread::panicking() {
            panic!("mounts left behind: {left:?}");
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Mount points under `dir`.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let prefix = dir.to_str().unwrap();
    info.lines().filter_map(|l| l.split(' ').nth(4)).filter(|m| m.starts_with(prefix)).map(String::from).collect()
}

/// A busybox rootfs with one of each kind of entry an import must keep.
pub fn busybox_rootfs(root: &Path) {
    let bb = Path::new("/bin/busybox");
    assert!(bb.exists(), "/bin/busybox missing: install Debian's busybox-static");
    for d in ["bin", "etc", "dev", "root", "usr/bin", "proc", "sys"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy(bb, root.join("bin/busybox")).unwrap();
    let list = Command::new(bb).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::os::unix::fs::symlink("/proc/self/mounts", root.join("etc/mtab")).unwrap();
    // A hard link, a setuid file owned by someone else, a sticky dir, a private dir.
    std::fs::hard_link(root.join("bin/busybox"), root.join("usr/bin/busybox-hard")).unwrap();
    std::fs::write(root.join("usr/bin/suid"), "#!/bin/sh\n").unwrap();
    std::os::unix::fs::chown(root.join("usr/bin/suid"), Some(1000), Some(1000)).unwrap();
    chmod(&root.join("usr/bin/suid"), 0o4755);
    std::fs::create_dir(root.join("tmp")).unwrap();
    chmod(&root.join("tmp"), 0o1777);
    chmod(&root.join("root"), 0o700);
    // Device nodes and a fifo.
    let dev = std::fs::File::open(root.join("dev")).unwrap();
    let rw = Mode::from_bits_truncate(0o666);
    conductor_sys::mount::mknod_at(&dev, "null", SFlag::S_IFCHR, rw, nix::sys::stat::makedev(1, 3)).unwrap();
    conductor_sys::mount::mknod_at(&dev, "loop9", SFlag::S_IFBLK, Mode::from_bits_truncate(0o660), nix::sys::stat::makedev(7, 9))
        .unwrap();
    conductor_sys::mount::mknod_at(&dev, "initctl", SFlag::S_IFIFO, Mode::from_bits_truncate(0o600), 0).unwrap();
    chmod(&root.join("dev/null"), 0o666);
}

pub fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A tarball of `root` made by GNU tar (numeric owners), gzipped when `gzip`.
pub fn tarball(root: &Path, out: &Path, gzip: bool) {
    let mut c = Command::new("tar");
    c.args(["--numeric-owner", "-C"]).arg(root).arg(if gzip { "-czf" } else { "-cf" }).arg(out).arg(".");
    let st = c.status().unwrap();
    assert!(st.success(), "tar failed");
}

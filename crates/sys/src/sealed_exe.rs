//! Protection against overwriting the runtime binary through /proc/self/exe (CVE-2019-5736).
//!
//! A container process can reach the runtime's executable while the runtime works inside the
//! container (or when the container's program is `/proc/self/exe` itself). runc and crun defend
//! by copying the binary into a sealed memfd, which costs its size in memory per container. We
//! re-execute from a *detached read-only bind mount* of our own binary instead: the file is the
//! same page-cache object (no copy, no memory cost), but every path to it, including
//! /proc/PID/exe, lies on a read-only mount, so opening it for writing fails with EROFS. The mount
//! belongs to no namespace and disappears with the last process that maps it.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

const OPEN_TREE_CLONE: u32 = 1;
const OPEN_TREE_CLOEXEC: u32 = libc::O_CLOEXEC as u32;
const AT_EMPTY_PATH: u32 = libc::AT_EMPTY_PATH as u32;
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Is the running executable on a read-only mount already?
pub fn is_sealed() -> bool {
    nix::sys::statvfs::statvfs("/proc/self/exe")
        .map(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
        .unwrap_or(false)
}

/// Re-execute the current program, with the same arguments and environment, from a detached
/// read-only mount of itself. Returns only on failure (or when already sealed).
pub fn reexec_sealed() -> nix::Result<()> {
    if is_sealed() {
        return Ok(());
    }
    let tree = open_tree_ro(c"/proc/self/exe")?;
    let args: Vec<CString> = std::env::args_os().map(|a| CString::new(a.into_encoded_bytes()).unwrap()).collect();
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.into_encoded_bytes();
            kv.push(b'=');
            kv.extend(v.into_encoded_bytes());
            CString::new(kv).unwrap()
        })
        .collect();
    nix::unistd::execveat(&tree, c"", &args, &env, nix::fcntl::AtFlags::AT_EMPTY_PATH)?;
    unreachable!("execveat returned without error")
}

fn open_tree_ro(path: &CStr) -> nix::Result<OwnedFd> {
    // SAFETY: open_tree with a valid path returns a new fd for a detached mount.
    let fd = Errno::result(unsafe {
        libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)
    })? as i32;
    // SAFETY: a new fd from the kernel.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: mount_setattr on our detached mount with a correctly sized attr struct.
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })?;
    Ok(fd)
}

//! Checks that a path really is procfs before the runtime writes through it: a container image
//! could otherwise put a plain directory or a bind mount at /proc and redirect the writes.

use std::os::fd::AsFd;

/// Is `fd` on a procfs mount?
pub fn is_procfs(fd: impl AsFd) -> bool {
    nix::sys::statfs::fstatfs(fd).map(|s| s.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC).unwrap_or(false)
}

/// Write `value` to a file under /proc, refusing when the file is not on procfs.
pub fn write(path: &str, value: &str) -> std::io::Result<()> {
    use std::io::Write;
    tracing::debug!(target: crate::EXPLAIN, step = "write", path, value);
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    if !is_procfs(&f) {
        return Err(std::io::Error::other(format!("{path} is not on procfs; refusing to write")));
    }
    f.write_all(value.as_bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn detects_procfs() {
        assert!(super::is_procfs(std::fs::File::open("/proc/self/stat").unwrap()));
        assert!(!super::is_procfs(std::fs::File::open("/").unwrap()));
    }
}

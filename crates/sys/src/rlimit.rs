//! Resource limits by their OCI/POSIX names.

use nix::errno::Errno;

use crate::EXPLAIN;

const NAMES: [(&str, libc::__rlimit_resource_t); 16] = [
    ("RLIMIT_CPU", libc::RLIMIT_CPU),
    ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE),
    ("RLIMIT_DATA", libc::RLIMIT_DATA),
    ("RLIMIT_STACK", libc::RLIMIT_STACK),
    ("RLIMIT_CORE", libc::RLIMIT_CORE),
    ("RLIMIT_RSS", libc::RLIMIT_RSS),
    ("RLIMIT_NPROC", libc::RLIMIT_NPROC),
    ("RLIMIT_NOFILE", libc::RLIMIT_NOFILE),
    ("RLIMIT_MEMLOCK", libc::RLIMIT_MEMLOCK),
    ("RLIMIT_AS", libc::RLIMIT_AS),
    ("RLIMIT_LOCKS", libc::RLIMIT_LOCKS),
    ("RLIMIT_SIGPENDING", libc::RLIMIT_SIGPENDING),
    ("RLIMIT_MSGQUEUE", libc::RLIMIT_MSGQUEUE),
    ("RLIMIT_NICE", libc::RLIMIT_NICE),
    ("RLIMIT_RTPRIO", libc::RLIMIT_RTPRIO),
    ("RLIMIT_RTTIME", libc::RLIMIT_RTTIME),
];

/// The resource number of "RLIMIT_NOFILE" etc.
pub fn resource(name: &str) -> Option<libc::__rlimit_resource_t> {
    NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, r)| *r)
}

/// prlimit(2) on the calling process.
pub fn set(name: &str, soft: u64, hard: u64) -> Result<(), Errno> {
    let res = resource(name).ok_or(Errno::EINVAL)?;
    tracing::debug!(target: EXPLAIN, step = "setrlimit", resource = name, soft, hard);
    let lim = libc::rlimit { rlim_cur: soft, rlim_max: hard };
    // SAFETY: valid rlimit struct; null old-limit pointer.
    Errno::result(unsafe { libc::prlimit(0, res, &lim, std::ptr::null_mut()) }).map(drop)
}

#[cfg(test)]
mod tests {
    #[test]
    fn names() {
        assert_eq!(super::resource("RLIMIT_NOFILE"), Some(libc::RLIMIT_NOFILE));
        assert_eq!(super::resource("RLIMIT_BOGUS"), None);
    }
}

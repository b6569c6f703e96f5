//! Capabilities: names, the bounding and ambient sets (prctl), and capset(2) for the rest.

use nix::errno::Errno;

use crate::EXPLAIN;

/// Capability names in kernel order (CAP_CHOWN = 0 ...).
pub const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The capability number of a name such as "CAP_NET_ADMIN" (case-insensitive, prefix optional).
pub fn from_name(name: &str) -> Option<u32> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") { upper } else { format!("CAP_{upper}") };
    NAMES.iter().position(|n| *n == full).map(|i| i as u32)
}

/// The highest capability this kernel knows.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(NAMES.len() as u32 - 1)
}

/// A set of capabilities as the kernel's 64-bit mask.
pub type Set = u64;

pub fn set_of(caps: impl IntoIterator<Item = u32>) -> Set {
    caps.into_iter().fold(0, |s, c| s | (1u64 << c))
}

/// Drop every capability not in `keep` from the bounding set (needs CAP_SETPCAP).
pub fn limit_bounding(keep: Set) -> nix::Result<()> {
    tracing::debug!(target: EXPLAIN, step = "prctl(PR_CAPBSET_DROP)", keep = format!("{keep:#x}"));
    for cap in 0..=last_cap() {
        if keep & (1 << cap) == 0 {
            // SAFETY: prctl with integer arguments.
            Errno::result(unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) })?;
        }
    }
    Ok(())
}

#[repr(C)]
struct Header {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// capset(2) for the effective, permitted and inheritable sets of the calling thread.
pub fn set(effective: Set, permitted: Set, inheritable: Set) -> nix::Result<()> {
    tracing::debug!(target: EXPLAIN, step = "capset", effective = format!("{effective:#x}"),
        permitted = format!("{permitted:#x}"), inheritable = format!("{inheritable:#x}"));
    let mut hdr = Header { version: 0x2008_0522, pid: 0 };
    let split = |s: Set, i: usize| (s >> (32 * i)) as u32;
    let data: [Data; 2] = std::array::from_fn(|i| Data {
        effective: split(effective, i),
        permitted: split(permitted, i),
        inheritable: split(inheritable, i),
    });
    // SAFETY: header and two data words, as _LINUX_CAPABILITY_VERSION_3 requires.
    Errno::result(unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut Header, data.as_ptr()) }).map(drop)
}

/// Raise `caps` in the ambient set (each must be permitted and inheritable already).
pub fn raise_ambient(caps: Set) -> nix::Result<()> {
    tracing::debug!(target: EXPLAIN, step = "prctl(PR_CAP_AMBIENT_RAISE)", caps = format!("{caps:#x}"));
    for cap in 0..=last_cap() {
        if caps & (1 << cap) != 0 {
            // SAFETY: prctl with integer arguments.
            Errno::result(unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_RAISE, cap as libc::c_ulong, 0, 0) })?;
        }
    }
    Ok(())
}

/// Keep permitted capabilities across a change of uid away from 0.
pub fn keep_caps(on: bool) -> nix::Result<()> {
    // SAFETY: prctl with integer arguments.
    Errno::result(unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, on as libc::c_ulong, 0, 0, 0) }).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(from_name("CAP_CHOWN"), Some(0));
        assert_eq!(from_name("net_admin"), Some(12));
        assert_eq!(from_name("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(from_name("CAP_NOPE"), None);
        assert_eq!(set_of([0, 40]), 1 | (1 << 40));
    }
}

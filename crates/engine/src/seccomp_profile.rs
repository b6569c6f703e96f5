//! The default seccomp profile: equivalent in effect to Docker's for Docker's default
//! capability set. Docker's profile is an allow list; we derive the same allow list from the
//! kernel's full syscall table minus what Docker does not allow without extra capabilities, so
//! new harmless syscalls are not forgotten and the list cannot drift by a typo.

use serde_json::{json, Value};

/// Syscalls Docker's default profile refuses (EPERM) to a container with the default caps.
const DENIED: &[&str] = &[
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "get_mempolicy",
    "init_module",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mbind",
    "mount",
    "mount_setattr",
    "move_mount",
    "move_pages",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "query_module",
    "quotactl",
    "quotactl_fd",
    "reboot",
    "request_key",
    "set_mempolicy",
    "setdomainname",
    "sethostname",
    "setns",
    "settimeofday",
    "stime",
    "swapoff",
    "swapon",
    "sysfs",
    "_sysctl",
    "umount",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vm86",
    "vm86old",
    "syslog",
    "lsm_get_self_attr",
    "lsm_set_self_attr",
    "lsm_list_modules",
    "fanotify_init",
    "vhangup",
    "pidfd_getfd",
    "clone",
    "clone3",
    "personality",
    "socket",
];

/// The namespace flags clone(2) may not carry (Docker's mask 0x7E020000).
const CLONE_NS_MASK: u64 = 0x7E02_0000;
const AF_VSOCK: u64 = 40;

pub fn default_profile() -> Value {
    let arch = conductor_sys::seccomp::Arch::native().unwrap_or(conductor_sys::seccomp::Arch::X86_64);
    let allowed: Vec<&str> = arch.syscall_names().into_iter().filter(|n| !DENIED.contains(n)).collect();
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": allowed, "action": "SCMP_ACT_ALLOW"},
            // Threads and processes yes, new namespaces no.
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": CLONE_NS_MASK, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
            // clone3's flags live in memory seccomp cannot read: ENOSYS makes libc fall back to clone.
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            // Only the personalities Docker allows (PER_LINUX, PER_LINUX32, UNAME26 variants, query).
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 131072, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 131080, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 4294967295u64, "op": "SCMP_CMP_EQ"}]},
            // Every socket family but vsock.
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": AF_VSOCK, "op": "SCMP_CMP_NE"}]}
        ]
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn profile_compiles_and_denies_the_dangerous_calls() {
        let v = super::default_profile();
        let s = conductor_runtime::seccomp::parse(&v).unwrap();
        let compiled = conductor_runtime::seccomp::compile(&s).unwrap();
        assert!(compiled.program.len() < 4096);
        let allowed = v["syscalls"][0]["names"].as_array().unwrap();
        assert!(allowed.iter().any(|n| n == "read"));
        for denied in ["mount", "unshare", "setns", "ptrace", "kexec_load"] {
            assert!(!allowed.iter().any(|n| n == denied), "{denied}");
        }
    }
}

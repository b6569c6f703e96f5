//! `linux.seccomp` of config.json: conversion to conductor-sys's filter, loading it, and the
//! seccomp-notify hand-over of the listener fd to `listenerPath`, as runc does it.

use std::io::{self, IoSlice, Write};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use conductor_sys::seccomp::{self as sys, Action, Arch, ArgCmp, CmpOp, Filter, FilterFlag, Rule};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use oci_spec::runtime::{
    Arch as OciArch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator, SECCOMP_FD_NAME,
};
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("seccomp: unknown action {value:?} in {field}")]
    UnknownAction { value: String, field: String },
    #[error("seccomp: unknown operator {value:?} in {field}")]
    UnknownOperator { value: String, field: String },
    #[error("seccomp: unknown architecture {value:?} in {field}")]
    UnknownArch { value: String, field: String },
    #[error("seccomp: unknown flag {value:?} in {field}")]
    UnknownFlag { value: String, field: String },
    #[error("seccomp: {field}: {message}")]
    Invalid { field: String, message: String },
    #[error("seccomp: {0}")]
    Json(serde_json::Error),
    #[error(transparent)]
    Sys(#[from] sys::SeccompError),
    #[error("seccomp: listenerPath {path}: {source}")]
    Listener { path: PathBuf, source: io::Error },
    #[error("seccomp: container state for the listener: {0}")]
    State(serde_json::Error),
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Invalid { field: field.into(), message: message.into() }
}

/// Deserialize a raw `linux.seccomp` object, reporting an unknown action, operator,
/// architecture or flag with the field that holds it (serde's own message only names the
/// variant and a line).
pub fn parse(seccomp: &Value) -> Result<LinuxSeccomp, Error> {
    fn check<T: FromStr>(value: Option<&Value>, field: String, err: fn(String, String) -> Error) -> Result<(), Error> {
        match value {
            Some(Value::String(s)) if T::from_str(s).is_err() => Err(err(s.clone(), field)),
            _ => Ok(()),
        }
    }
    let action = |value, field| Error::UnknownAction { value, field };
    let op = |value, field| Error::UnknownOperator { value, field };
    let arch = |value, field| Error::UnknownArch { value, field };
    let flag = |value, field| Error::UnknownFlag { value, field };
    let list = |v: &Value, key: &str| v.get(key).and_then(Value::as_array).cloned();

    check::<LinuxSeccompAction>(seccomp.get("defaultAction"), "defaultAction".into(), action)?;
    for (i, a) in list(seccomp, "architectures").iter().flatten().enumerate() {
        check::<OciArch>(Some(a), format!("architectures[{i}]"), arch)?;
    }
    for (i, f) in list(seccomp, "flags").iter().flatten().enumerate() {
        check::<LinuxSeccompFilterFlag>(Some(f), format!("flags[{i}]"), flag)?;
    }
    for (i, s) in list(seccomp, "syscalls").iter().flatten().enumerate() {
        check::<LinuxSeccompAction>(s.get("action"), format!("syscalls[{i}]"), action)?;
        for (j, a) in list(s, "args").iter().flatten().enumerate() {
            check::<LinuxSeccompOperator>(a.get("op"), format!("syscalls[{i}].args[{j}]"), op)?;
        }
    }
    serde_json::from_value(seccomp.clone()).map_err(Error::Json)
}

/// An action with its `errnoRet`: ERRNO and TRACE carry it (EPERM when absent, as the
/// runtime-spec says); any other action with one is an error.
fn action(action: LinuxSeccompAction, errno_ret: Option<u32>, field: &str) -> Result<Action, Error> {
    use LinuxSeccompAction as A;
    let data = || -> Result<u32, Error> {
        let e = errno_ret.unwrap_or(libc::EPERM as u32);
        if e > 0xffff {
            return Err(invalid(field, format!("{e} does not fit in 16 bits")));
        }
        Ok(e)
    };
    Ok(match action {
        A::ScmpActErrno => Action::Errno(data()?),
        A::ScmpActTrace => Action::Trace(data()?),
        _ if errno_ret.is_some() => {
            return Err(invalid(field, format!("only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not {action}")))
        }
        A::ScmpActKill | A::ScmpActKillThread => Action::KillThread,
        A::ScmpActKillProcess => Action::KillProcess,
        A::ScmpActTrap => Action::Trap,
        A::ScmpActAllow => Action::Allow,
        A::ScmpActLog => Action::Log,
        A::ScmpActNotify => Action::Notify,
    })
}

fn arch(arch: OciArch) -> Result<Arch, Error> {
    use OciArch as A;
    Ok(match arch {
        A::ScmpArchNative => {
            Arch::native().ok_or_else(|| invalid("architectures", "SCMP_ARCH_NATIVE: no syscall table for this machine"))?
        }
        A::ScmpArchX86 => Arch::X86,
        A::ScmpArchX86_64 => Arch::X86_64,
        A::ScmpArchX32 => Arch::X32,
        A::ScmpArchArm => Arch::Arm,
        A::ScmpArchAarch64 => Arch::Aarch64,
        A::ScmpArchMips => Arch::Mips,
        A::ScmpArchMips64 => Arch::Mips64,
        A::ScmpArchMips64n32 => Arch::Mips64N32,
        A::ScmpArchMipsel => Arch::Mipsel,
        A::ScmpArchMipsel64 => Arch::Mipsel64,
        A::ScmpArchMipsel64n32 => Arch::Mipsel64N32,
        A::ScmpArchPpc => Arch::Ppc,
        A::ScmpArchPpc64 => Arch::Ppc64,
        A::ScmpArchPpc64le => Arch::Ppc64le,
        A::ScmpArchS390 => Arch::S390,
        A::ScmpArchS390x => Arch::S390x,
        A::ScmpArchParisc => Arch::Parisc,
        A::ScmpArchParisc64 => Arch::Parisc64,
        A::ScmpArchRiscv64 => Arch::Riscv64,
        A::ScmpArchLoongarch64 => Arch::Loongarch64,
        A::ScmpArchM68k => Arch::M68k,
        A::ScmpArchSh => Arch::Sh,
        A::ScmpArchSheb => Arch::Sheb,
    })
}

fn op(op: LinuxSeccompOperator) -> CmpOp {
    use LinuxSeccompOperator as O;
    match op {
        O::ScmpCmpNe => CmpOp::Ne,
        O::ScmpCmpLt => CmpOp::Lt,
        O::ScmpCmpLe => CmpOp::Le,
        O::ScmpCmpEq => CmpOp::Eq,
        O::ScmpCmpGe => CmpOp::Ge,
        O::ScmpCmpGt => CmpOp::Gt,
        O::ScmpCmpMaskedEq => CmpOp::MaskedEq,
    }
}

fn flag(flag: LinuxSeccompFilterFlag) -> FilterFlag {
    use LinuxSeccompFilterFlag as F;
    match flag {
        F::SeccompFilterFlagLog => FilterFlag::Log,
        F::SeccompFilterFlagTsync => FilterFlag::Tsync,
        F::SeccompFilterFlagSpecAllow => FilterFlag::SpecAllow,
        F::SeccompFilterFlagWaitKillableRecv => FilterFlag::WaitKillableRecv,
    }
}

/// `linux.seccomp` as a conductor-sys filter. Architectures other than the machine's only
/// decide which ABIs may make syscalls at all (x86 and x32 on x86_64, arm on aarch64 also get
/// their own syscall numbers); unknown syscall names are left for the compiler to skip.
///
/// The filter runs rules in order, first match wins; to decide as runc (with libseccomp) does
/// for configs written for it, the rules are arranged so that:
/// - a rule whose action is the default action is dropped (libseccomp refuses them);
/// - a rule without conditions for a syscall wins over conditional ones for it, whatever the
///   order (libseccomp discards argument checks once a syscall matches unconditionally);
/// - a rule comparing one argument more than once becomes one rule per condition, ORed
///   (libseccomp allows one comparison per argument per rule, and runc splits them).
pub fn to_filter(seccomp: &LinuxSeccomp) -> Result<Filter, Error> {
    let default_action = action(seccomp.default_action(), seccomp.default_errno_ret(), "defaultErrnoRet")?;
    if default_action == Action::Notify {
        // Every syscall, including the ones that hand the listener over, would wait for a
        // supervisor that cannot have the listener yet.
        return Err(invalid("defaultAction", "SCMP_ACT_NOTIFY cannot be the default action"));
    }
    let architectures = seccomp.architectures().iter().flatten().map(|&a| arch(a)).collect::<Result<Vec<_>, _>>()?;
    let flags = seccomp.flags().iter().flatten().map(|&f| flag(f)).collect();

    let mut rules = Vec::new();
    for (i, s) in seccomp.syscalls().iter().flatten().enumerate() {
        if s.names().is_empty() {
            return Err(invalid(format!("syscalls[{i}].names"), "must name at least one syscall"));
        }
        let act = action(s.action(), s.errno_ret(), &format!("syscalls[{i}].errnoRet"))?;
        if act == Action::Notify && seccomp.listener_path().is_none() {
            return Err(invalid("listenerPath", format!("must be set: syscalls[{i}] uses SCMP_ACT_NOTIFY")));
        }
        let mut args = Vec::new();
        for (j, a) in s.args().iter().flatten().enumerate() {
            let index = u8::try_from(a.index()).ok().filter(|&n| n <= 5).ok_or_else(|| {
                invalid(
                    format!("syscalls[{i}].args[{j}].index"),
                    format!("{} is out of range (a syscall has arguments 0 to 5)", a.index()),
                )
            })?;
            args.push(ArgCmp { index, value: a.value(), value_two: a.value_two().unwrap_or(0), op: op(a.op()) });
        }
        if act == default_action {
            continue;
        }
        let repeated = args.iter().enumerate().any(|(j, a)| args[..j].iter().any(|b| b.index == a.index));
        let groups = if repeated { args.into_iter().map(|a| vec![a]).collect() } else { vec![args] };
        for args in groups {
            rules.push(Rule { syscalls: s.names().clone(), action: act, errno: None, args });
        }
    }
    // Unconditional rules first; the sort is stable, so rule order holds within each kind.
    rules.sort_by_key(|r| !r.args.is_empty());
    Ok(Filter { default_action, default_errno: None, architectures, rules, flags })
}

/// Convert and compile; syscall names no listed architecture knows are skipped (as runc
/// skips names libseccomp does not know) and logged.
pub fn compile(seccomp: &LinuxSeccomp) -> Result<sys::Compiled, Error> {
    let compiled = sys::compile_with_warnings(&to_filter(seccomp)?)?;
    if !compiled.unknown_syscalls.is_empty() {
        tracing::debug!(
            unknown = ?compiled.unknown_syscalls,
            "seccomp: skipping syscalls unknown on this architecture"
        );
    }
    Ok(compiled)
}

/// Compile and load the filter for the calling thread. Returns the notify listener when a rule
/// uses SCMP_ACT_NOTIFY: hand it to [`send_listener`] (or to the runtime process that does).
/// The caller must have set no_new_privs or still hold CAP_SYS_ADMIN.
pub fn apply(seccomp: &LinuxSeccomp) -> Result<Option<OwnedFd>, Error> {
    let compiled = compile(seccomp)?;
    tracing::debug!(
        target: conductor_sys::EXPLAIN,
        step = "seccomp(SECCOMP_SET_MODE_FILTER)",
        instructions = compiled.program.len(),
        flags = ?compiled.flags,
    );
    Ok(sys::install(&compiled.program, &compiled.flags)?)
}

/// The seccomp-notify hand-over: connect to `listener_path` and send, in one message, the
/// container process state (runtime-spec `ContainerProcessState`: `ociVersion`, `fds`
/// = ["seccompFd"], `pid`, `metadata` = listenerMetadata, `state`) with the listener fd
/// attached by SCM_RIGHTS. `state_json` is the container's state as `state` prints it.
pub fn send_listener(listener_path: &Path, fd: BorrowedFd<'_>, state_json: &[u8], metadata: &str) -> Result<(), Error> {
    let bytes = listener_message(state_json, metadata)?;
    let err = |source: io::Error| Error::Listener { path: listener_path.to_path_buf(), source };
    let stream = UnixStream::connect(listener_path).map_err(err)?;
    send_message(&stream, fd, &bytes).map_err(err)
}

/// The runtime-spec `ContainerProcessState` message.
fn listener_message(state_json: &[u8], metadata: &str) -> Result<Vec<u8>, Error> {
    let state: Value = serde_json::from_slice(state_json).map_err(Error::State)?;
    let mut message = serde_json::json!({
        "ociVersion": state.get("ociVersion").cloned().unwrap_or(Value::String(oci_spec::runtime::VERSION.into())),
        "fds": [SECCOMP_FD_NAME],
        "pid": state.get("pid").and_then(Value::as_i64).unwrap_or(0),
        "state": state,
    });
    if !metadata.is_empty() {
        message["metadata"] = Value::String(metadata.to_string());
    }
    serde_json::to_vec(&message).map_err(Error::State)
}

/// Like [`send_listener`] over an already connected socket (init connects before pivot_root,
/// while the host path is still reachable, and sends once the filter is loaded).
pub fn send_listener_on(stream: &UnixStream, fd: BorrowedFd<'_>, state_json: &[u8], metadata: &str) -> Result<(), Error> {
    let bytes = listener_message(state_json, metadata)?;
    send_message(stream, fd, &bytes).map_err(|source| Error::Listener { path: "(connected socket)".into(), source })
}

fn send_message(mut stream: &UnixStream, fd: BorrowedFd<'_>, bytes: &[u8]) -> io::Result<()> {
    let fds = [fd.as_raw_fd()];
    let sent = sendmsg::<()>(
        stream.as_raw_fd(),
        &[IoSlice::new(bytes)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )?;
    // A stream socket may take less than all; the fd travelled with the first part.
    stream.write_all(&bytes[sent..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{recvmsg, ControlMessageOwned};
    use std::io::IoSliceMut;
    use std::os::fd::{AsFd, RawFd};
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::net::UnixListener;

    fn seccomp(json: Value) -> LinuxSeccomp {
        serde_json::from_value(json).expect("valid LinuxSeccomp")
    }

    #[test]
    fn seccomp_converts_every_action_op_arch_and_flag() {
        let s = seccomp(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 38,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32",
                "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390X",
                "SCMP_ARCH_RISCV64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_NATIVE"],
            "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            "listenerPath": "/run/agent.sock",
            "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["a"], "action": "SCMP_ACT_KILL"},
                {"names": ["b"], "action": "SCMP_ACT_KILL_THREAD"},
                {"names": ["c"], "action": "SCMP_ACT_KILL_PROCESS"},
                {"names": ["d"], "action": "SCMP_ACT_TRAP"},
                {"names": ["e"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["f"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["g"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
                {"names": ["h"], "action": "SCMP_ACT_LOG"},
                {"names": ["i"], "action": "SCMP_ACT_NOTIFY"},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [
                    {"index": 0, "value": 1, "op": "SCMP_CMP_NE"},
                    {"index": 1, "value": 2, "op": "SCMP_CMP_LT"},
                    {"index": 2, "value": 3, "op": "SCMP_CMP_LE"},
                    {"index": 3, "value": 4, "op": "SCMP_CMP_EQ"},
                    {"index": 4, "value": 5, "op": "SCMP_CMP_GE"},
                    {"index": 5, "value": 6, "op": "SCMP_CMP_GT"}
                ]},
                {"names": ["unshare"], "action": "SCMP_ACT_ALLOW", "args": [
                    {"index": 0, "value": 2114060288, "valueTwo": 2, "op": "SCMP_CMP_MASKED_EQ"}
                ]}
            ]
        }));
        let f = to_filter(&s).unwrap();
        assert_eq!(f.default_action, Action::Errno(38));
        let native = Arch::native().unwrap();
        assert_eq!(
            f.architectures,
            [
                Arch::X86_64,
                Arch::X86,
                Arch::X32,
                Arch::Aarch64,
                Arch::Arm,
                Arch::Ppc64le,
                Arch::S390x,
                Arch::Riscv64,
                Arch::Mipsel64N32,
                native
            ]
        );
        assert_eq!(f.flags, [FilterFlag::Tsync, FilterFlag::Log, FilterFlag::SpecAllow, FilterFlag::WaitKillableRecv]);
        let actions: Vec<Action> = f.rules.iter().map(|r| r.action).collect();
        let eperm = libc::EPERM as u32;
        assert_eq!(
            actions,
            [
                Action::Allow,
                Action::KillThread,
                Action::KillThread,
                Action::KillProcess,
                Action::Trap,
                Action::Errno(eperm),
                Action::Errno(13),
                Action::Trace(7),
                Action::Log,
                Action::Notify,
                Action::Allow,
                Action::Allow
            ]
        );
        let ops: Vec<(u8, u64, CmpOp)> = f.rules[10].args.iter().map(|a| (a.index, a.value, a.op)).collect();
        assert_eq!(
            ops,
            [(0, 1, CmpOp::Ne), (1, 2, CmpOp::Lt), (2, 3, CmpOp::Le), (3, 4, CmpOp::Eq), (4, 5, CmpOp::Ge), (5, 6, CmpOp::Gt)]
        );
        let masked = f.rules[11].args[0];
        assert_eq!((masked.value, masked.value_two, masked.op), (0x7E02_0000, 2, CmpOp::MaskedEq));

        let c = compile(&s).unwrap();
        assert_eq!(c.unknown_syscalls, ["a", "b", "c", "d", "e", "f", "g", "h", "i"]);
        assert!(c.flags.contains(&FilterFlag::NewListener));
    }

    #[test]
    fn seccomp_rules_are_arranged_as_runc_decides() {
        let s = seccomp(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": ["getuid"], "action": "SCMP_ACT_LOG",
                 "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
                {"names": ["mount"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["getuid", "getgid"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["fstat"], "action": "SCMP_ACT_ALLOW", "args": [
                    {"index": 0, "value": 0, "op": "SCMP_CMP_NE"},
                    {"index": 0, "value": 1, "op": "SCMP_CMP_NE"}]},
                {"names": ["umount2"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
            ]
        }));
        let f = to_filter(&s).unwrap();
        let summary: Vec<(&str, Action, Vec<u64>)> = f
            .rules
            .iter()
            .map(|r| {
                let values = r.args.iter().map(|a| a.value).collect();
                (r.syscalls[0].as_str(), r.action, values)
            })
            .collect();
        assert_eq!(
            summary,
            [
                // Unconditional rules first: getuid is allowed whatever its argument.
                ("getuid", Action::Allow, vec![]),
                ("umount2", Action::Errno(38), vec![]),
                ("getuid", Action::Log, vec![1]),
                // Two comparisons of argument 0: ORed, one rule each.
                ("fstat", Action::Allow, vec![0]),
                ("fstat", Action::Allow, vec![1]),
            ]
        );
    }

    #[test]
    fn seccomp_parse_names_the_unknown_field() {
        let base = serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64"],
            "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["write"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["open"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["close"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}
            ]
        });
        assert!(parse(&base).is_ok());
        let cases = [
            ("/syscalls/3/action", "SCMP_ACT_FOO", r#"seccomp: unknown action "SCMP_ACT_FOO" in syscalls[3]"#),
            ("/defaultAction", "SCMP_ACT_NOPE", r#"seccomp: unknown action "SCMP_ACT_NOPE" in defaultAction"#),
            ("/syscalls/3/args/0/op", "SCMP_CMP_ABOUT", r#"seccomp: unknown operator "SCMP_CMP_ABOUT" in syscalls[3].args[0]"#),
            ("/architectures/0", "SCMP_ARCH_VAX", r#"seccomp: unknown architecture "SCMP_ARCH_VAX" in architectures[0]"#),
            ("/flags/0", "SECCOMP_FILTER_FLAG_X", r#"seccomp: unknown flag "SECCOMP_FILTER_FLAG_X" in flags[0]"#),
        ];
        for (pointer, value, message) in cases {
            let mut json = base.clone();
            *json.pointer_mut(pointer).unwrap() = Value::String(value.into());
            assert_eq!(parse(&json).unwrap_err().to_string(), message);
        }
    }

    #[test]
    fn seccomp_invalid_configs_name_the_field() {
        let cases = [
            (serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}), "defaultErrnoRet"),
            (serde_json::json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x"}), "defaultAction"),
            (
                serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["read"], "action": "SCMP_ACT_LOG"},
                    {"names": ["read"], "action": "SCMP_ACT_KILL", "errnoRet": 1}]}),
                "syscalls[1].errnoRet",
            ),
            (
                serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]}),
                "syscalls[0].errnoRet",
            ),
            (
                serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [
                        {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                        {"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
                "syscalls[0].args[1].index",
            ),
            (
                serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": [], "action": "SCMP_ACT_ERRNO"}]}),
                "syscalls[0].names",
            ),
            (
                serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]}),
                "listenerPath",
            ),
        ];
        for (json, field) in cases {
            let err = to_filter(&seccomp(json.clone())).unwrap_err().to_string();
            assert!(err.starts_with(&format!("seccomp: {field}: ")), "{json}: {err}");
        }
    }

    #[test]
    fn seccomp_send_listener_passes_state_and_fd() {
        let dir = std::env::temp_dir().join(format!("conductor-seccomp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("agent.sock");
        let _ = std::fs::remove_file(&socket);
        let agent = UnixListener::bind(&socket).unwrap();
        let file = std::fs::File::create(dir.join("stand-in-for-the-listener")).unwrap();

        let state = br#"{"ociVersion":"1.2.0","id":"c1","status":"creating","pid":4321,"bundle":"/b","annotations":{"k":"v"}}"#;
        send_listener(&socket, file.as_fd(), state, "MKNOD=/dev/null").unwrap();

        let (conn, _) = agent.accept().unwrap();
        let mut buf = vec![0u8; 4096];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let msg = recvmsg::<()>(conn.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::empty()).unwrap();
        let mut fds = Vec::new();
        for c in msg.cmsgs().unwrap() {
            if let ControlMessageOwned::ScmRights(f) = c {
                fds.extend(f);
            }
        }
        let len = msg.bytes;
        assert_eq!(fds.len(), 1);
        // The received fd is the file we sent (stat through /proc follows it to the file).
        let got = std::fs::metadata(format!("/proc/self/fd/{}", fds[0])).unwrap();
        assert_eq!(got.ino(), file.metadata().unwrap().ino());
        nix::unistd::close(fds[0]).unwrap();

        let json: Value = serde_json::from_slice(&buf[..len]).unwrap();
        assert_eq!(json["ociVersion"], "1.2.0");
        assert_eq!(json["fds"], serde_json::json!(["seccompFd"]));
        assert_eq!(json["pid"], 4321);
        assert_eq!(json["metadata"], "MKNOD=/dev/null");
        assert_eq!(json["state"]["id"], "c1");
        assert_eq!(json["state"]["annotations"]["k"], "v");
        // What a Go agent decodes: it must be a valid ContainerProcessState.
        let typed: oci_spec::runtime::ContainerProcessState = serde_json::from_value(json).unwrap();
        assert_eq!(typed.pid(), &4321);

        let err = send_listener(&dir.join("missing.sock"), file.as_fd(), state, "").unwrap_err();
        assert!(err.to_string().contains("missing.sock"), "{err}");
        let err = send_listener(&socket, file.as_fd(), b"not json", "").unwrap_err();
        assert!(matches!(err, Error::State(_)), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

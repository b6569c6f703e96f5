//! The container's init, from clone to execve. It runs in a forked copy of the runtime, in the
//! container's new namespaces, and talks to the runtime over a [`Channel`].

mod devices;
mod mounts;
mod rootfs;


use std::convert::Infallible;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::channel::{Channel, Msg};
use crate::error::{Context, Error, Result};
use crate::process::{self, Finish};

/// What init needs besides the spec; prepared by `create` before the clone.
pub struct Init<'a> {
    pub id: &'a str,
    pub spec: &'a Spec,
    pub rootfs: PathBuf,
    pub fifo: PathBuf,
    pub chan: Channel,
    /// A connected console socket (process.terminal).
    pub console: Option<OwnedFd>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: i32,
    pub new_userns: bool,
    pub new_cgroupns: bool,
}

/// Entry point of the cloned child: never returns.
pub fn main(init: Init) -> ! {
    conductor_sys::process::set_name("conductor:init");
    let err = match run(&init) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    // Before Ready the runtime is listening; after it, only stderr is left.
    if init.chan.send(&Msg::Error(err.to_string())).is_err() {
        eprintln!("conductor-runtime: {err}");
    }
    conductor_sys::process::exit_now(127)
}

fn run(init: &Init) -> Result<Infallible> {
    let spec = init.spec;
    let state_json = match init.chan.recv().ctx(|| "wait for runtime".into())? {
        Some(Msg::Go(state)) => state,
        _ => conductor_sys::process::exit_now(1),
    };
    if init.new_userns {
        // The runtime wrote our id maps: become root of the new user namespace.
        nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0)).ctx(|| "setresgid(0) in user namespace".into())?;
        nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)).ctx(|| "setresuid(0) in user namespace".into())?;
    }
    if init.new_cgroupns {
        // After the runtime placed us in our cgroup, so that it becomes the namespace's root.
        conductor_sys::ns::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP).ctx(|| "unshare cgroup namespace".into())?;
    }
    if !init.no_new_keyring {
        match conductor_sys::process::join_session_keyring(&format!("_ses.{}", init.id)) {
            Ok(()) | Err(nix::errno::Errno::ENOSYS) => {}
            Err(e) => tracing::warn!("new session keyring: {e}"),
        }
    }
    rootfs::prepare(spec, &init.rootfs, init.new_userns)?;

    let hooks = spec.hooks().as_ref();
    if hooks.is_some_and(|h| h.prestart().is_some() || h.create_runtime().is_some()) {
        init.chan.send(&Msg::CreateRuntimeHooks).ctx(|| "ask for hooks".into())?;
        match init.chan.recv().ctx(|| "wait for hooks".into())? {
            Some(Msg::HooksDone) => {}
            _ => conductor_sys::process::exit_now(1),
        }
    }
    crate::hooks::run("createContainer", hooks.and_then(|h| h.create_container().as_ref()), state_json.as_bytes())?;

    // Opened before pivot_root, while the runtime's state directory is still reachable. Read and
    // write, so the open does not block; `start` writes one byte into it.
    let fifo = nix::fcntl::open(&init.fifo, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty()).ctx(|| "open exec fifo".into())?;
    rootfs::enter(&init.rootfs, init.no_pivot)?;
    rootfs::finish(spec)?;
    set_names(spec)?;
    set_sysctls(spec)?;
    let proc = spec.process().as_ref().expect("checked by config");
    if proc.terminal().unwrap_or(false) {
        let sock = init.console.as_ref().ok_or_else(|| Error::Init("process.terminal needs a console socket".into()))?;
        crate::console::attach(sock, proc.console_size().map(|b| (b.height() as u16, b.width() as u16)))?;
    }
    let prog = process::resolve(proc)?;
    init.chan.send(&Msg::Ready).ctx(|| "report ready".into())?;

    let mut b = [0u8; 1];
    match nix::unistd::read(&fifo, &mut b) {
        Ok(1) => {}
        _ => conductor_sys::process::exit_now(1),
    }
    drop(fifo);
    crate::hooks::run("startContainer", hooks.and_then(|h| h.start_container().as_ref()), state_json.as_bytes())?;
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let finish = Finish {
        process: proc,
        seccomp,
        preserve_fds: init.preserve_fds,
        setgroups_allowed: !init.new_userns || setgroups_allowed(),
    };
    process::finish_and_exec(&finish, &prog)
}

fn set_names(spec: &Spec) -> Result<()> {
    let has_uts = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::Uts));
    if !has_uts {
        return Ok(());
    }
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        conductor_sys::ns::set_hostname(h).ctx(|| format!("hostname {h:?}"))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        conductor_sys::ns::set_domainname(d).ctx(|| format!("domainname {d:?}"))?;
    }
    Ok(())
}

fn set_sysctls(spec: &Spec) -> Result<()> {
    for (k, v) in spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()).into_iter().flatten() {
        if k.contains("..") || k.contains('/') && k.contains('.') {
            return Err(Error::Invalid(format!("linux.sysctl: bad key {k:?}")));
        }
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        conductor_sys::procfs::write(&path, v).ctx(|| format!("linux.sysctl {k}"))?;
    }
    Ok(())
}

/// In a user namespace, setgroups(2) works only if /proc/self/setgroups says "allow".
fn setgroups_allowed() -> bool {
    std::fs::read_to_string("/proc/self/setgroups").map(|s| s.trim() == "allow").unwrap_or(true)
}

//! The container's init, from clone to execve. It runs in a forked copy of the runtime, in the
//! container's new namespaces, and talks to the runtime over a [`Channel`].

mod devices;
mod mounts;
mod rootfs;

pub(crate) use mounts::propagation;

use std::convert::Infallible;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{LinuxNamespaceType, LinuxPersonalityDomain, Spec};

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
    pub cgroup: &'a conductor_cgroups::Cgroup,
}

/// Set once init reported Ready: from then on `create` has returned and nobody reads the channel
/// (a send would still succeed: init holds a forked copy of the runtime's end).
static READY: AtomicBool = AtomicBool::new(false);

/// The process name init has until it execs the program.
pub const NAME: &str = "conductor:init";

/// Entry point of the cloned child: never returns.
pub fn main(init: Init) -> ! {
    conductor_sys::process::set_name(NAME);
    let err = match run(&init) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    // Before Ready the runtime is listening; after it, only stderr is left.
    if READY.load(Ordering::SeqCst) || init.chan.send(&Msg::Error(err.report())).is_err() {
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
    // Opened while the runtime's state directory is reachable and init still has the host ids
    // that own it (root of a new user namespace maps to another host uid). Read and write, so the
    // open does not block; `start` writes one byte into it.
    let fifo = nix::fcntl::open(&init.fifo, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty()).ctx(|| "open exec fifo".into())?;
    if init.new_userns {
        // The runtime wrote our id maps: become root of the new user namespace.
        nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
            .ctx(|| "setresgid(0) in user namespace".into())?;
        nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
            .ctx(|| "setresuid(0) in user namespace".into())?;
    }
    if !init.no_new_keyring {
        match conductor_sys::process::join_session_keyring(&format!("_ses.{}", init.id)) {
            Ok(()) | Err(nix::errno::Errno::ENOSYS) => {}
            Err(e) => tracing::warn!("new session keyring: {e}"),
        }
    }
    let own = (!init.new_cgroupns).then(|| init.cgroup.paths());
    let hooks = spec.hooks().as_ref();
    // cgroup mounts come last, after pivot_root, so that init's whole setup overlaps the
    // runtime's wait to move it into its cgroup: unless hooks before pivot_root expect them in
    // place, or they are binds of host cgroup directories (no cgroup namespace), which are out
    // of reach after pivot_root.
    let early_hooks =
        hooks.is_some_and(|h| h.prestart().is_some() || h.create_runtime().is_some() || h.create_container().is_some());
    let late_cgroup = own.is_none() && !early_hooks;
    let mut join = || join_cgroup(init);
    rootfs::prepare(
        spec,
        &init.rootfs,
        init.new_userns,
        own.as_ref(),
        (!late_cgroup).then_some(&mut join as &mut dyn FnMut() -> Result<()>),
    )?;

    if hooks.is_some_and(|h| h.prestart().is_some() || h.create_runtime().is_some()) {
        init.chan.send(&Msg::CreateRuntimeHooks).ctx(|| "ask for hooks".into())?;
        match init.chan.recv().ctx(|| "wait for hooks".into())? {
            Some(Msg::HooksDone) => {}
            _ => conductor_sys::process::exit_now(1),
        }
    }
    crate::hooks::run("createContainer", hooks.and_then(|h| h.create_container().as_ref()), state_json.as_bytes())?;

    let notify = connect_notify(spec, &state_json)?;
    rootfs::enter(&init.rootfs, init.no_pivot)?;
    let proc = spec.process().as_ref().expect("checked by config");
    rootfs::make_cwd(proc.cwd())?;
    set_names(spec)?;
    // Before finish: readonlyPaths makes /proc/sys read-only (runc's order too).
    set_sysctls(spec)?;
    if proc.terminal().unwrap_or(false) {
        let sock = init.console.as_ref().ok_or_else(|| Error::Init("process.terminal needs a console socket".into()))?;
        crate::console::attach(sock, proc.console_size().map(|b| (b.height() as u16, b.width() as u16)))?;
        // Before finish, which may make the root read-only.
        crate::console::mount_console()?;
    }
    rootfs::finish(spec, &mut || {
        if late_cgroup {
            join_cgroup(init)?;
            rootfs::mount_cgroups(spec, init.new_userns, own.as_ref())?;
        }
        Ok(())
    })?;
    // Last: readonly and masked paths are binds, which an unbindable root would refuse.
    rootfs::apply_root_propagation(spec)?;
    let prog = process::resolve(proc)?;
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let finish = Finish {
        process: proc,
        seccomp,
        preserve_fds: init.preserve_fds,
        setgroups_allowed: !init.new_userns || setgroups_allowed(),
        reaper: spec.annotations().as_ref().and_then(|a| a.get(crate::reaper::ANNOTATION)).is_some_and(|v| v == "true"),
        notify: notify.as_ref(),
    };
    set_personality(spec)?;
    // User, capabilities and limits before Ready, so that `create` reports their errors; the
    // startContainer hooks then run as the container's process would (as runc runs them).
    process::prepare(&finish)?;
    init.chan.send(&Msg::Ready).ctx(|| "report ready".into())?;
    READY.store(true, Ordering::SeqCst);

    let mut b = [0u8; 1];
    match nix::unistd::read(&fifo, &mut b) {
        Ok(1) => {}
        _ => conductor_sys::process::exit_now(1),
    }
    drop(fifo);
    let started = with_status(&state_json, "created");
    crate::hooks::run("startContainer", hooks.and_then(|h| h.start_container().as_ref()), started.as_bytes())?;
    process::exec(&finish, &prog)
}

const PER_LINUX32: libc::c_ulong = 0x0008;

/// linux.personality: the execution domain the program sees (LINUX32: `uname -m` says i686).
fn set_personality(spec: &Spec) -> Result<()> {
    let Some(p) = spec.linux().as_ref().and_then(|l| l.personality().as_ref()) else { return Ok(()) };
    if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
        return Err(Error::Invalid("linux.personality.flags: not supported".into()));
    }
    let persona = match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0,
        LinuxPersonalityDomain::PerLinux32 => PER_LINUX32,
    };
    tracing::debug!(target: conductor_sys::EXPLAIN, step = "personality", persona);
    conductor_sys::process::set_personality(persona).ctx(|| "linux.personality".into())
}

/// Wait until the runtime has moved us into our cgroup; then a new cgroup namespace has it as
/// its root.
fn join_cgroup(init: &Init) -> Result<()> {
    match init.chan.recv().ctx(|| "wait for cgroup".into())? {
        Some(Msg::CgroupJoined) => {}
        _ => conductor_sys::process::exit_now(1),
    }
    if init.new_cgroupns {
        conductor_sys::ns::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP).ctx(|| "unshare cgroup namespace".into())?;
    }
    Ok(())
}

/// For SCMP_ACT_NOTIFY: connect to the agent's listenerPath now, while it is reachable.
fn connect_notify(spec: &Spec, state_json: &str) -> Result<Option<process::Notify>> {
    let Some(s) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else { return Ok(None) };
    let Some(path) = s.listener_path() else { return Ok(None) };
    let sock = std::os::unix::net::UnixStream::connect(path).ctx(|| format!("linux.seccomp.listenerPath {}", path.display()))?;
    let metadata = s.listener_metadata().clone().unwrap_or_default();
    Ok(Some(process::Notify { sock, state: state_json.to_string(), metadata }))
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
        if k.contains("..") {
            return Err(Error::Invalid(format!("linux.sysctl: bad key {k:?}")));
        }
        // "a/b.c/d" names a path as is (dots can be part of a name, as in eth0.100).
        let rel = if k.contains('/') { k.clone() } else { k.replace('.', "/") };
        let path = format!("/proc/sys/{rel}");
        conductor_sys::procfs::write(&path, v).ctx(|| format!("linux.sysctl {k}"))?;
    }
    Ok(())
}

/// The state JSON with another status: startContainer hooks run once create is done (as runc).
fn with_status(state_json: &str, status: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(state_json) {
        Ok(mut v) => {
            v["status"] = status.into();
            v.to_string()
        }
        Err(_) => state_json.to_string(),
    }
}

/// In a user namespace, setgroups(2) works only if /proc/self/setgroups says "allow".
fn setgroups_allowed() -> bool {
    std::fs::read_to_string("/proc/self/setgroups").map(|s| s.trim() == "allow").unwrap_or(true)
}

//! `exec`: a new process inside a running container: same namespaces (joined through a pidfd of
//! init, in one setns call), same cgroup, same root.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use conductor_sys::process::{clone3, CloneArgs, Forked};
use nix::sched::CloneFlags;
use nix::unistd::{Gid, Pid, Uid};
use oci_spec::runtime::Process;

use crate::channel::{self, Channel, Msg};
use crate::error::{Context, Error, Result};
use crate::lifecycle::Container;
use crate::process::{self, Finish};
use crate::state::Status;

pub struct ExecOpts {
    pub root: PathBuf,
    pub id: String,
    pub process: Process,
    pub console_socket: Option<PathBuf>,
    pub console_fd: Option<OwnedFd>,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: i32,
}

/// Start the process; returns its host pid. It is a child of the caller (CLONE_PARENT from the
/// intermediate), so the caller can wait for it.
pub fn exec(o: ExecOpts) -> Result<Pid> {
    let c = Container::open(&o.root, &o.id)?;
    match c.status() {
        Status::Created | Status::Running => {}
        s => return Err(Error::WrongState { id: o.id.clone(), status: s.to_string(), op: "exec", needs: "running" }),
    }
    let spec = c.spec()?;
    let pidfd = c.init_pidfd()?;
    let kinds = crate::create::namespace_kinds(&spec);
    let flags = kinds.iter().fold(CloneFlags::empty(), |f, k| f | k.flag());
    let userns = kinds.contains(&conductor_sys::ns::Kind::User);
    if o.process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(Error::Invalid("process.args: must name a program".into()));
    }
    let console = match (&o.console_socket, o.console_fd) {
        (_, Some(fd)) => Some(fd),
        (Some(p), None) => Some(crate::console::connect(p)?),
        (None, None) => None,
    };
    let (parent, child) = channel::pair().ctx(|| "socketpair".into())?;
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().clone());

    let pid = match clone3(&CloneArgs::default()).ctx(|| "clone3".into())? {
        Forked::Child => {
            let res = conductor_sys::ns::join(&pidfd, flags, "init's namespaces (pidfd)")
                .map_err(|e| format!("setns: {e}"))
                .and_then(|()| {
                    clone3(&CloneArgs { flags: CloneFlags::CLONE_PARENT, ..Default::default() })
                        .map_err(|e| format!("clone3: {e}"))
                });
            match res {
                Ok(Forked::Child) => {
                    let err = run_child(&child, &o.process, seccomp.as_ref(), console, o.preserve_fds, userns).unwrap_err();
                    if child.send(&Msg::Error(err.report())).is_err() {
                        eprintln!("conductor-runtime exec: {err}");
                    }
                    conductor_sys::process::exit_now(127)
                }
                Ok(Forked::Parent(p)) => {
                    let _ = child.send(&Msg::Pid(p.as_raw()));
                    conductor_sys::process::exit_now(0)
                }
                Err(e) => {
                    let _ = child.send(&Msg::Error(e));
                    conductor_sys::process::exit_now(1)
                }
            }
        }
        Forked::Parent(mid) => {
            drop(child);
            let msg = parent.recv().ctx(|| "wait for exec".into());
            let _ = nix::sys::wait::waitpid(mid, None);
            match msg? {
                Some(Msg::Pid(p)) => Pid::from_raw(p),
                Some(Msg::Error(e)) => return Err(Error::Exec(e)),
                _ => return Err(Error::Exec("joining the container failed".into())),
            }
        }
    };
    let kill = || {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
    };
    let res = (|| {
        c.st.cgroup.add_pid(pid.as_raw())?;
        if let Some(adj) = o.process.oom_score_adj() {
            conductor_sys::procfs::write(&format!("/proc/{pid}/oom_score_adj"), &adj.to_string())
                .ctx(|| "process.oomScoreAdj".into())?;
        }
        parent.send(&Msg::Go(String::new())).ctx(|| "start exec".into())?;
        // The channel is close-on-exec: EOF means execve succeeded.
        match parent.recv().ctx(|| "wait for exec".into())? {
            None => Ok(()),
            Some(Msg::Error(e)) => Err(Error::Exec(e)),
            Some(m) => Err(Error::Exec(format!("unexpected message {m:?}"))),
        }
    })();
    if let Err(e) = res {
        kill();
        return Err(e);
    }
    if let Some(p) = &o.pid_file {
        crate::state::write_atomic(p, pid.to_string().as_bytes())?;
    }
    Ok(pid)
}

fn run_child(
    chan: &Channel,
    process: &Process,
    seccomp: Option<&oci_spec::runtime::LinuxSeccomp>,
    console: Option<OwnedFd>,
    preserve_fds: i32,
    userns: bool,
) -> Result<std::convert::Infallible> {
    conductor_sys::process::set_name("conductor:exec");
    match chan.recv().ctx(|| "wait for runtime".into())? {
        Some(Msg::Go(_)) => {}
        _ => conductor_sys::process::exit_now(1),
    }
    if userns {
        nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0)).ctx(|| "setresgid(0)".into())?;
        nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)).ctx(|| "setresuid(0)".into())?;
    }
    if process.terminal().unwrap_or(false) {
        let sock = console.as_ref().ok_or_else(|| Error::Init("process.terminal needs a console socket".into()))?;
        crate::console::attach(sock, process.console_size().map(|b| (b.height() as u16, b.width() as u16)))?;
    }
    let prog = process::resolve(process)?;
    let setgroups_allowed =
        !userns || std::fs::read_to_string("/proc/self/setgroups").map(|s| s.trim() == "allow").unwrap_or(true);
    process::finish_and_exec(&Finish { process, seccomp, preserve_fds, setgroups_allowed, reaper: false, notify: None }, &prog)
}

/// What `exec COMMAND` changes in the container's own process settings (as runc does).
#[derive(Default)]
pub struct Overrides {
    pub args: Vec<String>,
    pub tty: bool,
    pub cwd: Option<PathBuf>,
    /// KEY=VALUE, replacing a variable of the same key.
    pub env: Vec<String>,
    /// uid and, if given, gid (else the gid stays the container's).
    pub user: Option<(u32, Option<u32>)>,
}

/// The container's process (from its saved config) with `o` applied.
pub fn process_for(root: &Path, id: &str, o: &Overrides) -> Result<Process> {
    let c = Container::open(root, id)?;
    let mut p = c.spec()?.process().clone().ok_or_else(|| Error::Invalid("container has no process".into()))?;
    p.set_args(Some(o.args.clone()));
    p.set_terminal(Some(o.tty));
    if let Some(cwd) = &o.cwd {
        p.set_cwd(cwd.clone());
    }
    let mut env = p.env().clone().unwrap_or_default();
    for kv in &o.env {
        let key = kv.split('=').next().unwrap_or_default();
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    if let Some((uid, gid)) = o.user {
        p.user_mut().set_uid(uid);
        if let Some(g) = gid {
            p.user_mut().set_gid(g);
        }
    }
    Ok(p)
}

/// Read a process.json given to `exec --process`.
pub fn load_process(path: &Path) -> Result<Process> {
    let raw = std::fs::read(path).ctx(|| format!("read {}", path.display()))?;
    let de = &mut serde_json::Deserializer::from_slice(&raw);
    serde_path_to_error::deserialize(de)
        .map_err(|e| Error::Config { path: path.into(), msg: format!("{}: {}", e.path(), e.inner()) })
}

//! `create`: bundle -> init blocked in the container, waiting for `start`.

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use conductor_cgroups::Cgroup;
use conductor_sys::ns::Kind;
use conductor_sys::process::{clone3, CloneArgs, Forked};
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxIdMapping, LinuxNamespaceType, LinuxResources, Spec};

use crate::channel::{self, Msg};
use crate::error::{Context, Error, Result};
use crate::state::{self, Dir, Persisted, Status};
use crate::{config, hooks, init};

/// runc's `create` options.
#[derive(Default)]
pub struct CreateOpts {
    pub root: PathBuf,
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    /// An already connected console socket (used by `run` to proxy a terminal itself).
    pub console_fd: Option<OwnedFd>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: i32,
    /// runc's --systemd-cgroup: cgroupsPath must then be systemd's "slice:prefix:name". We never
    /// drive systemd; the path is mapped to the cgroupfs directory systemd would use.
    pub systemd_cgroup: bool,
}

/// Undo a half-made container when create fails at any step.
struct Undo<'a> {
    dir: &'a Dir,
    cgroup: Option<&'a Cgroup>,
    child: Option<Pid>,
    /// Cleared once the container exists for good.
    armed: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.child {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
        }
        if let Some(cg) = self.cgroup {
            let _ = cg.destroy();
            cg.remove_empty_parent(conductor_cgroups::DEFAULT_PARENT);
        }
        let _ = self.dir.remove();
    }
}

/// Which namespaces init gets: new ones (clone flags) and existing ones to join (by path).
struct NsPlan {
    new: CloneFlags,
    join: Vec<(Kind, PathBuf)>,
}

fn kind(t: LinuxNamespaceType) -> Kind {
    match t {
        LinuxNamespaceType::Pid => Kind::Pid,
        LinuxNamespaceType::Network => Kind::Net,
        LinuxNamespaceType::Mount => Kind::Mount,
        LinuxNamespaceType::Ipc => Kind::Ipc,
        LinuxNamespaceType::Uts => Kind::Uts,
        LinuxNamespaceType::User => Kind::User,
        LinuxNamespaceType::Cgroup => Kind::Cgroup,
        LinuxNamespaceType::Time => Kind::Time,
    }
}

fn ns_plan(spec: &Spec) -> NsPlan {
    let mut plan = NsPlan { new: CloneFlags::empty(), join: Vec::new() };
    for ns in spec.linux().as_ref().and_then(|l| l.namespaces().as_ref()).into_iter().flatten() {
        let k = kind(ns.typ());
        match ns.path() {
            Some(p) if !p.as_os_str().is_empty() => plan.join.push((k, p.clone())),
            _ => plan.new |= k.flag(),
        }
    }
    plan.join.sort_by_key(|(k, _)| Kind::JOIN_ORDER.iter().position(|o| o == k));
    plan
}

/// The namespace kinds a container has (made or joined), to join them on exec.
pub fn namespace_kinds(spec: &Spec) -> Vec<Kind> {
    spec.linux().as_ref().and_then(|l| l.namespaces().as_ref()).into_iter().flatten().map(|n| kind(n.typ())).collect()
}

pub fn create(o: CreateOpts) -> Result<Pid> {
    state::validate_id(&o.id)?;
    let bundle = config::load(&o.bundle)?;
    let spec = &bundle.spec;
    let plan = ns_plan(spec);
    if !plan.new.contains(CloneFlags::CLONE_NEWNS) && !plan.join.iter().any(|(k, _)| *k == Kind::Mount) {
        return Err(Error::Invalid("linux.namespaces: a mount namespace is required".into()));
    }
    let linux = spec.linux().as_ref();
    let cgroups_path = linux.and_then(|l| l.cgroups_path().as_ref()).map(|p| p.to_string_lossy().into_owned());
    if o.systemd_cgroup {
        if let Some(p) = cgroups_path.as_deref().filter(|p| p.split(':').count() != 3) {
            return Err(Error::Invalid(format!("--systemd-cgroup: linux.cgroupsPath must be \"slice:prefix:name\", got {p:?}")));
        }
    }
    let cgroup = Cgroup::new(cgroups_path.as_deref(), &o.id)?;

    let dir = Dir::create(&o.root, &o.id)?;
    let mut undo = Undo { dir: &dir, cgroup: None, child: None, armed: true };
    state::write_atomic(&dir.file(state::CONFIG), &bundle.raw)?;
    let mut st = Persisted {
        id: o.id.clone(),
        pid: 0,
        pid_start: 0,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        owner: String::new(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        cgroup: cgroup.clone(),
    };
    dir.save(&st)?;
    nix::unistd::mkfifo(&dir.file(state::FIFO), Mode::from_bits_truncate(0o600)).ctx(|| "mkfifo exec.fifo".into())?;

    cgroup.create()?;
    undo.cgroup = Some(&cgroup);
    cgroup.apply(&device_rules(spec))?;
    let console = match (&o.console_socket, o.console_fd) {
        (_, Some(fd)) => Some(fd),
        (Some(p), None) => Some(crate::console::connect(p)?),
        (None, None) => None,
    };
    let (parent, child) = channel::pair().ctx(|| "socketpair".into())?;
    let new_userns = plan.new.contains(CloneFlags::CLONE_NEWUSER);
    let args = init::Init {
        id: &o.id,
        spec,
        rootfs: bundle.rootfs.clone(),
        fifo: dir.file(state::FIFO),
        chan: child,
        console,
        no_pivot: o.no_pivot,
        no_new_keyring: o.no_new_keyring,
        preserve_fds: o.preserve_fds,
        new_userns,
        new_cgroupns: plan.new.contains(CloneFlags::CLONE_NEWCGROUP),
        cgroup: &cgroup,
    };
    let pid = spawn_init(&plan, args, &parent)?;
    undo.child = Some(pid);

    if new_userns {
        write_id_maps(pid, linux.and_then(|l| l.uid_mappings().as_ref()), linux.and_then(|l| l.gid_mappings().as_ref()))?;
    }
    st.pid = pid.as_raw();
    let state_json = serde_json::to_string(&st.to_json(Status::Creating)).expect("serializes");
    parent.send(&Msg::Go(state_json.clone())).ctx(|| "start init".into())?;
    // Init prepares its mounts meanwhile; it waits for this before anything that needs the
    // cgroup (cgroup namespace, cgroup mounts, user code).
    if let Err(e) = cgroup.add_pid(pid.as_raw()) {
        // If init died first, its own error says why.
        return Err(match parent.try_recv(100) {
            Some(Msg::Error(m)) => Error::Init(m),
            _ => e.into(),
        });
    }
    // A dead init is reported by the loop below.
    let _ = parent.send(&Msg::CgroupJoined);
    if let Some(adj) = spec.process().as_ref().and_then(|p| p.oom_score_adj()) {
        conductor_sys::procfs::write(&format!("/proc/{pid}/oom_score_adj"), &adj.to_string())
            .ctx(|| "process.oomScoreAdj".into())?;
    }
    loop {
        match parent.recv().ctx(|| "wait for init".into())? {
            Some(Msg::CreateRuntimeHooks) => {
                let h = spec.hooks().as_ref();
                hooks::run("prestart", h.and_then(|h| h.prestart().as_ref()), state_json.as_bytes())?;
                hooks::run("createRuntime", h.and_then(|h| h.create_runtime().as_ref()), state_json.as_bytes())?;
                parent.send(&Msg::HooksDone).ctx(|| "resume init".into())?;
            }
            Some(Msg::Ready) => break,
            Some(Msg::Error(e)) => return Err(Error::Init(e)),
            _ => return Err(Error::Init("init exited during setup".into())),
        }
    }
    st.pid_start = conductor_sys::process::stat(pid).map(|s| s.start_time).unwrap_or(0);
    dir.save(&st)?;
    if let Some(p) = &o.pid_file {
        state::write_atomic(p, pid.to_string().as_bytes())?;
    }
    undo.armed = false;
    Ok(pid)
}

/// Clone init into its namespaces. Joining existing namespaces must happen before new ones are
/// made (a joined user namespace owns the new ones; a pid namespace applies to children only),
/// so then an intermediate process joins and clones init as a sibling (CLONE_PARENT).
fn spawn_init(plan: &NsPlan, args: init::Init, parent: &channel::Channel) -> Result<Pid> {
    if plan.join.is_empty() {
        let flags = plan.new - CloneFlags::CLONE_NEWCGROUP;
        return match clone3(&CloneArgs { flags, ..Default::default() }).ctx(|| "clone3".into())? {
            Forked::Child => init::main(args),
            Forked::Parent(pid) => Ok(pid),
        };
    }
    match clone3(&CloneArgs::default()).ctx(|| "clone3".into())? {
        Forked::Child => {
            for (k, path) in &plan.join {
                let res = std::fs::File::open(path)
                    .map_err(|e| e.to_string())
                    .and_then(|f| conductor_sys::ns::join(&f, k.flag(), &path.to_string_lossy()).map_err(|e| e.to_string()));
                if let Err(e) = res {
                    let _ = args.chan.send(&Msg::Error(format!("join {} namespace {}: {e}", k.proc_name(), path.display())));
                    conductor_sys::process::exit_now(1);
                }
            }
            let flags = (plan.new - CloneFlags::CLONE_NEWCGROUP) | CloneFlags::CLONE_PARENT;
            match clone3(&CloneArgs { flags, ..Default::default() }) {
                Ok(Forked::Child) => init::main(args),
                Ok(Forked::Parent(pid)) => {
                    let _ = args.chan.send(&Msg::Pid(pid.as_raw()));
                    conductor_sys::process::exit_now(0)
                }
                Err(e) => {
                    let _ = args.chan.send(&Msg::Error(format!("clone3: {e}")));
                    conductor_sys::process::exit_now(1)
                }
            }
        }
        Forked::Parent(mid) => {
            drop(args);
            let msg = parent.recv().ctx(|| "wait for intermediate".into());
            let _ = nix::sys::wait::waitpid(mid, None);
            match msg? {
                Some(Msg::Pid(p)) => Ok(Pid::from_raw(p)),
                Some(Msg::Error(e)) => Err(Error::Init(e)),
                _ => Err(Error::Init("namespace join failed".into())),
            }
        }
    }
}

/// The config's resources with the device rules every container needs appended (as runc does):
/// mknod of anything, the standard character devices, ptys and tun, plus `linux.devices`.
fn device_rules(spec: &Spec) -> LinuxResources {
    let linux = spec.linux().as_ref();
    let mut r = linux.and_then(|l| l.resources().clone()).unwrap_or_default();
    let rule = |typ: &str, major: Option<i64>, minor: Option<i64>, access: &str| {
        serde_json::from_value::<LinuxDeviceCgroup>(serde_json::json!({
            "allow": true, "type": typ, "major": major, "minor": minor, "access": access
        }))
        .expect("valid device rule")
    };
    let mut rules = r.devices().clone().unwrap_or_default();
    rules.push(rule("c", None, None, "m"));
    rules.push(rule("b", None, None, "m"));
    for (major, minor) in [
        (1, Some(3)),
        (1, Some(5)),
        (1, Some(7)),
        (1, Some(8)),
        (1, Some(9)),
        (5, Some(0)),
        (5, Some(1)),
        (5, Some(2)),
        (136, None),
        (10, Some(200)),
    ] {
        rules.push(rule("c", Some(major), minor, "rwm"));
    }
    for d in linux.and_then(|l| l.devices().as_ref()).into_iter().flatten() {
        let typ = serde_json::to_value(d.typ()).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_else(|| "c".into());
        rules.push(rule(&typ, Some(d.major()), Some(d.minor()), "rwm"));
    }
    r.set_devices(Some(rules));
    r
}

fn write_id_maps(pid: Pid, uids: Option<&Vec<LinuxIdMapping>>, gids: Option<&Vec<LinuxIdMapping>>) -> Result<()> {
    let text = |m: Option<&Vec<LinuxIdMapping>>| {
        m.into_iter().flatten().map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size())).collect::<String>()
    };
    for (file, body) in [("uid_map", text(uids)), ("gid_map", text(gids))] {
        if body.is_empty() {
            continue;
        }
        let path = format!("/proc/{pid}/{file}");
        tracing::debug!(target: conductor_sys::EXPLAIN, step = "write", path = %path, value = %body.trim());
        std::fs::write(&path, &body).ctx(|| format!("linux.{}Mappings", &file[..3]))?;
    }
    Ok(())
}

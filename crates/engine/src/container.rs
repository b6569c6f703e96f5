//! The engine's container operations: run, stop, kill, exec, list, inspect, logs, prune.
//! Every operation takes the container's name lock and first reconciles what a crashed
//! earlier command may have left half made.

use std::path::PathBuf;

use conductor_image::Store;
use nix::unistd::Pid;
use serde::Serialize;
use serde_json::{json, Value};

use crate::error::{Context, Error, Result};
use crate::monitor::{self, Launch};
use crate::options::RunOptions;
use crate::paths::Paths;
use crate::record::{self, Config, Dir, State, Status};
use crate::{name, spec};

pub struct Engine {
    pub paths: Paths,
    pub images: Store,
}

/// How `run` ended for the caller.
pub enum Outcome {
    Detached,
    Exited(i32),
}

/// One row of `ps`.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub name: String,
    pub image: String,
    pub command: String,
    pub created: String,
    pub status: String,
    pub running: bool,
    pub pid: i32,
    pub exit_code: Option<i32>,
    pub restart_count: u32,
    pub labels: std::collections::BTreeMap<String, String>,
}

impl Engine {
    pub fn open(paths: Paths) -> Result<Engine> {
        let images = Store::open(&paths.data)?;
        Ok(Engine { paths, images })
    }

    pub(crate) fn runtime_root(&self) -> PathBuf {
        self.paths.runtime_root()
    }

    /// Remove an image no container uses.
    pub fn remove_image(&self, image: &str) -> Result<()> {
        if let Some(c) = self.list(true).into_iter().find(|c| c.image == image) {
            return Err(Error::Invalid(format!("image {image:?} is used by container {:?}: stop it first", c.name)));
        }
        Ok(self.images.remove(image)?)
    }

    /// Create and start a container; in the foreground, wait for it and return its exit code.
    pub fn run(&self, image: &str, cname: &str, command: &[String], opts: RunOptions) -> Result<Outcome> {
        name::validate(cname)?;
        let img = self.images.get(image)?;
        let lock = record::lock(&self.paths, cname)?;
        self.reconcile(cname);
        let dir = Dir::of(&self.paths, cname);
        if dir.path.exists() {
            return Err(Error::NameInUse(cname.into()));
        }
        let args: Vec<String> = if command.is_empty() { img.config.cmd.clone() } else { command.to_vec() };
        if args.is_empty() {
            return Err(Error::Invalid(format!("image {image:?} has no default command: give one after --")));
        }
        if let Some(req) = &opts.network {
            self.precheck_network(req)?;
        }
        std::fs::create_dir_all(self.paths.containers()).ctx(|| "create containers dir".into())?;
        std::fs::create_dir(&dir.path).ctx(|| format!("create {}", dir.path.display()))?;
        let mut undo = Undo { engine: self, name: cname, dir: &dir, armed: true };
        for d in [dir.upper(), dir.work(), dir.rootfs()] {
            std::fs::create_dir(&d).ctx(|| format!("create {}", d.display()))?;
        }
        let config = Config {
            name: cname.into(),
            image: image.into(),
            command: args.clone(),
            created: monitor::now(),
            options: opts.clone(),
        };
        dir.save_state(&State::creating())?;
        dir.save_config(&config)?;
        let etc = crate::etc::write(&dir, opts.hostname.as_deref().unwrap_or(cname))?;
        conductor_image::mount_rootfs(&img, &dir.upper(), &dir.work(), &dir.rootfs())?;
        for c in &opts.copy {
            crate::cp::copy_in(&dir.rootfs(), &c.src, &c.dst)?;
        }
        let oci = spec::generate(&spec::Input {
            name: cname,
            image,
            args: &args,
            image_env: &img.config.env,
            image_workdir: Some(img.config.workdir.as_str()),
            opts: &opts,
            etc_files: &etc,
        });
        record::write_json(&dir.path.join("config.json"), &oci)?;
        let launch = Launch {
            runtime_root: self.runtime_root(),
            name: cname.into(),
            dir: dir.path.clone(),
            tty: opts.tty,
            interactive: opts.interactive,
            detach: opts.detach,
            lock_fd: std::os::fd::AsRawFd::as_raw_fd(&*lock),
            on_created: opts.network.as_ref().map(|req| {
                let dir = &dir;
                Box::new(move |pid: i32| self.connect_created(cname, dir, pid, req).map(drop))
                    as Box<dyn Fn(i32) -> Result<()> + '_>
            }),
        };
        let mon = monitor::spawn(&launch)?;
        undo.armed = false;
        drop(lock);
        if opts.detach {
            return Ok(Outcome::Detached);
        }
        // Signals to us (Ctrl-C without a terminal) reach the container through the monitor.
        conductor_runtime::wait::foreground(mon, None)?;
        let st = dir.state()?;
        Ok(Outcome::Exited(st.exit_code.unwrap_or(255)))
    }

    /// SIGTERM, SIGKILL after `timeout`, then remove every trace of the container.
    pub fn stop(&self, cname: &str, timeout: std::time::Duration) -> Result<()> {
        name::validate(cname)?;
        let _lock = record::lock(&self.paths, cname)?;
        let dir = Dir::of(&self.paths, cname);
        if !dir.path.exists() {
            return Err(Error::NoContainer(cname.into()));
        }
        // For good: the monitor's restart policy must not bring it back (restart.rs).
        crate::restart::mark_stopping(&dir)?;
        if let Ok(st) = dir.state() {
            if self.init_alive(&st) {
                // A frozen process cannot act on SIGTERM: thaw a paused container first.
                let _ = conductor_runtime::lifecycle::resume(&self.runtime_root(), cname);
                let _ = conductor_runtime::kill(&self.runtime_root(), cname, libc::SIGTERM, false);
                if !wait_dead(&st, timeout) {
                    let _ = conductor_runtime::kill(&self.runtime_root(), cname, libc::SIGKILL, true);
                    wait_dead(&st, std::time::Duration::from_secs(10));
                }
            }
            // Let the monitor record the exit and leave.
            wait_pid_gone(st.monitor_pid, st.monitor_start, std::time::Duration::from_secs(5));
        }
        self.remove(cname, &dir)
    }

    /// Remove a container's runtime state, cgroup, rootfs mount and directory.
    fn remove(&self, cname: &str, dir: &Dir) -> Result<()> {
        self.disconnect(cname, dir)?;
        match conductor_runtime::delete(&self.runtime_root(), cname, true) {
            Ok(()) | Err(conductor_runtime::Error::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        conductor_image::unmount_rootfs(&dir.rootfs())?;
        std::fs::remove_dir_all(&dir.path).ctx(|| format!("remove {}", dir.path.display()))
    }

    pub(crate) fn init_alive(&self, st: &State) -> bool {
        st.pid > 0 && conductor_sys::process::is_alive(Pid::from_raw(st.pid), Some(st.pid_start))
    }

    /// The status as the user sees it, correcting a record whose monitor died unexpectedly.
    pub fn status(&self, st: &State) -> Status {
        match st.status {
            Status::Running if !self.init_alive(st) => Status::Exited,
            s => s,
        }
    }

    /// Clean up a container that a crashed `run` left half made; the caller holds the name's
    /// lock. True when something was removed.
    fn reconcile(&self, cname: &str) -> bool {
        let dir = Dir::of(&self.paths, cname);
        if !dir.path.exists() || !half_made(&dir) {
            return false;
        }
        tracing::warn!("cleaning up half-made container {cname}");
        self.remove(cname, &dir).is_ok()
    }

    pub fn kill(&self, cname: &str, signal: i32) -> Result<()> {
        let dir = self.existing(cname)?;
        let st = dir.state()?;
        if !self.init_alive(&st) {
            return Err(Error::Invalid(format!("container {cname:?} is not running")));
        }
        Ok(conductor_runtime::kill(&self.runtime_root(), cname, signal, false)?)
    }

    pub(crate) fn existing(&self, cname: &str) -> Result<Dir> {
        name::validate(cname)?;
        let dir = Dir::of(&self.paths, cname);
        if !dir.exists() {
            return Err(Error::NoContainer(cname.into()));
        }
        Ok(dir)
    }

    pub fn list(&self, all: bool) -> Vec<Summary> {
        let names = record::names(&self.paths);
        // What a killed `run` left is cleaned, not listed (checked again under the lock: a
        // `run` in progress looks the same until it finishes).
        for n in names.iter().filter(|n| half_made(&Dir::of(&self.paths, n))) {
            if let Ok(_lock) = record::lock(&self.paths, n) {
                self.reconcile(n);
            }
        }
        names
            .into_iter()
            .filter_map(|n| {
                let dir = Dir::of(&self.paths, &n);
                let (c, st) = (dir.config().ok()?, dir.state().ok()?);
                let status = self.live_status(&n, &st);
                let running = matches!(status, Status::Running | Status::Paused);
                (all || running).then(|| Summary {
                    name: c.name,
                    image: c.image,
                    command: c.command.join(" "),
                    created: c.created,
                    status: match status {
                        Status::Running => "running".into(),
                        Status::Paused => "paused".into(),
                        Status::Creating => "creating".into(),
                        Status::Exited => format!("exited ({})", st.exit_code.map_or("?".into(), |c| c.to_string())),
                    },
                    running,
                    pid: if running { st.pid } else { 0 },
                    exit_code: st.exit_code,
                    restart_count: st.restart_count,
                    labels: c.options.labels,
                })
            })
            .collect()
    }

    pub fn inspect(&self, cname: &str) -> Result<Value> {
        let dir = self.existing(cname)?;
        let (c, st) = (dir.config()?, dir.state()?);
        let oci: Value =
            std::fs::read(dir.path.join("config.json")).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or(Value::Null);
        let status = self.live_status(cname, &st);
        let running = matches!(status, Status::Running | Status::Paused);
        Ok(json!({
            "Name": c.name,
            "Image": c.image,
            "Command": c.command,
            "Created": c.created,
            "State": {
                "Status": status,
                "Running": running,
                "Paused": status == Status::Paused,
                "Pid": if running { st.pid } else { 0 },
                "ExitCode": st.exit_code,
                "OOMKilled": st.oom_killed,
                "StartedAt": st.started,
                "FinishedAt": st.finished,
                "Error": st.error,
                "RestartCount": st.restart_count,
            },
            "RestartPolicy": c.options.restart.to_string(),
            "Labels": c.options.labels,
            "Rootfs": dir.rootfs(),
            "LogPath": dir.log(),
            "Mounts": oci["mounts"],
            "Config": oci,
            "Options": c.options,
            "Network": crate::network::read_record(&dir)?,
        }))
    }

    pub fn logs(&self, cname: &str, tail: Option<usize>, follow: bool, out: &mut impl std::io::Write) -> Result<()> {
        let dir = self.existing(cname)?;
        let running =
            || dir.state().map(|st| self.init_alive(&st) || pid_alive(st.monitor_pid, st.monitor_start)).unwrap_or(false);
        crate::logs::print(&dir.log(), tail, follow, running, out).ctx(|| format!("logs of {cname}"))
    }

    /// Run a process in the container: its namespaces, root and cgroup.
    pub fn exec(&self, cname: &str, command: &[String], e: &ExecOptions) -> Result<Outcome> {
        let dir = self.existing(cname)?;
        let st = dir.state()?;
        if !self.init_alive(&st) {
            return Err(Error::Invalid(format!("container {cname:?} is not running")));
        }
        if self.live_status(cname, &st) == Status::Paused {
            return Err(Error::Invalid(format!("container {cname:?} is paused: unpause it first")));
        }
        let overrides = conductor_runtime::exec::Overrides {
            args: if command.is_empty() { vec!["/bin/bash".into()] } else { command.to_vec() },
            tty: e.tty,
            cwd: e.workdir.as_ref().map(PathBuf::from),
            env: e.env.clone(),
            user: e.user.map(|(uid, gid)| (uid, Some(gid.unwrap_or(uid)))),
        };
        let p = conductor_runtime::exec::process_for(&self.runtime_root(), cname, &overrides)?;
        let (console_fd, master_rx) = if e.tty {
            let (a, b) = std::os::unix::net::UnixStream::pair().ctx(|| "socketpair".into())?;
            (Some(a.into()), Some(b))
        } else {
            (None, None)
        };
        let pid = conductor_runtime::exec(conductor_runtime::ExecOpts {
            root: self.runtime_root(),
            id: cname.into(),
            process: p,
            console_socket: None,
            console_fd,
            pid_file: None,
            preserve_fds: 0,
        })?;
        if e.detach {
            return Ok(Outcome::Detached);
        }
        let tty = match master_rx {
            Some(rx) => Some(conductor_sys::pty::recv_fd(&rx).ctx(|| "receive pty master".into())?.0),
            None => None,
        };
        Ok(Outcome::Exited(conductor_runtime::wait::foreground(pid, tty)?))
    }

    /// Remove what no container owns any more: half-made containers, runtime state without a
    /// container, rootfs mounts without a record. Returns what was removed.
    pub fn prune(&self) -> Vec<String> {
        let mut removed = Vec::new();
        for n in record::names(&self.paths) {
            let Ok(_lock) = record::lock(&self.paths, &n) else { continue };
            if self.reconcile(&n) {
                removed.push(format!("container {n}"));
            }
        }
        removed.extend(self.prune_networks());
        for s in conductor_runtime::list(&self.runtime_root()) {
            if !Dir::of(&self.paths, &s.id).exists() && conductor_runtime::delete(&self.runtime_root(), &s.id, true).is_ok() {
                removed.push(format!("runtime state {}", s.id));
            }
        }
        removed
    }
}

#[derive(Default)]
pub struct ExecOptions {
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<(u32, Option<u32>)>,
    pub tty: bool,
    pub detach: bool,
}

/// Undo a half-made `run`.
struct Undo<'a> {
    engine: &'a Engine,
    name: &'a str,
    dir: &'a Dir,
    armed: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.engine.remove(self.name, self.dir);
            let _ = std::fs::remove_dir_all(&self.dir.path);
        }
    }
}

/// What a killed `run` leaves: no record, or still "creating" with no monitor alive.
fn half_made(dir: &Dir) -> bool {
    match (dir.config(), dir.state()) {
        (Ok(_), Ok(st)) => st.status == Status::Creating && !pid_alive(st.monitor_pid, st.monitor_start),
        _ => dir.path.exists(),
    }
}

fn pid_alive(pid: i32, start: u64) -> bool {
    pid > 0 && conductor_sys::process::is_alive(Pid::from_raw(pid), Some(start))
}

fn wait_dead(st: &State, timeout: std::time::Duration) -> bool {
    wait_pid_gone(st.pid, st.pid_start, timeout)
}

fn wait_pid_gone(pid: i32, start: u64, timeout: std::time::Duration) -> bool {
    let end = std::time::Instant::now() + timeout;
    while pid_alive(pid, start) {
        if std::time::Instant::now() >= end {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    true
}

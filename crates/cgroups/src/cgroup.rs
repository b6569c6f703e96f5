//! One container's cgroup: the handle the runtime keeps (serialisable, so it can be saved in the
//! state file and reopened without resolving cgroupsPath again) and every operation on it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::freezer::{self, FreezerState};
use crate::hierarchy::{self, Hierarchy};
use crate::layout::Layout;
use crate::proc_cgroup::{self, ProcCgroup};
use crate::resources::{self, apply, probe::LiveProbe};
use crate::stats::{self, Stats};
use crate::{fs, v1, v2};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroup {
    layout: Layout,
}

impl Cgroup {
    /// Resolve `cgroups_path` (the spec's `linux.cgroupsPath`) for this host and this process.
    /// Nothing is created yet.
    pub fn new(cgroups_path: Option<&str>, container_id: &str) -> Result<Cgroup> {
        let own = proc_cgroup::parse(&fs::read(Path::new("/proc/self/cgroup"))?)?;
        Self::resolve(hierarchy::detect()?, &own, cgroups_path, container_id)
    }

    /// [`Cgroup::new`] with the host's layout and the runtime's own cgroups given, for tests and
    /// for callers that resolve on behalf of another process.
    pub fn resolve(h: &Hierarchy, own: &[ProcCgroup], cgroups_path: Option<&str>, container_id: &str) -> Result<Cgroup> {
        Ok(Cgroup { layout: Layout::resolve(h, own, cgroups_path, container_id)? })
    }

    /// Reopen from a layout saved earlier (also possible through serde on `Cgroup` itself).
    pub fn from_layout(layout: Layout) -> Cgroup {
        Cgroup { layout }
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn is_v2(&self) -> bool {
        matches!(self.layout, Layout::V2 { .. })
    }

    /// Directory per hierarchy, keyed by its controllers ("cpu,cpuacct", "name=systemd"), the
    /// hybrid cgroup2 one as "unified", the v2 one as "" — for diagnostics.
    pub fn paths(&self) -> BTreeMap<String, PathBuf> {
        match &self.layout {
            Layout::V1 { dirs, unified } => dirs
                .iter()
                .map(|d| (d.controllers.join(","), d.path.clone()))
                .chain(unified.iter().map(|u| ("unified".to_string(), u.path.clone())))
                .collect(),
            Layout::V2 { dir } => BTreeMap::from([(String::new(), dir.path.clone())]),
        }
    }

    /// Whether the cgroup directory exists (the v1 check uses every hierarchy).
    pub fn exists(&self) -> bool {
        self.layout.all_dirs().iter().all(|d| d.is_dir())
    }

    /// mkdir -p in every hierarchy. v1: cpuset levels get their parent's cpus/mems; v2: each
    /// ancestor delegates its controllers through cgroup.subtree_control. Idempotent.
    pub fn create(&self) -> Result<()> {
        // A shared parent (the default "conductor") can be removed by another container's
        // delete (remove_empty_parent) between our mkdir of it and of the level below: then a
        // level is missing (ENOENT), was seen existing and is gone (EEXIST), or its files went
        // with it (ENODEV). Start again.
        let mut attempt = 0;
        loop {
            let mut made = Vec::new();
            let r = match &self.layout {
                Layout::V1 { dirs, unified } => v1::create(dirs, unified.as_ref(), &mut made),
                Layout::V2 { dir } => v2::create(dir, &mut made),
            };
            let Err(e) = r else { return Ok(()) };
            // All or nothing: what this attempt made goes again, deepest first (a parent
            // another cgroup has meanwhile moved into stays: rmdir refuses a non-empty one).
            for d in made.iter().rev() {
                let _ = fs::rmdir(d);
            }
            match e.raw_os_error() {
                Some(libc::ENOENT | libc::EEXIST | libc::ENODEV) if attempt < 5 => attempt += 1,
                _ => return Err(e),
            }
        }
    }

    /// Move process `pid` (all its threads) into the cgroup, in every hierarchy.
    pub fn add_pid(&self, pid: i32) -> Result<()> {
        for dir in self.layout.all_dirs() {
            write_procs(dir, pid)?;
        }
        Ok(())
    }

    /// v2 only: an fd of the cgroup directory for clone3(CLONE_INTO_CGROUP), which starts the
    /// child inside the cgroup with no window outside it. None on v1, where that flag would
    /// only place the child in the (controller-less) unified hierarchy.
    pub fn v2_dir_fd(&self) -> Result<Option<OwnedFd>> {
        match &self.layout {
            Layout::V2 { dir } => {
                let f = File::open(&dir.path).map_err(|e| Error::io("open", &dir.path, e))?;
                Ok(Some(OwnedFd::from(f)))
            }
            Layout::V1 { .. } => Ok(None),
        }
    }

    /// Apply `linux.resources`. Everything is validated first (see the crate docs); on a kernel
    /// refusal midway, the single-value files already written are restored.
    pub fn apply(&self, r: &LinuxResources) -> Result<()> {
        if let Some(missing) = self.layout.all_dirs().into_iter().find(|d| !d.is_dir()) {
            return Err(Error::Unsupported(format!("cgroup {} does not exist (create it first)", missing.display())));
        }
        let probe = LiveProbe::new(&self.layout);
        let steps = resources::plan(r, &probe)?;
        apply::execute(&self.layout, &steps)
    }

    /// Every process in the cgroup and its child cgroups, sorted.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let mut all = BTreeSet::new();
        for dir in self.layout.all_dirs() {
            collect_procs(dir, &mut all)?;
        }
        Ok(all.into_iter().collect())
    }

    pub fn freeze(&self) -> Result<()> {
        self.set_frozen(true)
    }

    pub fn thaw(&self) -> Result<()> {
        self.set_frozen(false)
    }

    fn set_frozen(&self, frozen: bool) -> Result<()> {
        match &self.layout {
            Layout::V2 { dir } => freezer::v2_set(&dir.path, frozen),
            Layout::V1 { .. } => freezer::v1_set(self.freezer_dir()?, frozen),
        }
    }

    pub fn state(&self) -> Result<FreezerState> {
        match &self.layout {
            Layout::V2 { dir } => freezer::v2_state(&dir.path),
            Layout::V1 { .. } => freezer::v1_state(self.freezer_dir()?),
        }
    }

    fn freezer_dir(&self) -> Result<&Path> {
        self.layout.v1_dir("freezer").ok_or_else(|| Error::Unsupported("the freezer controller is not mounted".into()))
    }

    /// Send `signal` to every process in the cgroup. SIGKILL on v2 uses cgroup.kill when the
    /// kernel has it (5.14+). Otherwise the cgroup is frozen while signalling, so a process
    /// cannot fork a child we would miss; afterwards it is thawed (for SIGKILL always, so the
    /// kill lands; for other signals only if it was not frozen before).
    pub fn kill_all(&self, signal: i32) -> Result<()> {
        let sig = Signal::try_from(signal).map_err(|_| Error::invalid("signal", format!("{signal} is not a signal")))?;
        if let Layout::V2 { dir } = &self.layout {
            let kill_file = dir.path.join("cgroup.kill");
            if sig == Signal::SIGKILL && kill_file.exists() {
                return fs::write(&kill_file, "1");
            }
        }
        let can_freeze = self.is_v2() || self.layout.v1_dir("freezer").is_some();
        let was_frozen = can_freeze && self.state()? == FreezerState::Frozen;
        let froze = can_freeze && !was_frozen && self.freeze().is_ok();
        let result = self.pids().map(|pids| signal_all(&pids, sig));
        if froze || (was_frozen && sig == Signal::SIGKILL) {
            self.thaw()?;
        }
        result
    }

    /// Remove the cgroup in every hierarchy, child cgroups first. Processes that were just
    /// killed may keep a cgroup busy for a moment, so EBUSY is retried for about a second.
    /// Missing directories are fine: destroying twice is not an error.
    pub fn destroy(&self) -> Result<()> {
        let mut first_err = None;
        for dir in self.layout.all_dirs() {
            if let Err(e) = remove_tree(dir) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Remove the parent directories named `name` (e.g. the default "conductor" parent) when no
    /// other cgroup is left in them. Errors are ignored: a busy parent stays.
    pub fn remove_empty_parent(&self, name: &str) {
        for dir in self.layout.all_dirs() {
            if let Some(parent) = dir.parent().filter(|p| p.file_name().is_some_and(|n| n == name)) {
                if std::fs::remove_dir(parent).is_ok() {
                    tracing::debug!(target: crate::fs::EXPLAIN, step = "rmdir", path = %parent.display());
                }
            }
        }
    }

    pub fn stats(&self) -> Result<Stats> {
        match &self.layout {
            Layout::V2 { dir } => stats::read_v2(&dir.path),
            Layout::V1 { .. } => stats::read_v1(&self.layout),
        }
    }

    /// How many processes the kernel's OOM killer has killed in this cgroup.
    pub fn oom_kill_count(&self) -> Result<u64> {
        match &self.layout {
            Layout::V2 { dir } => stats::v2_oom_kill_count(&dir.path),
            Layout::V1 { .. } => stats::v1_oom_kill_count(&self.layout),
        }
    }
}

/// A task that is still being forked (TASK_NEW) makes the write fail with EINVAL; retry a few
/// times, as runc does.
fn write_procs(dir: &Path, pid: i32) -> Result<()> {
    let file = dir.join("cgroup.procs");
    let mut attempt = 0;
    loop {
        match fs::write(&file, &pid.to_string()) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && attempt < 5 => {
                attempt += 1;
                sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

fn collect_procs(dir: &Path, out: &mut BTreeSet<i32>) -> Result<()> {
    let text = match std::fs::read_to_string(dir.join("cgroup.procs")) {
        Ok(t) => t,
        // The cgroup (or a child) went away while we looked: it has no processes.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("read", &dir.join("cgroup.procs"), e)),
    };
    out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    for child in fs::child_dirs(dir) {
        collect_procs(&child, out)?;
    }
    Ok(())
}

fn signal_all(pids: &[i32], sig: Signal) {
    for &pid in pids {
        match kill(Pid::from_raw(pid), sig) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => tracing::warn!(pid, error = %e, "cannot signal process in cgroup"),
        }
    }
}

fn remove_tree(dir: &Path) -> Result<()> {
    for child in fs::child_dirs(dir) {
        remove_tree(&child)?;
    }
    let mut delay = Duration::from_millis(5);
    let mut waited = Duration::ZERO;
    loop {
        match fs::rmdir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && waited < Duration::from_secs(1) => {
                sleep(delay);
                waited += delay;
                delay = (delay * 2).min(Duration::from_millis(100));
            }
            Err(e) => return Err(Error::io("rmdir", dir, e)),
        }
    }
}

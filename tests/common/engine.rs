//! A sandbox for the `conductor` engine: its own data and run roots, unique container names,
//! and a busybox image imported from a tarball; checks that nothing is left behind.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use conductor_network::Netns;

static N: AtomicUsize = AtomicUsize::new(0);

pub struct Engine {
    pub dir: PathBuf,
    names: Vec<String>,
    /// The network namespace conductor runs in (a sandbox standing in for the host), if not ours.
    netns: Option<Arc<Netns>>,
}

impl Engine {
    /// A sandbox with a busybox image named `bb` already imported.
    pub fn new(test: &str) -> Engine {
        let dir =
            std::env::temp_dir().join(format!("cnd-engine-{test}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let e = Engine { dir, names: Vec::new(), netns: None };
        let tar = super::image::busybox_tar(&e.dir);
        e.ok(&["import", tar.to_str().unwrap(), "bb"]);
        std::fs::remove_file(tar).unwrap();
        e
    }

    /// Like [`Engine::new`], with every conductor command run inside `ns`.
    pub fn in_netns(test: &str, ns: Arc<Netns>) -> Engine {
        let mut e = Engine::new(test);
        e.netns = Some(ns);
        e
    }

    /// A container name unique to this test process (cgroups are machine-wide).
    pub fn name(&mut self, n: &str) -> String {
        let name = format!("t{}-{n}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
        self.names.push(name.clone());
        name
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(super::bin("conductor"));
        c.env("CONDUCTOR_ROOT", self.dir.join("data")).env("CONDUCTOR_RUNROOT", self.dir.join("run"));
        c
    }

    /// Run conductor; output through files (a detached container inherits no pipe of ours, but
    /// a failing monitor might).
    pub fn run(&self, args: &[&str]) -> Output {
        let mut c = self.cmd();
        c.args(args);
        match &self.netns {
            None => super::output_via_files(&mut c, &self.dir),
            // Spawned from a thread inside the namespace: conductor (and its monitors) live there.
            Some(ns) => conductor_network::in_netns(ns, || Ok(super::output_via_files(&mut c, &self.dir))).unwrap(),
        }
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(o.status.success(), "conductor {args:?} failed ({:?}): {}", o.status.code(), String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    }

    pub fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(!o.status.success(), "conductor {args:?} should fail; stdout: {}", String::from_utf8_lossy(&o.stdout));
        String::from_utf8(o.stderr).unwrap()
    }

    pub fn inspect(&self, name: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["inspect", name])).unwrap()
    }

    /// Nothing of this sandbox's containers remains: directories, runtime state, mounts,
    /// cgroups, processes.
    pub fn assert_clean(&self) {
        let containers: Vec<_> = std::fs::read_dir(self.dir.join("data/containers"))
            .map(|r| r.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(containers.is_empty(), "containers left: {containers:?}");
        let state: Vec<_> = std::fs::read_dir(self.dir.join("run/runtime"))
            .map(|r| r.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(state.is_empty(), "runtime state left: {state:?}");
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(self.dir.to_str().unwrap()), "mounts left under {}", self.dir.display());
        for n in &self.names {
            assert!(super::cgroup_dirs(n).is_empty(), "cgroups left for {n}");
            assert!(super::host::pids_mentioning(n).is_empty(), "processes left for {n}");
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        for n in self.names.clone() {
            let _ = self.run(&["stop", "-t", "0", &n]);
        }
        let _ = self.run(&["rmi", "bb"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

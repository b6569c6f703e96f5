//! Shared pieces of the root integration tests: a serial lock, a self-cleaning test cgroup, and
//! helper children (this same test binary re-run in a "helper" mode, so no unsafe fork).

#![allow(dead_code)]

pub mod explain;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use conductor_cgroups::Cgroup;
use oci_spec::runtime::LinuxResources;

pub const HELPER_ENV: &str = "CONDUCTOR_CGROUP_TEST_HELPER";

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Skip (pass) the test with a message unless we are root.
#[macro_export]
macro_rules! require_root {
    () => {
        if !common::is_root() {
            eprintln!("skipping: needs root");
            return;
        }
    };
}

/// The tests measure CPU time; running them one at a time keeps them from skewing each other.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn resources(json: &str) -> LinuxResources {
    serde_json::from_str(json).expect("test resources JSON")
}

/// A uniquely named cgroup below this process's own cgroup (a relative cgroupsPath), removed
/// on drop even when the test panics, together with the helper children it started.
pub struct TestCgroup {
    pub cg: Cgroup,
    pub name: String,
    children: Vec<Child>,
}

impl TestCgroup {
    pub fn new() -> TestCgroup {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!("conductor-test-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
        let cg = Cgroup::new(Some(&name), &name).expect("resolve test cgroup");
        let t = TestCgroup { cg, name, children: Vec::new() };
        t.cg.create().expect("create test cgroup");
        t
    }

    /// Start a helper in `mode`, move it into the cgroup, then let it run.
    pub fn spawn(&mut self, mode: &str) -> i32 {
        let mut child = spawn_helper(mode);
        let pid = child.id() as i32;
        self.cg.add_pid(pid).expect("add helper to cgroup");
        child.stdin.as_mut().expect("stdin").write_all(b"g").expect("start helper");
        self.children.push(child);
        pid
    }

    pub fn child(&mut self, pid: i32) -> &mut Child {
        self.children.iter_mut().find(|c| c.id() as i32 == pid).expect("our child")
    }

    /// Wait for a helper to end on its own (or be killed), with a deadline.
    pub fn wait(&mut self, pid: i32, timeout: Duration) -> ExitStatus {
        let child = self.child(pid);
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "helper {pid} did not exit within {timeout:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kill one of our helpers by pid and reap it.
    pub fn kill(&mut self, pid: i32) {
        let child = self.child(pid);
        let _ = child.kill();
        let _ = child.wait();
    }

    pub fn is_v2(&self) -> bool {
        self.cg.is_v2()
    }

    /// The directory holding `controller`'s files: on v1 that controller's hierarchy, on v2 the
    /// one directory (where every controller's files live).
    pub fn dir(&self, controller: &str) -> PathBuf {
        let paths = self.cg.paths();
        if self.is_v2() {
            return paths.get("").cloned().expect("v2 cgroup dir");
        }
        paths
            .into_iter()
            .find(|(k, _)| k.split(',').any(|c| c == controller))
            .map(|(_, p)| p)
            .unwrap_or_else(|| panic!("no v1 hierarchy for controller {controller}"))
    }

    pub fn read(&self, controller: &str, file: &str) -> String {
        let path = self.dir(controller).join(file);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())).trim().to_string()
    }

    /// A flat-keyed file ("key value" lines: cpu.stat, memory.events, ...) as a map; lines
    /// whose value is not a number are left out.
    pub fn read_keyed(&self, controller: &str, file: &str) -> BTreeMap<String, u64> {
        self.read(controller, file)
            .lines()
            .filter_map(|l| l.split_once(' '))
            .filter_map(|(k, v)| Some((k.to_string(), v.trim().parse().ok()?)))
            .collect()
    }

    /// One value of a flat-keyed file; panics naming the file when the key is missing.
    pub fn keyed(&self, controller: &str, file: &str, key: &str) -> u64 {
        *self.read_keyed(controller, file).get(key).unwrap_or_else(|| panic!("{file} has no {key} line"))
    }

    /// CPU time the cgroup's tasks used, in ns, straight from the kernel's counter:
    /// v1 cpuacct.usage, v2 cpu.stat usage_usec.
    pub fn cpu_usage_ns(&self) -> u64 {
        if self.is_v2() {
            self.keyed("cpu", "cpu.stat", "usage_usec") * 1000
        } else {
            self.read("cpuacct", "cpuacct.usage").parse().expect("cpuacct.usage")
        }
    }

    /// CFS bandwidth counters from cpu.stat: (periods throttled, time throttled in ns);
    /// v1 names them nr_throttled / throttled_time, v2 nr_throttled / throttled_usec.
    pub fn cpu_throttled(&self) -> (u64, u64) {
        let st = self.read_keyed("cpu", "cpu.stat");
        let get = |k: &str| *st.get(k).unwrap_or_else(|| panic!("cpu.stat has no {k}"));
        let ns = if self.is_v2() { get("throttled_usec") * 1000 } else { get("throttled_time") };
        (get("nr_throttled"), ns)
    }

    /// The OOM killer's count in the cgroup's own file: v1 memory.oom_control, v2
    /// memory.events, both as an "oom_kill N" line.
    pub fn oom_kills(&self) -> u64 {
        let file = if self.is_v2() { "memory.events" } else { "memory.oom_control" };
        self.keyed("memory", file, "oom_kill")
    }

    /// What the kernel says about freezing: v1 freezer.state, v2 cgroup.freeze plus the
    /// "frozen" line of cgroup.events, as "THAWED" / "FREEZING" / "FROZEN".
    pub fn kernel_freezer_state(&self) -> String {
        if !self.is_v2() {
            return self.read("freezer", "freezer.state");
        }
        let asked = self.read("", "cgroup.freeze") == "1";
        let frozen = self.keyed("", "cgroup.events", "frozen") == 1;
        match (asked, frozen) {
            (false, false) => "THAWED",
            (true, false) => "FREEZING",
            (true, true) => "FROZEN",
            (false, true) => "THAWING",
        }
        .to_string()
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // A frozen task only dies once thawed.
        let _ = self.cg.thaw();
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Err(e) = self.cg.destroy() {
            eprintln!("cleanup of test cgroup {} failed: {e}", self.name);
        }
    }
}

fn spawn_helper(mode: &str) -> Child {
    Command::new(std::env::current_exe().expect("current_exe"))
        .args(["--exact", "helper_entry", "--nocapture", "--test-threads=1", "-q"])
        .env(HELPER_ENV, mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn helper")
}

/// Poll `cond` every 10 ms until it holds; panic with `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Start a "hold" helper and wait until its 8 MiB are charged to the cgroup.
pub fn spawn_holding(t: &mut TestCgroup) -> i32 {
    let pid = t.spawn("hold");
    wait_until("8 MiB charged", Duration::from_secs(5), || {
        t.cg.stats().map(|s| s.memory.usage.usage >= 8 << 20).unwrap_or(false)
    });
    pid
}

pub fn killed_by(status: ExitStatus) -> Option<i32> {
    status.signal()
}

pub fn all_dirs_gone(cg: &Cgroup) -> bool {
    cg.paths().values().all(|p| !Path::new(p).exists())
}

/// What a helper child does, selected by HELPER_ENV. Every mode first waits for one byte on
/// stdin, sent once the test has moved it into the cgroup.
pub mod helper {
    use super::*;

    pub fn run(mode: &str) -> ! {
        let mut go = [0u8; 1];
        let _ = std::io::stdin().read(&mut go);
        let code = match mode {
            "busy" => busy(1),
            "busy2" => busy(2),
            "alloc" => alloc(),
            "fork" => fork_until_refused(),
            "devices" => devices(),
            "idle" => idle(),
            "hold" => hold(),
            other => {
                eprintln!("unknown helper mode {other}");
                2
            }
        };
        std::process::exit(code)
    }

    fn busy(threads: usize) -> i32 {
        for _ in 1..threads {
            std::thread::spawn(spin);
        }
        spin()
    }

    fn spin() -> ! {
        let mut x = 0u64;
        loop {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }

    /// Touch memory 1 MiB at a time until killed; exit 0 if 512 MiB fit (the limit failed).
    fn alloc() -> i32 {
        let mut hold = Vec::new();
        for _ in 0..512 {
            hold.push(std::hint::black_box(vec![1u8; 1 << 20]));
        }
        0
    }

    /// Spawn sleepers until the kernel refuses. Exit 100 + how many started if the refusal was
    /// EAGAIN (the pids limit), 1 for another error, 50 if nothing was refused.
    fn fork_until_refused() -> i32 {
        let mut kids = Vec::new();
        let mut code = 50;
        for _ in 0..20 {
            match Command::new("/bin/sleep").arg("30").stdin(Stdio::null()).spawn() {
                Ok(k) => kids.push(k),
                Err(e) => {
                    code = if e.raw_os_error() == Some(libc::EAGAIN) { 100 + kids.len() as i32 } else { 1 };
                    break;
                }
            }
        }
        for mut k in kids {
            let _ = k.kill();
            let _ = k.wait();
        }
        code
    }

    /// Exit 0 if /dev/null opens and /dev/zero is refused with EPERM; 10 if both open;
    /// 11/12 for other outcomes.
    fn devices() -> i32 {
        let null = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null");
        let zero = std::fs::File::open("/dev/zero");
        match (null, zero) {
            (Ok(_), Err(e)) if e.raw_os_error() == Some(libc::EPERM) => 0,
            (Ok(_), Ok(_)) => 10,
            (Err(_), _) => 11,
            _ => 12,
        }
    }

    /// Touch 8 MiB (charged to the cgroup we are in now), then idle.
    fn hold() -> i32 {
        let held = std::hint::black_box(vec![1u8; 8 << 20]);
        let code = idle();
        drop(held);
        code
    }

    /// Block until stdin closes (the test drops or kills us).
    fn idle() -> i32 {
        let mut rest = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut rest);
        0
    }
}

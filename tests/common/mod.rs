//! Shared fixtures for the root integration tests: a sandbox (temp state root + busybox bundle),
//! the built binaries, and leak checks (mounts, cgroups, processes, state dirs).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};

/// Skip (return true) when not root: these tests need real namespaces, mounts and cgroups.
pub fn skip_unless_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return false;
    }
    eprintln!("skipping: needs root (namespaces, mounts, cgroups)");
    true
}

/// A binary of this workspace, built by `cargo build` next to the test executable.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let p = dir.join(name);
    assert!(p.exists(), "{} not built: run `cargo build --workspace` first", p.display());
    p
}

static N: AtomicUsize = AtomicUsize::new(0);

/// A throwaway place for one test: a state root and bundles; checks it left nothing behind.
pub struct Sandbox {
    pub dir: PathBuf,
    pub root: PathBuf,
    ids: Vec<String>,
}

impl Sandbox {
    pub fn new(name: &str) -> Sandbox {
        let n = N.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("cnd-test-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let root = dir.join("state");
        Sandbox { dir, root, ids: Vec::new() }
    }

    /// A unique container id for this sandbox (remembered for leak checks).
    pub fn id(&mut self, name: &str) -> String {
        let id = format!("t{}-{name}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
        self.ids.push(id.clone());
        id
    }

    /// A bundle with a busybox rootfs and `config` as config.json.
    pub fn bundle(&self, name: &str, config: &Value) -> PathBuf {
        let b = self.dir.join(name);
        busybox_rootfs(&b.join("rootfs"));
        std::fs::write(b.join("config.json"), serde_json::to_vec_pretty(config).unwrap()).unwrap();
        b
    }

    /// conductor-runtime --root <sandbox root> ARGS. Output goes through files, not pipes: a
    /// created container inherits the runtime's stdio and would hold a pipe open.
    pub fn rt(&self, args: &[&str]) -> Output {
        let n = N.fetch_add(1, Ordering::SeqCst);
        let (out, err) = (self.dir.join(format!("out.{n}")), self.dir.join(format!("err.{n}")));
        let status = Command::new(bin("conductor-runtime"))
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .status()
            .unwrap();
        let o = Output { status, stdout: std::fs::read(&out).unwrap(), stderr: std::fs::read(&err).unwrap() };
        let _ = (std::fs::remove_file(out), std::fs::remove_file(err));
        o
    }

    /// Like `rt` but asserts success and returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.rt(args);
        assert!(o.status.success(), "conductor-runtime {args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    }

    /// Like `rt` but asserts failure and returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let o = self.rt(args);
        assert!(!o.status.success(), "conductor-runtime {args:?} should fail; stdout: {}", String::from_utf8_lossy(&o.stdout));
        String::from_utf8(o.stderr).unwrap()
    }

    pub fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).unwrap()
    }

    /// Assert nothing of the sandbox's containers remains: state dirs, mounts, cgroups, processes.
    pub fn assert_clean(&self) {
        let left: Vec<_> = std::fs::read_dir(&self.root).map(|r| r.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
        assert!(left.is_empty(), "state left behind: {left:?}");
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let dir = self.dir.to_string_lossy();
        assert!(!mounts.contains(dir.as_ref()), "mounts left under {dir}");
        for id in &self.ids {
            assert!(cgroup_dirs(id).is_empty(), "cgroups left for {id}: {:?}", cgroup_dirs(id));
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Best-effort cleanup, also when the test failed: force-delete every container.
        for id in self.ids.clone() {
            let _ = self.rt(&["delete", "--force", &id]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Directories named after `id` under /sys/fs/cgroup (any hierarchy).
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    walk(Path::new("/sys/fs/cgroup"), id, 0, &mut found);
    found
}

fn walk(dir: &Path, id: &str, depth: usize, found: &mut Vec<PathBuf>) {
    if depth > 4 {
        return;
    }
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            let p = e.path();
            if e.file_name().to_string_lossy().contains(id) {
                found.push(p.clone());
            }
            walk(&p, id, depth + 1, found);
        }
    }
}

/// A minimal root filesystem: Debian's static busybox and a link per applet.
pub fn busybox_rootfs(rootfs: &Path) {
    let bb = Path::new("/bin/busybox");
    assert!(bb.exists(), "/bin/busybox missing: install Debian's busybox-static");
    for d in ["bin", "proc", "sys", "dev", "etc", "tmp", "root"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    let dst = rootfs.join("bin/busybox");
    if std::fs::hard_link(bb, &dst).is_err() {
        std::fs::copy(bb, &dst).unwrap();
    }
    let list = Command::new(bb).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet));
    }
    std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n").unwrap();
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
}

/// The default config with `args` and no terminal: what most tests start from.
pub fn config(args: &[&str]) -> Value {
    let n = N.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("cnd-spec-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(bin("conductor-runtime")).args(["spec", "--bundle"]).arg(&dir).output().unwrap();
    assert!(out.status.success(), "spec: {}", String::from_utf8_lossy(&out.stderr));
    let mut v: Value = serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    v["process"]["terminal"] = json!(false);
    v["process"]["args"] = json!(args);
    v["root"]["readonly"] = json!(false);
    v
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Wait until `f` holds, up to `secs`.
pub fn wait_for(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}

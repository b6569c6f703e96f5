//! Shared fixtures for the root integration tests: a sandbox (temp state root + busybox bundle),
//! the built binaries, and leak checks (mounts, cgroups, processes, state dirs).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};

pub mod cgroup;
pub mod engine;
pub mod host;
pub mod image;
pub mod lan;
pub mod netcheck;

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
        output_via_files(Command::new(bin("conductor-runtime")).arg("--root").arg(&self.root).args(args), &self.dir)
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
        let left: Vec<_> =
            std::fs::read_dir(&self.root).map(|r| r.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
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

/// Run `cmd` to completion with stdin from /dev/null and its output captured through files in
/// `dir`, not pipes: a container it starts inherits its stdio and would hold a pipe open.
pub fn output_via_files(cmd: &mut Command, dir: &Path) -> Output {
    let n = N.fetch_add(1, Ordering::SeqCst);
    let (out, err) = (dir.join(format!("out.{n}")), dir.join(format!("err.{n}")));
    let status = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .status()
        .unwrap();
    let o = Output { status, stdout: std::fs::read(&out).unwrap(), stderr: std::fs::read(&err).unwrap() };
    let _ = (std::fs::remove_file(out), std::fs::remove_file(err));
    o
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
    // A copy, not a hard link: other tests' links would change its ctime under a running tar,
    // and /tmp may be another filesystem.
    std::fs::copy(bb, &dst).unwrap();
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

/// Run `cfg` in the foreground as a fresh container of the sandbox (bundle named after its id).
pub fn run_config(sb: &mut Sandbox, cfg: &Value) -> Output {
    let id = sb.id("c");
    let b = sb.bundle(&id, cfg);
    sb.rt(&["run", "--bundle", b.to_str().unwrap(), &id])
}

/// Like `run_config` but asserts exit 0 and returns stdout.
pub fn run_ok(sb: &mut Sandbox, cfg: &Value) -> String {
    let o = run_config(sb, cfg);
    assert!(o.status.success(), "run failed ({:?}): stdout {:?} stderr {:?}", o.status, stdout(&o), stderr(&o));
    stdout(&o)
}

/// The default config running `script` with sh -c.
pub fn sh(script: &str) -> Value {
    config(&["sh", "-c", script])
}

/// One line of /proc/self/mountinfo.
#[derive(Debug, Clone)]
pub struct MountEntry {
    pub point: String,
    /// Per-mount options ("rw,nosuid,...").
    pub opts: Vec<String>,
    /// Optional fields ("shared:4", "master:2", "unbindable").
    pub optional: Vec<String>,
    pub fstype: String,
    pub source: String,
    pub super_opts: Vec<String>,
}

impl MountEntry {
    pub fn has(&self, opt: &str) -> bool {
        self.opts.iter().any(|o| o == opt)
    }
    pub fn super_has(&self, opt: &str) -> bool {
        self.super_opts.iter().any(|o| o == opt)
    }
    /// The optional field starting with `tag` ("shared", "master").
    pub fn tagged(&self, tag: &str) -> Option<&str> {
        self.optional.iter().find(|o| o.starts_with(tag)).map(String::as_str)
    }
}

pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            let split = |s: &str| s.split(',').map(String::from).collect::<Vec<_>>();
            Some(MountEntry {
                point: pre.get(4)?.to_string(),
                opts: split(pre.get(5)?),
                optional: pre[6..].iter().map(|s| s.to_string()).collect(),
                fstype: post.first()?.to_string(),
                source: post.get(1)?.to_string(),
                super_opts: split(post.get(2).unwrap_or(&"")),
            })
        })
        .collect()
}

/// The top-most mount at `point` in mountinfo `text`.
pub fn mount_at(text: &str, point: &str) -> Option<MountEntry> {
    parse_mountinfo(text).into_iter().rfind(|m| m.point == point)
}

/// Receive one fd sent with SCM_RIGHTS on a unix stream (the console socket protocol).
pub fn recv_fd(sock: &std::os::unix::net::UnixStream) -> std::os::fd::OwnedFd {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::{AsRawFd, FromRawFd, RawFd};
    let mut buf = [0u8; 1024];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC).expect("recvmsg");
    let fd = msg
        .cmsgs()
        .expect("cmsgs")
        .find_map(|c| match c {
            ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
            _ => None,
        })
        .expect("no fd in the console socket message");
    // SAFETY: the fd arrived with the message and is ours.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
}

/// Run `cfg` in an existing bundle (its config.json replaced) as a fresh container: saves
/// building another rootfs when a test runs several configs.
pub fn run_in(sb: &mut Sandbox, bundle: &Path, cfg: &Value) -> Output {
    std::fs::write(bundle.join("config.json"), serde_json::to_vec_pretty(cfg).unwrap()).unwrap();
    let id = sb.id("c");
    sb.rt(&["run", "--bundle", bundle.to_str().unwrap(), &id])
}

/// Like `run_in` but asserts exit 0 and returns stdout.
pub fn run_in_ok(sb: &mut Sandbox, bundle: &Path, cfg: &Value) -> String {
    let o = run_in(sb, bundle, cfg);
    assert!(o.status.success(), "run failed ({:?}): stdout {:?} stderr {:?}", o.status, stdout(&o), stderr(&o));
    stdout(&o)
}

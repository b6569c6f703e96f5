//! Host-side helpers for tests that drive other programs (podman, containerd): find binaries, run
//! commands with a deadline, and clean up what those programs leave when a test fails midway
//! (processes that outlive their parent, mounts, cgroup parents).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The path of `name` on $PATH, if installed.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|c| c.is_file())
}

/// Skip (return true) when any of `bins` is not installed, naming what is missing.
pub fn skip_unless_installed(bins: &[&str]) -> bool {
    let missing: Vec<_> = bins.iter().filter(|b| which(b).is_none()).collect();
    if missing.is_empty() {
        return false;
    }
    eprintln!("skipping: not installed: {missing:?} (Debian packages; .ci/run installs them)");
    true
}

/// Run `cmd` with stdin from /dev/null and stdout/stderr through files in `dir` (a daemon it
/// starts may inherit them and would hold a pipe open). None when it did not finish within
/// `secs`: it is then killed.
pub fn run_timed(cmd: &mut Command, dir: &Path, secs: u64) -> Option<Output> {
    let n = super::N.fetch_add(1, Ordering::SeqCst);
    let (out, err) = (dir.join(format!("cmd-out.{n}")), dir.join(format!("cmd-err.{n}")));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let end = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let o = status.map(|status| Output { status, stdout: std::fs::read(&out).unwrap(), stderr: std::fs::read(&err).unwrap() });
    let _ = (std::fs::remove_file(out), std::fs::remove_file(err));
    o
}

/// Pids of processes (other than us) whose command line mentions `needle`: how a test finds the
/// helpers a client started on its behalf (conmon, shims), which are not our children.
pub fn pids_mentioning(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let needle = needle.as_bytes();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me && alive(pid))
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            cmdline.windows(needle.len()).any(|w| w == needle)
        })
        .collect()
}

/// A process exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// Give processes mentioning `needle` `secs` to exit on their own, then SIGKILL the rest (only
/// processes our test caused: their command line names its temp dir).
pub fn stop_processes_mentioning(needle: &str, secs: u64) {
    if super::wait_for(secs, || pids_mentioning(needle).is_empty()) {
        return;
    }
    for pid in pids_mentioning(needle) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
    super::wait_for(5, || pids_mentioning(needle).is_empty());
}

/// Mount points at or under `dir`, deepest first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut v: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_octal(p)))
        .filter(|p| p.starts_with(dir))
        .collect();
    v.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    v
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let code = b.get(i + 1..i + 4).and_then(|t| std::str::from_utf8(t).ok()).and_then(|t| u8::from_str_radix(t, 8).ok());
        if let (b'\\', Some(n)) = (b[i], code) {
            out.push(n);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Detach every mount under `dir` (what a killed client left).
pub fn umount_under(dir: &Path) {
    for _ in 0..3 {
        let left = mounts_under(dir);
        if left.is_empty() {
            return;
        }
        for m in left {
            let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// The directories of cgroup `rel` ("/a/b") in every mounted hierarchy (v1 hybrid or v2).
pub fn cgroup_paths(rel: &str) -> Vec<PathBuf> {
    let rel = rel.trim_start_matches('/');
    let base = Path::new("/sys/fs/cgroup");
    if base.join("cgroup.controllers").exists() {
        return vec![base.join(rel)];
    }
    std::fs::read_dir(base)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path().join(rel))
        .filter(|p| p.is_dir())
        .collect()
}

/// Remove cgroup `rel` and its (empty) children in every hierarchy: the parent cgroups clients
/// create for their containers and never remove.
pub fn remove_cgroup_tree(rel: &str) {
    for p in cgroup_paths(rel) {
        rmdir_tree(&p);
    }
}

fn rmdir_tree(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            rmdir_tree(&e.path());
        }
    }
    // A cgroup directory is removed with rmdir even though it lists files.
    let _ = std::fs::remove_dir(dir);
}

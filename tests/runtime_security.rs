//! Regression tests for the runtime's security properties: the host binary cannot be reached for
//! writing through /proc/PID/exe (CVE-2019-5736), no stray fd and no cwd outside the container
//! reaches the container process (CVE-2024-21626), and /proc is checked before writes.

mod common;

use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};

use common::*;
use serde_json::json;

#[test]
fn runtime_binary_cannot_be_overwritten_through_proc_exe() {
    if skip_unless_root() {
        return;
    }
    let mut sb = Sandbox::new("cve-2019-5736");
    // Attack a private copy, so a regression cannot damage the build.
    let copy = sb.dir.join("conductor-runtime");
    std::fs::copy(bin("conductor-runtime"), &copy).unwrap();
    let before = std::fs::read(&copy).unwrap();
    let id = sb.id("exe");
    let b = sb.bundle("b", &config(&["sleep", "1000"]));
    // Not through pipes: the created container inherits the runtime's stdio.
    let err = sb.dir.join("stderr");
    let run = |args: &[&str]| {
        let log = std::fs::File::create(&err).unwrap();
        let st = Command::new(&copy)
            .arg("--root")
            .arg(&sb.root)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .status()
            .unwrap();
        assert!(st.success(), "{args:?}: {}", std::fs::read_to_string(&err).unwrap());
    };
    run(&["create", "--bundle", b.to_str().unwrap(), &id]);
    let pid = sb.state(&id)["pid"].as_i64().unwrap();

    // While init waits for start it runs the runtime's code inside the container. Take a handle
    // on its executable, as a container process would...
    let exe = std::fs::File::options().read(true).open(format!("/proc/{pid}/exe")).unwrap();
    // ...which is the very same file (no per-container copy: no memory cost)...
    let (a, c) = (exe.metadata().unwrap(), std::fs::metadata(&copy).unwrap());
    assert_eq!((a.dev(), a.ino()), (c.dev(), c.ino()), "init runs the binary itself, not a copy");
    // ...then let init exec the user's program, so the binary is no longer busy.
    run(&["start", &id]);
    assert!(wait_for(5, || std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default().starts_with(b"sleep")));
    let reopen = std::fs::File::options().write(true).open(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&exe)));
    let err = reopen.expect_err("the runtime binary must not be writable through /proc/PID/exe");
    assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
    assert_eq!(std::fs::read(&copy).unwrap(), before);
    drop(exe);
    sb.ok(&["delete", "--force", &id]);
    sb.assert_clean();
}

/// Run the runtime from a shell that opened extra fds without close-on-exec, as a careless caller
/// would: `fds` is shell redirections such as "7<DIR".
fn run_with_fds(sb: &Sandbox, fds: &str, args: &[&str]) -> std::process::Output {
    let script = format!("exec {fds}; exec \"$0\" \"$@\"");
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .arg(bin("conductor-runtime"))
        .arg("--root")
        .arg(&sb.root)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    out
}

#[test]
fn no_stray_fds_reach_the_container() {
    if skip_unless_root() {
        return;
    }
    let mut sb = Sandbox::new("fds");
    let id = sb.id("fds");
    let b = sb.bundle("b", &config(&["ls", "/proc/self/fd"]));
    let dir = sb.dir.to_str().unwrap().to_string();
    let o = run_with_fds(&sb, &format!("7<{dir} 8<{dir}/b/config.json"), &["run", "--bundle", b.to_str().unwrap(), &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    // 0-2 and the fd ls uses to read the directory itself.
    let fds: Vec<String> = stdout(&o).split_whitespace().map(String::from).collect();
    assert_eq!(fds, ["0", "1", "2", "3"], "fds seen in the container");
    sb.assert_clean();
}

#[test]
fn preserved_fds_reach_the_container() {
    if skip_unless_root() {
        return;
    }
    let mut sb = Sandbox::new("preserve");
    let id = sb.id("keep");
    std::fs::write(sb.dir.join("secret"), "passed-through\n").unwrap();
    let b = sb.bundle("b", &config(&["cat", "/proc/self/fd/3"]));
    let o = run_with_fds(
        &sb,
        &format!("3<{}/secret 4<{}", sb.dir.display(), sb.dir.display()),
        &["run", "--preserve-fds", "1", "--bundle", b.to_str().unwrap(), &id],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "passed-through\n");
    sb.assert_clean();
}

#[test]
fn cwd_through_a_leaked_fd_is_refused() {
    if skip_unless_root() {
        return;
    }
    let mut sb = Sandbox::new("cve-2024-21626");
    let id = sb.id("cwd");
    let mut cfg = config(&["sh", "-c", "touch escaped; pwd"]);
    cfg["process"]["cwd"] = json!("/proc/self/fd/7");
    let b = sb.bundle("b", &cfg);
    let o = run_with_fds(&sb, &format!("7<{}", sb.dir.display()), &["run", "--bundle", b.to_str().unwrap(), &id]);
    assert!(!o.status.success(), "must fail; stdout: {}", stdout(&o));
    assert!(stderr(&o).contains("process.cwd"), "{}", stderr(&o));
    assert!(!sb.dir.join("escaped").exists(), "the container wrote into a host directory");
    sb.assert_clean();
}

#[test]
fn writes_to_a_fake_proc_are_refused() {
    if skip_unless_root() {
        return;
    }
    let mut sb = Sandbox::new("fakeproc");
    let id = sb.id("proc");
    // An image (or a config) that puts a plain directory where /proc should be.
    let fake = sb.dir.join("fakeproc");
    std::fs::create_dir_all(fake.join("sys/kernel")).unwrap();
    std::fs::write(fake.join("sys/kernel/domainname"), "untouched").unwrap();
    let mut cfg = config(&["true"]);
    cfg["mounts"][0] = json!({"destination": "/proc", "type": "bind", "source": fake, "options": ["rbind"]});
    cfg["linux"]["maskedPaths"] = json!([]);
    cfg["linux"]["readonlyPaths"] = json!([]);
    cfg["linux"]["sysctl"] = json!({"kernel.domainname": "pwned"});
    let b = sb.bundle("b", &cfg);
    let e = sb.fails(&["run", "--bundle", b.to_str().unwrap(), &id]);
    assert!(e.contains("not on procfs"), "{e}");
    assert_eq!(std::fs::read_to_string(fake.join("sys/kernel/domainname")).unwrap(), "untouched");
    sb.assert_clean();
}

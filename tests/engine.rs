//! The `conductor` engine end to end, on a busybox image imported from a tarball: the seed's
//! sample sessions, detached runs, logs, exit codes, isolation, stop, bad input, concurrency and
//! crash recovery. Root only; each test in its own sandbox and asserting nothing is left behind.

mod common;

use common::engine::Engine;
use common::*;

#[test]
fn foreground_run_sees_only_itself_and_passes_exit_code() {
    if skip_unless_root() {
        return;
    }
    let mut e = Engine::new("fg");
    let n = e.name("fg");
    let o = e.run(&["run", "bb", &n, "--", "sh", "-c", "ps -o pid,comm; hostname; exit 3"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    // The seed's session: ps shows pid 1 (the shell) and itself, nothing from the host.
    assert_eq!(lines[0].split_whitespace().collect::<Vec<_>>(), ["PID", "COMMAND"]);
    assert_eq!(lines[1].split_whitespace().collect::<Vec<_>>(), ["1", "sh"]);
    assert_eq!(lines[2].split_whitespace().next(), Some("2"));
    assert_eq!(lines.len(), 4, "{out}");
    assert_eq!(lines[3], n, "hostname is the container's name");
    // An exited container stays listed until stop.
    let ps = e.ok(&["ps", "-a"]);
    assert!(ps.contains(&n) && ps.contains("exited (3)"), "{ps}");
    assert!(!e.ok(&["ps"]).contains(&n));
    assert!(e.fails(&["run", "bb", &n, "--", "true"]).contains("already in use"));
    e.ok(&["stop", &n]);
    e.assert_clean();
}

#[test]
fn exec_joins_the_container() {
    if skip_unless_root() {
        return;
    }
    let mut e = Engine::new("exec");
    let n = e.name("ex");
    e.ok(&["run", "-d", "bb", &n, "--", "sleep", "inf"]);
    let st = e.inspect(&n);
    assert_eq!(st["State"]["Status"], "running");
    let host_pid = st["State"]["Pid"].as_i64().unwrap();
    assert!(host_pid > 1);
    // The seed's exec session: ps shows the container's sleep (pid 1) and ps itself.
    let out = e.ok(&["exec", &n, "--", "ps", "-o", "pid,comm"]);
    let rows: Vec<Vec<&str>> = out.lines().skip(1).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!(rows[0], ["1", "sleep"]);
    assert_eq!(rows[1][1], "ps");
    // Same namespaces as init: compare from the host.
    for ns in ["pid", "uts", "ipc", "net", "mnt", "cgroup"] {
        let inside = e.ok(&["exec", &n, "--", "readlink", &format!("/proc/self/ns/{ns}")]);
        let init = std::fs::read_link(format!("/proc/{host_pid}/ns/{ns}")).unwrap();
        assert_eq!(inside.trim(), init.to_str().unwrap(), "{ns}");
    }
    // Same cgroup.
    let cg = e.ok(&["exec", &n, "--", "cat", "/proc/self/cgroup"]);
    assert!(cg.lines().all(|l| l.ends_with(":/")), "cgroup namespace root: {cg}");
    // Exit code and environment pass through.
    let o = e.run(&["exec", "-e", "X=42", &n, "--", "sh", "-c", "echo $X; exit 5"]);
    assert_eq!(o.status.code(), Some(5));
    assert_eq!(stdout(&o), "42\n");
    e.ok(&["stop", "-t", "1", &n]);
    assert!(e.fails(&["exec", &n, "--", "true"]).contains("no such container"));
    e.assert_clean();
}

#[test]
fn detached_logs_and_exit() {
    if skip_unless_root() {
        return;
    }
    let mut e = Engine::new("logs");
    let n = e.name("lg");
    e.ok(&["run", "-d", "bb", &n, "--", "sh", "-c", "echo out1; sleep 0.1; echo err1 >&2; sleep 0.1; echo out2; exit 7"]);
    assert!(wait_for(10, || e.inspect(&n)["State"]["Status"] == "exited"));
    let st = e.inspect(&n);
    assert_eq!(st["State"]["ExitCode"], 7);
    assert_eq!(st["State"]["OOMKilled"], false);
    // stdout and stderr are separate pipes: the sleeps make their order certain.
    assert_eq!(e.ok(&["logs", &n]), "out1\nerr1\nout2\n");
    assert_eq!(e.ok(&["logs", "--tail", "1", &n]), "out2\n");
    // Each line is stored with its stream and a timestamp.
    let raw = std::fs::read_to_string(st["LogPath"].as_str().unwrap()).unwrap();
    let first: serde_json::Value = serde_json::from_str(raw.lines().next().unwrap()).unwrap();
    assert_eq!(first["stream"], "stdout");
    assert!(first["time"].as_str().unwrap().contains('T'));
    e.ok(&["stop", &n]);
    e.assert_clean();
}

#[test]
fn follow_and_stop_of_a_program_that_ignores_sigterm() {
    if skip_unless_root() {
        return;
    }
    let mut e = Engine::new("follow");
    let n = e.name("f");
    e.ok(&[
        "run",
        "-d",
        "bb",
        &n,
        "--",
        "sh",
        "-c",
        "trap '' TERM; for i in 1 2 3; do echo tick $i; sleep 0.2; done; sleep 1000",
    ]);
    let child = e.cmd().args(["logs", "-f", &n]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let t = std::time::Instant::now();
    e.ok(&["stop", "-t", "1", &n]);
    assert!(t.elapsed() < std::time::Duration::from_secs(5), "SIGKILL after the timeout");
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "tick 1\ntick 2\ntick 3\n");
    e.assert_clean();
}

#[test]
fn init_makes_stop_quick() {
    if skip_unless_root() {
        return;
    }
    let mut e = Engine::new("init");
    let n = e.name("i");
    // sleep as pid 1 ignores SIGTERM; under --init, SIGTERM reaches it as pid 2 and kills it.
    e.ok(&["run", "-d", "--init", "bb", &n, "--", "sleep", "1000"]);
    let out = e.ok(&["exec", &n, "--", "ps", "-o", "pid,comm"]);
    assert!(out.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["2", "sleep"]), "{out}");
    let t = std::time::Instant::now();
    e.ok(&["stop", "-t", "10", &n]);
    assert!(t.elapsed() < std::time::Duration::from_secs(3), "stop took {:?}", t.elapsed());
    e.assert_clean();
}

#[test]
fn containers_are_isolated_from_each_other() {
    if skip_unless_root() {
        return;
    }
    let mut e = Engine::new("iso");
    let (a, b) = (e.name("a"), e.name("b"));
    for n in [&a, &b] {
        e.ok(&["run", "-d", "bb", n, "--", "sleep", "inf"]);
    }
    e.ok(&["exec", &a, "--", "sh", "-c", "echo secret > /tmp/file; echo shm > /dev/shm/seg"]);
    assert!(e.fails(&["exec", &b, "--", "cat", "/tmp/file"]).contains("No such file"));
    assert!(e.fails(&["exec", &b, "--", "cat", "/dev/shm/seg"]).contains("No such file"), "POSIX shm is shared");
    assert_eq!(e.ok(&["exec", &a, "--", "cat", "/dev/shm/seg"]), "shm\n");
    assert_eq!(e.ok(&["exec", &b, "--", "hostname"]).trim(), b);
    let ns = |n: &str, kind: &str| e.ok(&["exec", n, "--", "readlink", &format!("/proc/self/ns/{kind}")]);
    for kind in ["ipc", "pid", "uts", "net", "mnt"] {
        assert_ne!(ns(&a, kind), ns(&b, kind), "{kind} namespace shared");
    }
    let pa = e.ok(&["exec", &a, "--", "ps", "-o", "comm"]);
    assert_eq!(pa.lines().count(), 3, "only a's own processes: {pa}");
    for n in [&a, &b] {
        e.ok(&["stop", "-t", "0", n]);
    }
    e.assert_clean();
}

#[test]
fn options_reach_the_container() {
    if skip_unless_root() {
        return;
    }
    let mut e = Engine::new("opts");
    let n = e.name("o");
    let vol = e.dir.join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::write(vol.join("in"), "from host\n").unwrap();
    let v = format!("{}:/data:ro", vol.display());
    let out = e.ok(&[
        "run", "-e", "GREETING=hi", "-v", &v, "-w", "/data", "--hostname", "box", "--user", "1000:1000", "--read-only",
        "--cpus", "0.5", "--memory", "64m", "--pids-limit", "20", "bb", &n, "--",
        "sh", "-c", "echo $GREETING; pwd; cat in; hostname; id -u; id -g; touch /x 2>&1 | grep -c Read-only; touch /data/y 2>&1 | grep -c Read-only",
    ]);
    assert_eq!(out, "hi\n/data\nfrom host\nbox\n1000\n1000\n1\n1\n");
    let cfg = e.inspect(&n)["Config"].clone();
    assert_eq!(cfg["linux"]["resources"]["cpu"]["quota"], 50000);
    assert_eq!(cfg["linux"]["resources"]["memory"]["limit"], 64 << 20);
    assert_eq!(cfg["linux"]["resources"]["pids"]["limit"], 20);
    assert_eq!(cfg["process"]["noNewPrivileges"], true);
    e.ok(&["stop", &n]);
    e.assert_clean();
}

#[test]
fn bad_input_fails_cleanly() {
    if skip_unless_root() {
        return;
    }
    let mut e = Engine::new("bad");
    let n = e.name("ok");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["run", "bb", "-bad", "--", "true"], "unexpected argument"),
        (vec!["run", "bb", "bad/name", "--", "true"], "invalid container name"),
        (vec!["run", "bb", "bad name", "--", "true"], "invalid container name"),
        (vec!["run", "nope", &n, "--", "true"], "nope"),
        (vec!["run", "-v", "/nonexistent:/x", "bb", &n, "--", "true"], "invalid -v"),
        (vec!["run", "-v", "relative:/x", "bb", &n, "--", "true"], "invalid -v"),
        (vec!["run", "-e", "=x", "bb", &n, "--", "true"], "invalid -e"),
        (vec!["run", "--cpus", "0", "bb", &n, "--", "true"], "invalid --cpus"),
        (vec!["run", "--cpus", "lots", "bb", &n, "--", "true"], "invalid --cpus"),
        (vec!["run", "--memory", "12q", "bb", &n, "--", "true"], "invalid --memory"),
        (vec!["run", "--pids-limit", "0", "bb", &n, "--", "true"], "invalid --pids-limit"),
        (vec!["run", "bb", &n, "--", "/no/such/program"], "no such executable"),
        (vec!["stop", "ghost"], "no such container"),
        (vec!["logs", "ghost"], "no such container"),
        (vec!["rmi", "ghost"], "ghost"),
    ];
    for (args, want) in cases {
        let err = e.fails(&args);
        assert!(err.contains(want), "{args:?}: want {want:?} in {err:?}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err:?}");
        e.assert_clean();
    }
    // A second image of the same name is refused; the first stays usable.
    let tar = common::image::busybox_tar(&e.dir);
    let err = e.fails(&["import", tar.to_str().unwrap(), "bb"]);
    assert!(err.contains("bb") && err.trim().lines().count() == 1, "{err}");
    assert!(e.fails(&["import", "/nonexistent.tar", "other"]).contains("nonexistent"));
    assert!(e.fails(&["import", tar.to_str().unwrap(), "Bad/Name"]).contains("Bad/Name"));
    // rmi is refused while a container uses the image.
    e.ok(&["run", "-d", "bb", &n, "--", "sleep", "inf"]);
    assert!(e.fails(&["rmi", "bb"]).contains("used by container"));
    e.ok(&["stop", "-t", "0", &n]);
    e.assert_clean();
}

#[test]
fn concurrent_runs_of_one_name_give_one_container() {
    if skip_unless_root() {
        return;
    }
    let mut e = Engine::new("race");
    let n = e.name("r");
    let kids: Vec<_> = (0..4)
        .map(|_| {
            e.cmd()
                .args(["run", "-d", "bb", &n, "--", "sleep", "inf"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<_> = kids.into_iter().map(|k| k.wait_with_output().unwrap()).collect();
    assert_eq!(outs.iter().filter(|o| o.status.success()).count(), 1);
    for o in outs.iter().filter(|o| !o.status.success()) {
        assert!(stderr(o).contains("already in use"), "{}", stderr(o));
    }
    e.ok(&["stop", "-t", "0", &n]);
    e.assert_clean();
}

#[test]
fn half_made_containers_are_cleaned_up() {
    if skip_unless_root() {
        return;
    }
    let mut e = Engine::new("crash");
    let n = e.name("c");
    // What a `run` killed right after creating the directory leaves behind.
    let dir = e.dir.join("data/containers").join(&n);
    std::fs::create_dir_all(dir.join("rootfs")).unwrap();
    std::fs::write(
        dir.join("state.json"),
        r#"{"status":"creating","pid":0,"monitor_pid":0,"started":null,"finished":null,"exit_code":null}"#,
    )
    .unwrap();
    // The next run of that name finishes the cleanup and succeeds.
    e.ok(&["run", "bb", &n, "--", "true"]);
    e.ok(&["stop", &n]);
    // ps cleans what it finds half made instead of listing it.
    let k = e.name("killed");
    std::fs::create_dir_all(e.dir.join("data/containers").join(&k).join("rootfs")).unwrap();
    assert!(!e.ok(&["ps", "-a"]).contains(&k));
    assert!(!e.dir.join("data/containers").join(&k).exists());
    // prune removes an orphan nobody asks for by name.
    let m = e.name("orphan");
    std::fs::create_dir_all(e.dir.join("data/containers").join(&m)).unwrap();
    let pruned = e.ok(&["prune"]);
    assert!(pruned.contains(&m), "{pruned}");
    e.assert_clean();
}

#[test]
fn interactive_run_through_a_pty() {
    if skip_unless_root() {
        return;
    }
    use std::io::{Read, Write};
    let mut e = Engine::new("pty");
    let n = e.name("tty");
    let pty = nix::pty::openpty(None, None).unwrap();
    let slave = std::fs::File::from(pty.slave);
    let mut child = e
        .cmd()
        .args(["run", "bb", &n, "--", "sh"])
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave)
        .spawn()
        .unwrap();
    let mut master = std::fs::File::from(pty.master);
    master.write_all(b"tty; echo answer=$((6*7)); exit 5\n").unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(5));
    // Read what the container wrote (the slave side is closed now, so this ends).
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(k) = master.read(&mut buf) {
        if k == 0 {
            break;
        }
        out.extend_from_slice(&buf[..k]);
    }
    let out = String::from_utf8_lossy(&out);
    assert!(out.contains("/dev/pts/0"), "a pty inside: {out}");
    assert!(out.contains("answer=42"), "{out}");
    e.ok(&["stop", &n]);
    e.assert_clean();
}

#[test]
fn ctrl_c_reaches_an_attached_container() {
    if skip_unless_root() {
        return;
    }
    let mut e = Engine::new("sigint");
    let n = e.name("int");
    let out = e.dir.join("out");
    let child = e
        .cmd()
        .args(["run", "bb", &n, "--", "sh", "-c", "trap 'echo got INT; exit 3' INT; echo ready; while :; do sleep 0.1; done"])
        .stdout(std::fs::File::create(&out).unwrap())
        .spawn()
        .unwrap();
    assert!(wait_for(10, || std::fs::read_to_string(&out).unwrap_or_default().contains("ready")));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let status = child.wait_with_output().unwrap().status;
    assert_eq!(status.code(), Some(3));
    assert!(std::fs::read_to_string(&out).unwrap().contains("got INT"));
    e.ok(&["stop", &n]);
    e.assert_clean();
}

//! Resource limits through the `conductor` engine, measured from the kernel's own cgroup files:
//! a CPU quota holds a busy loop at half a core, a memory limit OOM-kills, a pids limit makes
//! fork fail, pause stops progress, `stats` agrees with the cgroup, `update` changes the live
//! limits, and bad input changes nothing. Works on cgroup v1 (this machine) and v2.

mod common;

use std::time::{Duration, Instant};

use common::cgroup::Cg;
use common::engine::Engine;
use common::*;
use serde_json::Value;

/// A refused command: exit non-zero with a one-line message containing `want`.
fn refused(e: &Engine, args: &[&str], want: &str) {
    let err = e.fails(args);
    assert!(err.contains(want), "{args:?}: want {want:?} in {err:?}");
    assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err:?}");
}

/// `stats --no-stream --format json NAME` as JSON.
fn stats_json(e: &Engine, name: &str) -> Value {
    let out = e.ok(&["stats", "--no-stream", "--format", "json", name]);
    assert_eq!(out.lines().count(), 1, "{out}");
    serde_json::from_str(&out).unwrap()
}

#[test]
fn cpu_quota_holds_a_busy_loop_at_half_a_core() {
    if skip_unless_root() {
        return;
    }
    let mut e = Engine::new("cpu");
    let n = e.name("busy");
    e.ok(&["run", "-d", "--cpus", "0.5", "bb", &n, "--", "sh", "-c", "while :; do :; done"]);
    let cg = Cg::of_engine(&e, &n);
    assert_eq!(cg.cpu_quota(), Some(50_000));
    std::thread::sleep(Duration::from_millis(300));
    // The quota is a ceiling in every window; other load on the machine may keep the loop
    // below it, so the floor needs only one window of three.
    let mut best = 0.0f64;
    let mut throttled = false;
    for _ in 0..3 {
        let (t0, c0, th0) = (Instant::now(), cg.cpu_ns(), cg.nr_throttled());
        std::thread::sleep(Duration::from_secs(1));
        let (c1, th1) = (cg.cpu_ns(), cg.nr_throttled());
        let cores = (c1 - c0) as f64 / t0.elapsed().as_nanos() as f64;
        assert!(cores < 0.6, "a 50% quota let the loop use {cores:.2} cores");
        throttled |= th1 > th0;
        best = best.max(cores);
        if best > 0.35 && throttled {
            break;
        }
    }
    assert!(best > 0.35, "the loop got only {best:.2} cores");
    assert!(throttled, "nr_throttled did not grow");
    // stats agrees with the kernel's accounting.
    let s = stats_json(&e, &n);
    let pct = s["cpu_percent"].as_f64().unwrap();
    assert!((25.0..62.0).contains(&pct), "stats CPU % {pct}");
    e.ok(&["stop", "-t", "0", &n]);
    e.assert_clean();
}

#[test]
fn memory_limit_oom_kills_and_inspect_says_so() {
    if skip_unless_root() {
        return;
    }
    let mut e = Engine::new("oom");
    let n = e.name("hog");
    // busybox tail keeps the whole (endless) last line of /dev/zero in memory.
    let o = e.run(&["run", "--memory", "32m", "bb", &n, "--", "tail", "/dev/zero"]);
    assert_eq!(o.status.code(), Some(137), "{}", stderr(&o));
    let st = e.inspect(&n)["State"].clone();
    assert_eq!(st["ExitCode"], 137);
    assert_eq!(st["OOMKilled"], true);
    // A shell that builds a 100 MB string in its own memory is killed the same way.
    let m = e.name("str");
    let script = "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived";
    let o = e.run(&["run", "--memory", "32m", "bb", &m, "--", "sh", "-c", script]);
    assert!(!stdout(&o).contains("survived"), "{}", stdout(&o));
    assert!(e.inspect(&m)["State"]["OOMKilled"] == true, "{:?}", e.inspect(&m)["State"]);
    // Under the limit, nothing is killed.
    let k = e.name("fine");
    e.ok(&["run", "--memory", "32m", "bb", &k, "--", "sh", "-c", "x=$(head -c 1000000 /dev/zero | tr '\\0' a)"]);
    assert_eq!(e.inspect(&k)["State"]["OOMKilled"], false);
    for c in [&n, &m, &k] {
        e.ok(&["stop", c]);
    }
    e.assert_clean();
}

#[test]
fn pids_limit_makes_fork_fail() {
    if skip_unless_root() {
        return;
    }
    let mut e = Engine::new("pids");
    let script = "for i in 1 2 3 4 5 6 7 8; do sleep 30 & done; echo forked";
    let n = e.name("lim");
    let o = e.run(&["run", "--pids-limit", "5", "bb", &n, "--", "sh", "-c", script]);
    // The fifth fork fails and busybox sh gives up on the script.
    assert!(stderr(&o).contains("can't fork"), "{}", stderr(&o));
    assert_ne!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), "");
    assert_eq!(Cg::of_engine(&e, &n).pids_max(), "5");
    // Without the limit the same script forks all eight.
    let m = e.name("free");
    let o = e.run(&["run", "bb", &m, "--", "sh", "-c", script]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stderr(&o), "");
    assert_eq!(stdout(&o), "forked\n");
    for c in [&n, &m] {
        e.ok(&["stop", c]);
    }
    e.assert_clean();
}

#[test]
fn pause_stops_progress_and_unpause_continues() {
    if skip_unless_root() {
        return;
    }
    let mut e = Engine::new("pause");
    let n = e.name("p");
    let vol = e.dir.join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    let v = format!("{}:/data", vol.display());
    let script = "i=0; while :; do i=$((i+1)); echo $i > /data/c; sleep 0.02; done";
    e.ok(&["run", "-d", "-v", &v, "bb", &n, "--", "sh", "-c", script]);
    let counter = || std::fs::read_to_string(vol.join("c")).unwrap_or_default();
    let value = || counter().trim().parse::<u64>().unwrap_or(0);
    assert!(wait_for(5, || value() > 3), "the counter does not run");
    e.ok(&["pause", &n]);
    let st = e.inspect(&n)["State"].clone();
    assert_eq!(
        (st["Status"].as_str(), st["Paused"].as_bool(), st["Running"].as_bool()),
        (Some("paused"), Some(true), Some(true))
    );
    assert!(e.ok(&["ps"]).lines().any(|l| l.starts_with(n.as_str()) && l.ends_with("paused")));
    let frozen = counter();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(counter(), frozen, "the counter moved while paused");
    refused(&e, &["pause", &n], "already paused");
    refused(&e, &["exec", &n, "--", "true"], "paused");
    e.ok(&["unpause", &n]);
    assert_eq!(e.inspect(&n)["State"]["Status"], "running");
    let before = frozen.trim().parse::<u64>().unwrap_or(0);
    assert!(wait_for(5, || value() > before + 3), "the counter did not continue");
    refused(&e, &["unpause", &n], "not paused");
    // A paused container still stops (sh as pid 1 ignores SIGTERM: SIGKILL after the timeout).
    e.ok(&["pause", &n]);
    let t = Instant::now();
    e.ok(&["stop", "-t", "1", &n]);
    assert!(t.elapsed() < Duration::from_secs(4), "stop of a paused container took {:?}", t.elapsed());
    refused(&e, &["pause", &n], "no such container");
    refused(&e, &["unpause", "ghost"], "no such container");
    e.assert_clean();
}

#[test]
fn stats_match_the_cgroup() {
    if skip_unless_root() {
        return;
    }
    let mut e = Engine::new("stats");
    let n = e.name("s");
    e.ok(&["run", "-d", "--memory", "32m", "--pids-limit", "10", "bb", &n, "--", "sh", "-c", "sleep 1000 & sleep 1000 & wait"]);
    let cg = Cg::of_engine(&e, &n);
    assert!(wait_for(5, || cg.pids_current() == 3));
    let s = stats_json(&e, &n);
    assert_eq!(s["name"], n.as_str());
    assert_eq!(s["memory_limit"], 32 << 20);
    assert_eq!(s["memory_limit"].as_u64(), Some(cg.memory_limit()));
    assert_eq!(s["pids"].as_u64(), Some(cg.pids_current()));
    let (theirs, ours) = (cg.memory_working_set() as i64, s["memory_usage"].as_i64().unwrap());
    assert!((theirs - ours).abs() < (256 << 10), "stats says {ours} bytes, the cgroup {theirs}");
    let pct = s["memory_percent"].as_f64().unwrap();
    assert!((pct - ours as f64 / (32 << 20) as f64 * 100.0).abs() < 1e-6);
    assert!(s["cpu_percent"].as_f64().unwrap() < 5.0, "an idle container: {s}");
    // The table has Docker's columns; without names it shows every running container.
    let table = e.ok(&["stats", "--no-stream"]);
    let header: Vec<&str> = table.lines().next().unwrap().split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
    assert_eq!(header, ["NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS"]);
    let row = table.lines().find(|l| l.starts_with(n.as_str())).unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains("/ 32.00MiB") && row.trim_end().ends_with(" 3"), "{row}");
    refused(&e, &["stats", "--no-stream", "ghost"], "no such container");
    e.ok(&["stop", "-t", "0", &n]);
    e.assert_clean();
}

#[test]
fn update_changes_live_limits_and_refuses_bad_input() {
    if skip_unless_root() {
        return;
    }
    let mut e = Engine::new("update");
    let n = e.name("u");
    // 20 MB in tmpfs is charged to the container and cannot be reclaimed without swap.
    let script = "head -c 20000000 /dev/zero > /dev/shm/f; sleep 1000";
    e.ok(&["run", "-d", "--cpus", "0.5", "--memory", "64m", "--pids-limit", "20", "bb", &n, "--", "sh", "-c", script]);
    let cg = Cg::of_engine(&e, &n);
    assert!(wait_for(5, || cg.memory_usage() > 20_000_000), "usage {}", cg.memory_usage());
    assert_eq!(cg.limits(), (Some(50_000), 64 << 20, "20".into()));

    assert_eq!(e.ok(&["update", "--cpus", "1.5", "--memory", "128m", "--pids-limit", "50", &n]).trim(), n);
    assert_eq!(cg.limits(), (Some(150_000), 128 << 20, "50".into()));
    if !cg.v2 {
        assert_eq!(cg.read("memory", "memory.memsw.limit_in_bytes"), (128u64 << 20).to_string(), "no swap beyond the limit");
    }
    let check_inspect = |cpus: f64, mem: u64, pids: i64| {
        let i = e.inspect(&n);
        assert_eq!(
            (i["Options"]["cpus"].as_f64(), i["Options"]["memory"].as_u64(), i["Options"]["pids_limit"].as_i64()),
            (Some(cpus), Some(mem), Some(pids))
        );
        let r = &i["Config"]["linux"]["resources"];
        assert_eq!(r["cpu"]["quota"].as_f64(), Some(cpus * 100_000.0));
        assert_eq!((r["memory"]["limit"].as_u64(), r["pids"]["limit"].as_i64()), (Some(mem), Some(pids)));
    };
    check_inspect(1.5, 128 << 20, 50);
    // One limit alone leaves the others.
    e.ok(&["update", "--pids-limit", "30", &n]);
    assert_eq!(cg.limits(), (Some(150_000), 128 << 20, "30".into()));
    check_inspect(1.5, 128 << 20, 30);

    // Bad input: a one-line error and no limit changed, not even the valid ones asked for
    // alongside.
    let before = cg.limits();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["update", "--cpus", "0", &n], "invalid --cpus"),
        (vec!["update", "--cpus", "-1", &n], "invalid --cpus"),
        (vec!["update", "--cpus", "1", "--memory", "1k", &n], "invalid --memory"),
        (vec!["update", "--pids-limit", "0", &n], "invalid --pids-limit"),
        (vec!["update", "--cpus", "1", "--pids-limit", "40", "--memory", "8m", &n], "below the current usage"),
        (vec!["update", &n], "nothing to update"),
        (vec!["update", "--cpus", "1", "ghost"], "no such container"),
        (vec!["run", "--cpus", "0", "bb", "x", "--", "true"], "invalid --cpus"),
        (vec!["run", "--cpus", "-1", "bb", "x", "--", "true"], "invalid --cpus"),
        (vec!["run", "--memory", "1k", "bb", "x", "--", "true"], "invalid --memory"),
    ];
    for (args, want) in cases {
        refused(&e, &args, want);
        assert_eq!(cg.limits(), before, "{args:?} changed a limit");
    }
    check_inspect(1.5, 128 << 20, 30);
    e.ok(&["stop", "-t", "0", &n]);
    refused(&e, &["update", "--cpus", "1", &n], "no such container");
    e.assert_clean();
}

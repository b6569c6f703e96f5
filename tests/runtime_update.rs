//! conductor-runtime `update` (runc's flags and `--resources FILE|-`) and `events`, checked
//! against the live cgroup files: limits change, requests merge onto what is in force, the
//! saved config follows, and bad values name the field and change nothing. Root only.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cgroup::Cg;
use common::*;
use serde_json::{json, Value};

/// Every limit the tests touch, to compare before and after a refused update.
fn limits(cg: &Cg) -> (Option<i64>, u64, u64, Option<u64>, String, String) {
    (cg.cpu_quota(), cg.cpu_period(), cg.memory_limit(), cg.memory_swap_limit(), cg.pids_max(), cg.cpuset_cpus())
}

/// The resources saved in the container's state directory.
fn saved(sb: &Sandbox, id: &str) -> Value {
    let v: Value = serde_json::from_slice(&std::fs::read(sb.root.join(id).join("config.json")).unwrap()).unwrap();
    v["linux"]["resources"].clone()
}

/// `conductor-runtime update -r - ID` with `json` on stdin.
fn update_stdin(sb: &Sandbox, id: &str, json: &str) -> std::process::Output {
    let mut child = Command::new(bin("conductor-runtime"))
        .arg("--root")
        .arg(&sb.root)
        .args(["update", "--resources", "-", id])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(json.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn update_flags_and_resource_files() {
    if skip_unless_root() {
        return;
    }
    let mut sb = Sandbox::new("update");
    let id = sb.id("u");
    // 20 MB in tmpfs: charged to the cgroup, not reclaimable without swap.
    let mut cfg = sh("head -c 20000000 /dev/zero > /dev/shm/f; sleep 1000");
    cfg["linux"]["resources"]["memory"] = json!({"limit": 128 << 20, "swap": 128 << 20});
    let b = sb.bundle("b", &cfg);
    sb.ok(&["run", "-d", "--bundle", b.to_str().unwrap(), &id]);
    let cg = Cg::of(&sb.root, &id);
    assert!(wait_for(5, || cg.memory_usage() > 20_000_000), "usage {}", cg.memory_usage());

    // runc's flags, sizes with suffixes.
    let flags = "update --memory 64m --memory-swap 96MiB --cpu-quota 50000 --cpu-period 100000 --pids-limit 20 --cpuset-cpus 0";
    sb.ok(&flags.split_whitespace().chain([id.as_str()]).collect::<Vec<_>>());
    assert_eq!(limits(&cg), (Some(50_000), 100_000, 64 << 20, Some(96 << 20), "20".into(), "0".into()));
    if !cg.v2 {
        sb.ok(&["update", "--cpu-share", "512", &id]);
        assert_eq!(cg.read("cpu", "cpu.shares"), "512");
    }
    let r = saved(&sb, &id);
    assert_eq!(r["memory"], json!({"limit": 64 << 20, "swap": 96 << 20}));
    assert_eq!(
        (r["cpu"]["quota"].as_i64(), r["cpu"]["cpus"].as_str(), r["pids"]["limit"].as_i64()),
        (Some(50_000), Some("0"), Some(20))
    );
    assert_eq!(r["devices"], cfg["linux"]["resources"]["devices"], "device rules are kept");

    // A resources file merges onto what is in force: the period and memory stay.
    let file = sb.dir.join("res.json");
    std::fs::write(&file, r#"{"cpu": {"quota": 20000}, "pids": {"limit": 30}}"#).unwrap();
    sb.ok(&["update", "--resources", file.to_str().unwrap(), &id]);
    assert_eq!(limits(&cg), (Some(20_000), 100_000, 64 << 20, Some(96 << 20), "30".into(), "0".into()));
    // ... and from stdin, as podman and containerd send it; -1 lifts a limit.
    let o = update_stdin(&sb, &id, r#"{"cpu": {"quota": -1}, "pids": {"limit": -1}}"#);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!((cg.cpu_quota(), cg.pids_max()), (None, "max".to_string()));
    assert_eq!(saved(&sb, &id)["pids"]["limit"], -1);
    sb.ok(&["update", "--pids-limit", "30", "--cpu-quota", "20000", &id]);

    // Bad values: one line naming the field or flag, and nothing applied, not even the valid
    // values of the same request.
    let machine_cpus = std::thread::available_parallelism().unwrap().get();
    let beyond = format!("0-{}", machine_cpus + 7);
    let bad_file = sb.dir.join("bad.json");
    let before = limits(&cg);
    let saved_before = saved(&sb, &id);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["update", "--cpu-quota", "0", &id], "linux.resources.cpu.quota: must be > 0 or -1, got 0"),
        (vec!["update", "--cpu-quota", "-5", &id], "linux.resources.cpu.quota"),
        (vec!["update", "--cpu-period", "999", &id], "linux.resources.cpu.period"),
        (vec!["update", "--cpu-period", "1000001", &id], "linux.resources.cpu.period"),
        (vec!["update", "--pids-limit", "99", "--cpuset-cpus", &beyond, &id], "linux.resources.cpu.cpus"),
        (vec!["update", "--pids-limit", "99", "--memory", "1m", "--memory-swap", "96m", &id], "below the current usage"),
        (vec!["update", "--memory", "128m", &id], "linux.resources.memory.swap"),
        (vec!["update", "--memory", "1x", &id], "invalid value for --memory"),
        (vec!["update", "--cpu-period", "ten", &id], "invalid value for --cpu-period"),
        (vec!["update", "--resources", "/nonexistent.json", &id], "/nonexistent.json"),
        (vec!["update", &id], "nothing to change"),
        (vec!["update", "--pids-limit", "5", "ghost"], "does not exist"),
    ];
    for (bad, want) in [
        (r#"{"pids": {"limit": 99}, "unified": {"memory.bogus": "1"}}"#, "linux.resources.unified"),
        (r#"{"pids": {"limit": 99}, "cpu": {"quota": "x"}}"#, "linux.resources.cpu.quota"),
    ] {
        std::fs::write(&bad_file, bad).unwrap();
        let err = sb.fails(&["update", "--resources", bad_file.to_str().unwrap(), &id]);
        assert!(err.contains(want), "{bad}: want {want:?} in {err:?}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert_eq!(limits(&cg), before, "{bad} changed a limit");
    }
    for (args, want) in &cases {
        let err = sb.fails(args);
        assert!(err.contains(want), "{args:?}: want {want:?} in {err:?}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err:?}");
        assert_eq!(limits(&cg), before, "{args:?} changed a limit");
        assert_eq!(saved(&sb, &id), saved_before, "{args:?} changed the saved config");
    }
    let o = update_stdin(&sb, &id, "{not json");
    assert!(!o.status.success() && stderr(&o).contains("--resources -: linux.resources"), "{}", stderr(&o));

    sb.ok(&["delete", "--force", &id]);
    assert!(sb.fails(&["update", "--pids-limit", "5", &id]).contains("does not exist"));
    sb.assert_clean();
}

#[test]
fn events_stats_and_oom() {
    if skip_unless_root() {
        return;
    }
    let mut sb = Sandbox::new("events");
    let id = sb.id("ev");
    // tail is OOM-killed after a moment; the shell lives on.
    let mut cfg = sh("sleep 1000 & sleep 0.5; tail /dev/zero; sleep 1000");
    cfg["linux"]["resources"]["memory"] = json!({"limit": 16 << 20, "swap": 16 << 20});
    cfg["linux"]["resources"]["pids"] = json!({"limit": 10});
    let b = sb.bundle("b", &cfg);
    sb.ok(&["run", "-d", "--bundle", b.to_str().unwrap(), &id]);
    let cg = Cg::of(&sb.root, &id);

    // The stream: no stats within the (long) interval, one oom event for the kill.
    let child = Command::new(bin("conductor-runtime"))
        .arg("--root")
        .arg(&sb.root)
        .args(["events", "--interval", "1h", &id])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let out = sb.ok(&["events", "--stats", &id]);
    assert_eq!(out.lines().count(), 1, "{out}");
    let ev: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((ev["type"].as_str(), ev["id"].as_str()), (Some("stats"), Some(id.as_str())));
    let d = &ev["data"];
    for key in ["cpu", "memory", "pids", "blkio", "hugetlb"] {
        assert!(d[key].is_object(), "no {key} in {d}");
    }
    assert!(d["cpu"]["usage"]["total"].as_u64().unwrap() > 0);
    assert_eq!(d["memory"]["usage"]["limit"], 16 << 20);
    assert!(d["memory"]["usage"]["usage"].as_u64().unwrap() > 0);
    assert_eq!(d["pids"]["limit"], 10);
    assert!((2..=3).contains(&d["pids"]["current"].as_u64().unwrap()), "{}", d["pids"]);

    assert!(
        wait_for(10, || cg.keyed("memory", if cg.v2 { "memory.events" } else { "memory.oom_control" }, "oom_kill") > 0),
        "no OOM kill"
    );
    // The stream ends by itself once the container is gone.
    std::thread::sleep(Duration::from_millis(300));
    sb.ok(&["kill", &id, "KILL"]);
    let t = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(t.elapsed() < Duration::from_secs(3), "events did not end with the container");
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!lines.is_empty(), "no events");
    for l in &lines {
        assert_eq!(l, &json!({"type": "oom", "id": id}));
    }

    let e = sb.fails(&["events", "--stats", &id]);
    assert!(e.contains("is stopped") && e.trim().lines().count() == 1, "{e}");
    assert!(sb.fails(&["events", "--interval", "0s", &id]).contains("greater than 0"));
    assert!(sb.fails(&["events", "--interval", "soon", &id]).contains("not a duration"));
    sb.ok(&["delete", &id]);
    sb.assert_clean();
}

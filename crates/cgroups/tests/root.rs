//! Root integration tests against the host's real cgroups (on this machine: v1 hybrid). Each
//! test works in its own `conductor-test-<pid>-<n>` cgroup below the test process's own
//! cgroup, removed by a guard even on failure, and signals only the helpers it started.

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::{all_dirs_gone, resources, serial, TestCgroup, HELPER_ENV};
use conductor_cgroups::{devices, FreezerState};

/// Not a test: the entry point of helper children (see common::helper).
#[test]
fn helper_entry() {
    if let Ok(mode) = std::env::var(HELPER_ENV) {
        common::helper::run(&mode);
    }
}

#[test]
fn lifecycle_leaves_nothing_behind() {
    require_root!();
    let _s = serial();
    let mut t = TestCgroup::new();
    let cg = t.cg.clone();
    assert!(cg.exists());
    // runc's cpuset rule: a new v1 cpuset cgroup gets its parent's cpus and mems.
    if !cg.is_v2() {
        assert!(!t.read("cpuset", "cpuset.cpus").is_empty());
        assert!(!t.read("cpuset", "cpuset.mems").is_empty());
    }
    cg.apply(&resources(
        r#"{"cpu":{"shares":512},"pids":{"limit":10},"memory":{"limit":67108864}}"#,
    ))
    .unwrap();
    assert_eq!(t.read("cpu", "cpu.shares"), "512");
    assert_eq!(t.read("pids", "pids.max"), "10");
    assert_eq!(t.read("memory", "memory.limit_in_bytes"), "67108864");

    let pid = t.spawn("idle");
    assert_eq!(cg.pids().unwrap(), vec![pid]);
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(
        own.lines().filter(|l| l.contains(&t.name)).count() >= cg.paths().len(),
        "{own}"
    );

    t.kill(pid);
    assert!(cg.pids().unwrap().is_empty());
    cg.destroy().unwrap();
    assert!(all_dirs_gone(&cg), "left behind: {:?}", cg.paths());
    cg.destroy().expect("destroy is idempotent");
}

#[test]
fn cpu_quota_holds_a_busy_child_at_half_a_core() {
    require_root!();
    let _s = serial();
    let mut t = TestCgroup::new();
    t.cg.apply(&resources(r#"{"cpu":{"quota":50000,"period":100000}}"#))
        .unwrap();
    // Two spinning threads: together they could use two cores, so only the quota holds them.
    let pid = t.spawn("busy2");
    sleep(Duration::from_millis(200));
    let (u0, s0, w0) = (t.cg.stats().unwrap(), raw_cpu_stat(&t), Instant::now());
    sleep(Duration::from_millis(1000));
    let (u1, s1, wall) = (t.cg.stats().unwrap(), raw_cpu_stat(&t), w0.elapsed());
    t.kill(pid);

    let cores = (u1.cpu.usage.total - u0.cpu.usage.total) as f64 / wall.as_nanos() as f64;
    let throttled = s1["nr_throttled"] - s0["nr_throttled"];
    let throttled_ns = s1["throttled_time"] - s0["throttled_time"];
    eprintln!("cpu: {cores:.3} cores over {wall:?}, {throttled} throttled periods, {throttled_ns} ns throttled");
    assert!(cores <= 0.6, "quota not enforced: {cores:.3} cores");
    assert!(
        cores >= 0.3,
        "child starved far below its quota: {cores:.3} cores"
    );
    assert!(
        throttled >= 5,
        "expected throttling, got {throttled} periods"
    );
    assert!(
        throttled_ns > 100_000_000,
        "expected > 100 ms throttled, got {throttled_ns} ns"
    );
}

fn raw_cpu_stat(t: &TestCgroup) -> BTreeMap<String, u64> {
    t.read("cpu", "cpu.stat")
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.parse().unwrap_or(0)))
        .collect()
}

#[test]
fn memory_limit_gets_the_child_oom_killed() {
    require_root!();
    let _s = serial();
    let mut t = TestCgroup::new();
    t.cg.apply(&resources(
        r#"{"memory":{"limit":33554432,"swap":33554432}}"#,
    ))
    .unwrap();
    let before = t.cg.oom_kill_count().unwrap();
    let pid = t.spawn("alloc");
    let status = t.wait(pid, Duration::from_secs(10));
    assert_eq!(
        common::killed_by(status),
        Some(libc::SIGKILL),
        "helper ended with {status:?}"
    );
    assert!(
        t.cg.oom_kill_count().unwrap() > before,
        "oom_kill did not increase"
    );
}

#[test]
fn pids_limit_makes_fork_fail_in_the_child() {
    require_root!();
    let _s = serial();
    let mut t = TestCgroup::new();
    t.cg.apply(&resources(r#"{"pids":{"limit":5}}"#)).unwrap();
    let pid = t.spawn("fork");
    let code = t.wait(pid, Duration::from_secs(10)).code();
    let started = code.map(|c| c - 100);
    assert!(
        matches!(started, Some(0..=4)),
        "expected EAGAIN after fewer than 5 forks, helper exit code {code:?}"
    );
    assert!(
        t.read("pids", "pids.events").starts_with("max ")
            && t.read("pids", "pids.events") != "max 0"
    );
}

#[test]
fn freeze_stops_progress_and_thaw_resumes_it() {
    require_root!();
    let _s = serial();
    let mut t = TestCgroup::new();
    let pid = t.spawn("busy");
    sleep(Duration::from_millis(100));
    t.cg.freeze().unwrap();
    assert_eq!(t.cg.state().unwrap(), FreezerState::Frozen);
    let u0 = t.cg.stats().unwrap().cpu.usage.total;
    sleep(Duration::from_millis(300));
    let u1 = t.cg.stats().unwrap().cpu.usage.total;
    assert_eq!(u0, u1, "frozen child kept running");

    t.cg.thaw().unwrap();
    assert_eq!(t.cg.state().unwrap(), FreezerState::Thawed);
    sleep(Duration::from_millis(300));
    let u2 = t.cg.stats().unwrap().cpu.usage.total;
    assert!(
        u2 - u1 > 50_000_000,
        "thawed child made no progress ({} ns)",
        u2 - u1
    );
    t.kill(pid);
}

#[test]
fn kill_all_kills_every_process() {
    require_root!();
    let _s = serial();
    let mut t = TestCgroup::new();
    let a = t.spawn("idle");
    let b = t.spawn("busy");
    t.cg.kill_all(libc::SIGKILL).unwrap();
    for pid in [a, b] {
        assert_eq!(
            common::killed_by(t.wait(pid, Duration::from_secs(5))),
            Some(libc::SIGKILL)
        );
    }
    assert!(t.cg.pids().unwrap().is_empty());
    assert_eq!(
        t.cg.state().unwrap(),
        FreezerState::Thawed,
        "kill_all must not leave the cgroup frozen"
    );
}

#[test]
fn stats_match_the_files() {
    require_root!();
    let _s = serial();
    let mut t = TestCgroup::new();
    t.cg.apply(&resources(
        r#"{"memory":{"limit":67108864},"pids":{"limit":10},"cpu":{"quota":20000}}"#,
    ))
    .unwrap();
    common::spawn_holding(&mut t);
    let usage_before: u64 = t.read("cpuacct", "cpuacct.usage").parse().unwrap();
    let s = t.cg.stats().unwrap();
    let usage_after: u64 = t.read("cpuacct", "cpuacct.usage").parse().unwrap();

    assert!((usage_before..=usage_after).contains(&s.cpu.usage.total));
    assert_eq!(
        s.cpu.usage.percpu.len(),
        t.read("cpuacct", "cpuacct.usage_percpu")
            .split_whitespace()
            .count()
    );
    assert_eq!(s.cpu.throttling.periods, raw_cpu_stat(&t)["nr_periods"]);
    assert_eq!(s.memory.usage.limit, 67_108_864);
    assert_eq!(
        s.memory.usage.limit.to_string(),
        t.read("memory", "memory.limit_in_bytes")
    );
    assert_eq!(
        s.memory.usage.failcnt.to_string(),
        t.read("memory", "memory.failcnt")
    );
    assert!(
        s.memory.usage.usage >= 8 << 20,
        "usage {}",
        s.memory.usage.usage
    );
    assert!(s.memory.usage.max >= s.memory.usage.usage);
    assert_eq!(s.memory.raw.get("cache").copied(), Some(s.memory.cache));
    assert_eq!(s.pids.limit, 10);
    assert_eq!(s.pids.current.to_string(), t.read("pids", "pids.current"));

    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["memory"]["usage"]["limit"], 67_108_864);
    assert_eq!(json["pids"]["limit"], 10);
    assert!(json["cpu"]["usage"]["percpu"].is_array());
}

/// Every readable, writable file of the cgroup, to show that a refused update changed nothing.
fn snapshot(t: &TestCgroup) -> BTreeMap<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    for dir in t.cg.paths().values() {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let writable = e
                .metadata()
                .map(|m| m.permissions().mode() & 0o200 != 0)
                .unwrap_or(false);
            let name = e.file_name().to_string_lossy().to_string();
            // Counters that tick by themselves or are write-only triggers.
            if !writable || name.contains("max_usage") || name == "cgroup.procs" || name == "tasks"
            {
                continue;
            }
            if let Ok(v) = std::fs::read_to_string(e.path()) {
                out.insert(e.path().display().to_string(), v);
            }
        }
    }
    out
}

#[test]
fn invalid_input_leaves_no_file_changed() {
    require_root!();
    let _s = serial();
    let mut t = TestCgroup::new();
    t.cg.apply(&resources(
        r#"{"cpu":{"shares":512,"quota":30000},"memory":{"limit":67108864}}"#,
    ))
    .unwrap();
    common::spawn_holding(&mut t); // so a tiny limit is "below current usage"
    let before = snapshot(&t);
    assert!(before.keys().any(|k| k.ends_with("cpu.shares")));

    let cases = [
        (
            r#"{"cpu":{"shares":1024,"quota":0}}"#,
            "linux.resources.cpu.quota: must be > 0 or -1, got 0",
        ),
        (
            r#"{"cpu":{"shares":1024,"period":999}}"#,
            "linux.resources.cpu.period:",
        ),
        (
            r#"{"cpu":{"shares":1024,"cpus":"0-4095"}}"#,
            "linux.resources.cpu.cpus:",
        ),
        (
            r#"{"cpu":{"shares":1024},"memory":{"limit":4096}}"#,
            "linux.resources.memory.limit: 4096 is below the current usage",
        ),
        (
            r#"{"cpu":{"shares":1024},"memory":{"swappiness":101}}"#,
            "linux.resources.memory.swappiness:",
        ),
        (
            r#"{"cpu":{"shares":1024},"pids":{"limit":-2}}"#,
            "linux.resources.pids.limit:",
        ),
        (
            r#"{"cpu":{"shares":1024},"unified":{"memory.max":"1"}}"#,
            "linux.resources.unified: needs cgroup v2",
        ),
        (
            r#"{"cpu":{"shares":1024},"devices":[{"allow":true,"access":"rwx"}]}"#,
            "linux.resources.devices[0].access:",
        ),
    ];
    for (json, want) in cases {
        let err = t.cg.apply(&resources(json)).expect_err(json).to_string();
        assert!(err.starts_with(want), "{json}: got {err:?}");
        assert!(!err.contains('\n'), "error is not one line: {err:?}");
    }
    assert_eq!(snapshot(&t), before, "a refused update changed files");

    // Valid input the kernel refuses midway (this kernel rejects use_hierarchy=0): the cpu
    // writes already made are put back.
    if t.read("memory", "memory.use_hierarchy") == "1" {
        let err = t.cg.apply(&resources(
            r#"{"cpu":{"shares":700,"quota":60000},"memory":{"useHierarchy":false}}"#,
        ));
        if let Err(e) = err {
            eprintln!("kernel refused as expected: {e}");
            assert_eq!(t.read("cpu", "cpu.shares"), "512");
            assert_eq!(t.read("cpu", "cpu.cfs_quota_us"), "30000");
        }
    }
}

#[test]
fn device_program_is_enforced_through_the_unified_hierarchy() {
    require_root!();
    let _s = serial();
    let mut t = TestCgroup::new();
    let Some(unified) =
        t.cg.paths()
            .get(if t.cg.is_v2() { "" } else { "unified" })
            .cloned()
    else {
        eprintln!("skipping: no cgroup2 hierarchy");
        return;
    };
    let rules = |json: &str| {
        devices::rules_from_oci(&serde_json::from_str::<Vec<_>>(json).unwrap()).unwrap()
    };
    let only_null = rules(
        r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"}]"#,
    );
    devices::attach_program(&unified, &only_null).unwrap();
    let pid = t.spawn("devices");
    assert_eq!(
        t.wait(pid, Duration::from_secs(10)).code(),
        Some(0),
        "/dev/null allowed and /dev/zero denied"
    );

    // Replacing the program (the old one is detached) opens /dev/zero again.
    devices::attach_program(&unified, &rules(r#"[{"allow":true,"access":"rwm"}]"#)).unwrap();
    let pid = t.spawn("devices");
    assert_eq!(
        t.wait(pid, Duration::from_secs(10)).code(),
        Some(10),
        "both devices allowed after replacement"
    );
}

#[test]
fn every_write_and_mkdir_is_an_explain_event() {
    require_root!();
    let _s = serial();
    let rec = common::explain::Recorder::default();
    let events = rec.events.clone();
    let name = format!("conductor-test-{}-explain", std::process::id());
    let cg = conductor_cgroups::Cgroup::new(Some(&name), &name).unwrap();
    let result = tracing::subscriber::with_default(rec, || {
        cg.create()?;
        cg.apply(&resources(r#"{"pids":{"limit":7}}"#))?;
        cg.destroy()
    });
    let _ = cg.destroy();
    result.unwrap();
    let events = events.lock().unwrap().clone();
    let has = |suffix: &str, value: &str| {
        events
            .iter()
            .any(|(p, v)| p.ends_with(suffix) && v == value)
    };
    assert!(has(&name, "mkdir"), "{events:?}");
    assert!(has("pids.max", "7"), "{events:?}");
    assert!(has(&name, "rmdir"), "{events:?}");
    assert!(Path::new(&cg.paths().values().next().unwrap())
        .exists()
        .eq(&false));
}

#[test]
fn v2_dir_fd_only_on_v2() {
    require_root!();
    let _s = serial();
    let t = TestCgroup::new();
    assert_eq!(t.cg.v2_dir_fd().unwrap().is_some(), t.cg.is_v2());
}

#[test]
fn handle_survives_a_round_trip_through_json() {
    require_root!();
    let _s = serial();
    let t = TestCgroup::new();
    let saved = serde_json::to_string(&t.cg).unwrap();
    let reopened: conductor_cgroups::Cgroup = serde_json::from_str(&saved).unwrap();
    assert_eq!(reopened, t.cg);
    assert!(reopened.exists());
    assert_eq!(reopened.pids().unwrap(), Vec::<i32>::new());
}

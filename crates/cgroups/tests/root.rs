//! Root integration tests against the host's real cgroups: v1 hybrid on this machine, pure v2
//! in the QEMU guest of tests/qemu/cgroup_v2.sh. Every test asserts the same behaviour on both;
//! only the kernel files it reads to check are picked by hierarchy. Each test works in its own
//! `conductor-test-<pid>-<n>` cgroup below the test process's own cgroup, removed by a guard
//! even on failure, and signals only the helpers it started.

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
    // v2: every ancestor delegated its controllers, so the limits below have their files.
    if cg.is_v2() {
        let have = t.read("", "cgroup.controllers");
        for c in ["cpu", "memory", "pids"] {
            assert!(have.split_whitespace().any(|h| h == c), "{c} not delegated: {have}");
        }
    } else {
        assert!(!t.read("cpuset", "cpuset.cpus").is_empty());
        assert!(!t.read("cpuset", "cpuset.mems").is_empty());
    }
    cg.apply(&resources(r#"{"cpu":{"shares":512},"pids":{"limit":10},"memory":{"limit":67108864}}"#)).unwrap();
    if cg.is_v2() {
        // 512 shares on the runc/crun curve (1024 -> 100).
        assert_eq!(t.read("cpu", "cpu.weight"), "59");
        assert_eq!(t.read("memory", "memory.max"), "67108864");
    } else {
        assert_eq!(t.read("cpu", "cpu.shares"), "512");
        assert_eq!(t.read("memory", "memory.limit_in_bytes"), "67108864");
    }
    assert_eq!(t.read("pids", "pids.max"), "10");

    let pid = t.spawn("idle");
    assert_eq!(cg.pids().unwrap(), vec![pid]);
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(own.lines().filter(|l| l.contains(&t.name)).count() >= cg.paths().len(), "{own}");

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
    t.cg.apply(&resources(r#"{"cpu":{"quota":50000,"period":100000}}"#)).unwrap();
    if t.is_v2() {
        assert_eq!(t.read("cpu", "cpu.max"), "50000 100000");
    } else {
        assert_eq!(t.read("cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(t.read("cpu", "cpu.cfs_period_us"), "100000");
    }
    // Two spinning threads: together they could use two cores, so only the quota holds them.
    // Measured with the cgroup's own counters (v1 cpuacct.usage + cpu.stat, v2 cpu.stat).
    let pid = t.spawn("busy2");
    sleep(Duration::from_millis(200));
    let (u0, s0, w0) = (t.cpu_usage_ns(), t.cpu_throttled(), Instant::now());
    sleep(Duration::from_millis(1000));
    let (u1, s1, wall) = (t.cpu_usage_ns(), t.cpu_throttled(), w0.elapsed());
    // The library reports the same counters (read a moment later, so not less).
    let stats = t.cg.stats().unwrap();
    t.kill(pid);
    assert!(stats.cpu.usage.total >= u1, "stats {} < {u1}", stats.cpu.usage.total);
    assert!(stats.cpu.throttling.throttled_periods >= s1.0);

    let cores = (u1 - u0) as f64 / wall.as_nanos() as f64;
    let throttled = s1.0 - s0.0;
    let throttled_ns = s1.1 - s0.1;
    eprintln!("cpu: {cores:.3} cores over {wall:?}, {throttled} throttled periods, {throttled_ns} ns throttled");
    assert!(cores <= 0.6, "quota not enforced: {cores:.3} cores");
    assert!(cores >= 0.3, "child starved far below its quota: {cores:.3} cores");
    assert!(throttled >= 5, "expected throttling, got {throttled} periods");
    assert!(throttled_ns > 100_000_000, "expected > 100 ms throttled, got {throttled_ns} ns");
}

#[test]
fn memory_limit_gets_the_child_oom_killed() {
    require_root!();
    let _s = serial();
    let mut t = TestCgroup::new();
    t.cg.apply(&resources(r#"{"memory":{"limit":33554432,"swap":33554432}}"#)).unwrap();
    // swap is memory+swap in the spec: v1 memsw = 32 MiB, v2 swap.max = 32 - 32 = 0.
    let swap_file = if t.is_v2() {
        assert_eq!(t.read("memory", "memory.max"), "33554432");
        ("memory.swap.max", "0")
    } else {
        assert_eq!(t.read("memory", "memory.limit_in_bytes"), "33554432");
        ("memory.memsw.limit_in_bytes", "33554432")
    };
    if t.dir("memory").join(swap_file.0).exists() {
        assert_eq!(t.read("memory", swap_file.0), swap_file.1);
    }
    let before = t.oom_kills();
    assert_eq!(t.cg.oom_kill_count().unwrap(), before);
    let pid = t.spawn("alloc");
    let status = t.wait(pid, Duration::from_secs(10));
    assert_eq!(common::killed_by(status), Some(libc::SIGKILL), "helper ended with {status:?}");
    let after = t.oom_kills();
    assert!(after > before, "oom_kill did not increase ({before} -> {after})");
    assert_eq!(t.cg.oom_kill_count().unwrap(), after);
}

#[test]
fn pids_limit_makes_fork_fail_in_the_child() {
    require_root!();
    let _s = serial();
    let mut t = TestCgroup::new();
    t.cg.apply(&resources(r#"{"pids":{"limit":5}}"#)).unwrap();
    assert_eq!(t.read("pids", "pids.max"), "5");
    let refused_before = t.keyed("pids", "pids.events", "max");
    let pid = t.spawn("fork");
    let code = t.wait(pid, Duration::from_secs(10)).code();
    let started = code.map(|c| c - 100);
    assert!(matches!(started, Some(0..=4)), "expected EAGAIN after fewer than 5 forks, helper exit code {code:?}");
    // The kernel counted the refused fork in this cgroup (same file and line on v1 and v2).
    let refused = t.keyed("pids", "pids.events", "max");
    assert!(refused > refused_before, "pids.events max: {refused_before} -> {refused}");
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
    // v1 freezer.state; v2 cgroup.freeze=1 and "frozen 1" in cgroup.events.
    assert_eq!(t.kernel_freezer_state(), "FROZEN");
    let u0 = t.cpu_usage_ns();
    sleep(Duration::from_millis(300));
    let u1 = t.cpu_usage_ns();
    assert_eq!(u0, u1, "frozen child kept running");
    assert_eq!(t.cg.stats().unwrap().cpu.usage.total, u1);

    t.cg.thaw().unwrap();
    assert_eq!(t.cg.state().unwrap(), FreezerState::Thawed);
    assert_eq!(t.kernel_freezer_state(), "THAWED");
    sleep(Duration::from_millis(300));
    let u2 = t.cpu_usage_ns();
    assert!(u2 - u1 > 50_000_000, "thawed child made no progress ({} ns)", u2 - u1);
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
        assert_eq!(common::killed_by(t.wait(pid, Duration::from_secs(5))), Some(libc::SIGKILL));
    }
    assert!(t.cg.pids().unwrap().is_empty());
    assert_eq!(t.cg.state().unwrap(), FreezerState::Thawed, "kill_all must not leave the cgroup frozen");
    assert_eq!(t.kernel_freezer_state(), "THAWED");
}

#[test]
fn stats_match_the_files() {
    require_root!();
    let _s = serial();
    let mut t = TestCgroup::new();
    t.cg.apply(&resources(r#"{"memory":{"limit":67108864},"pids":{"limit":10},"cpu":{"quota":20000}}"#)).unwrap();
    common::spawn_holding(&mut t);
    let v2 = t.is_v2();
    let usage_before = t.cpu_usage_ns();
    let s = t.cg.stats().unwrap();
    let usage_after = t.cpu_usage_ns();

    assert!(
        (usage_before..=usage_after).contains(&s.cpu.usage.total),
        "{usage_before} <= {} <= {usage_after}",
        s.cpu.usage.total
    );
    if v2 {
        // v2 has no per-CPU figures; runc leaves them out.
        assert!(s.cpu.usage.percpu.is_empty());
    } else {
        assert_eq!(s.cpu.usage.percpu.len(), t.read("cpuacct", "cpuacct.usage_percpu").split_whitespace().count());
    }
    let cpu_stat = t.read_keyed("cpu", "cpu.stat");
    assert_eq!(s.cpu.throttling.periods, cpu_stat["nr_periods"]);
    assert_eq!(s.cpu.throttling.throttled_periods, cpu_stat["nr_throttled"]);

    let (limit_file, failcnt) = if v2 {
        ("memory.max", t.keyed("memory", "memory.events", "max"))
    } else {
        ("memory.limit_in_bytes", t.read("memory", "memory.failcnt").parse().unwrap())
    };
    assert_eq!(s.memory.usage.limit, 67_108_864);
    assert_eq!(s.memory.usage.limit.to_string(), t.read("memory", limit_file));
    assert_eq!(s.memory.usage.failcnt, failcnt);
    assert!(s.memory.usage.usage >= 8 << 20, "usage {}", s.memory.usage.usage);
    assert!(s.memory.usage.max >= s.memory.usage.usage);
    // raw is memory.stat as is; the page cache is v1's "cache", v2's "file".
    let memory_stat = t.read_keyed("memory", "memory.stat");
    assert_eq!(s.memory.raw.keys().collect::<Vec<_>>(), memory_stat.keys().collect::<Vec<_>>());
    let cache_key = if v2 { "file" } else { "cache" };
    assert_eq!(s.memory.raw.get(cache_key).copied(), Some(s.memory.cache));
    assert_eq!(s.pids.limit, 10);
    assert_eq!(s.pids.limit.to_string(), t.read("pids", "pids.max"));
    assert_eq!(s.pids.current.to_string(), t.read("pids", "pids.current"));

    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["memory"]["usage"]["limit"], 67_108_864);
    assert_eq!(json["pids"]["limit"], 10);
    if v2 {
        assert!(json["cpu"]["usage"].get("percpu").is_none());
    } else {
        assert!(json["cpu"]["usage"]["percpu"].is_array());
    }
}

/// Every readable, writable file of the cgroup, to show that a refused update changed nothing.
fn snapshot(t: &TestCgroup) -> BTreeMap<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    for dir in t.cg.paths().values() {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let writable = e.metadata().map(|m| m.permissions().mode() & 0o200 != 0).unwrap_or(false);
            let name = e.file_name().to_string_lossy().to_string();
            // Counters that tick by themselves (v1 max_usage and cpuacct.usage, writable to
            // reset them; v2 peaks and pressure stall figures, writable for triggers) and
            // lists of tasks.
            if !writable
                || name.contains("max_usage")
                || name == "cpuacct.usage"
                || name.ends_with(".peak")
                || name.ends_with(".pressure")
                || ["cgroup.procs", "cgroup.threads", "tasks"].contains(&name.as_str())
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
    t.cg.apply(&resources(r#"{"cpu":{"shares":512,"quota":30000},"memory":{"limit":67108864}}"#)).unwrap();
    common::spawn_holding(&mut t); // so a tiny limit is "below current usage"
    let v2 = t.is_v2();
    let before = snapshot(&t);
    let shares_file = if v2 { "/cpu.weight" } else { "/cpu.shares" };
    assert!(before.keys().any(|k| k.ends_with(shares_file)), "{before:?}");

    // Raw v2 files: refused outright on v1, an unknown file refused on v2.
    let unified = if v2 {
        (
            r#"{"cpu":{"shares":1024},"unified":{"memory.bogus":"1"}}"#,
            "linux.resources.unified.memory.bogus: no such file in this cgroup",
        )
    } else {
        (r#"{"cpu":{"shares":1024},"unified":{"memory.max":"1"}}"#, "linux.resources.unified: needs cgroup v2")
    };
    let cases = [
        (r#"{"cpu":{"shares":1024,"quota":0}}"#, "linux.resources.cpu.quota: must be > 0 or -1, got 0"),
        (r#"{"cpu":{"shares":1024,"period":999}}"#, "linux.resources.cpu.period:"),
        (r#"{"cpu":{"shares":1024,"cpus":"0-4095"}}"#, "linux.resources.cpu.cpus:"),
        (r#"{"cpu":{"shares":1024},"memory":{"limit":4096}}"#, "linux.resources.memory.limit: 4096 is below the current usage"),
        (r#"{"cpu":{"shares":1024},"memory":{"swappiness":101}}"#, "linux.resources.memory.swappiness:"),
        (r#"{"cpu":{"shares":1024},"pids":{"limit":-2}}"#, "linux.resources.pids.limit:"),
        unified,
        (r#"{"cpu":{"shares":1024},"devices":[{"allow":true,"access":"rwx"}]}"#, "linux.resources.devices[0].access:"),
    ];
    for (json, want) in cases {
        let err = t.cg.apply(&resources(json)).expect_err(json).to_string();
        assert!(err.starts_with(want), "{json}: got {err:?}");
        assert!(!err.contains('\n'), "error is not one line: {err:?}");
    }
    assert_eq!(snapshot(&t), before, "a refused update changed files");

    // Valid-looking input the kernel refuses midway: the cpu writes already made are put
    // back. v2: a raw memory.high value the kernel cannot parse (written after the typed
    // fields); v1: use_hierarchy=0, which new kernels reject.
    if v2 {
        let e =
            t.cg.apply(&resources(r#"{"cpu":{"shares":700,"quota":60000},"unified":{"memory.high":"bogus"}}"#))
                .expect_err("the kernel refuses memory.high=bogus");
        eprintln!("kernel refused as expected: {e}");
        assert_eq!(t.read("cpu", "cpu.weight"), "59");
        assert_eq!(t.read("cpu", "cpu.max"), "30000 100000");
        assert_eq!(snapshot(&t), before, "a refused update changed files");
    } else if t.read("memory", "memory.use_hierarchy") == "1" {
        let err = t.cg.apply(&resources(r#"{"cpu":{"shares":700,"quota":60000},"memory":{"useHierarchy":false}}"#));
        if let Err(e) = err {
            eprintln!("kernel refused as expected: {e}");
            assert_eq!(t.read("cpu", "cpu.shares"), "512");
            assert_eq!(t.read("cpu", "cpu.cfs_quota_us"), "30000");
            assert_eq!(snapshot(&t), before, "a refused update changed files");
        }
    }
}

#[test]
fn device_program_is_enforced_through_the_unified_hierarchy() {
    require_root!();
    let _s = serial();
    let mut t = TestCgroup::new();
    let Some(unified) = t.cg.paths().get(if t.cg.is_v2() { "" } else { "unified" }).cloned() else {
        eprintln!("skipping: no cgroup2 hierarchy");
        return;
    };
    let rules = |json: &str| devices::rules_from_oci(&serde_json::from_str::<Vec<_>>(json).unwrap()).unwrap();
    let only_null = rules(r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"}]"#);
    devices::attach_program(&unified, &only_null).unwrap();
    let pid = t.spawn("devices");
    assert_eq!(t.wait(pid, Duration::from_secs(10)).code(), Some(0), "/dev/null allowed and /dev/zero denied");

    // Replacing the program (the old one is detached) opens /dev/zero again.
    devices::attach_program(&unified, &rules(r#"[{"allow":true,"access":"rwm"}]"#)).unwrap();
    let pid = t.spawn("devices");
    assert_eq!(t.wait(pid, Duration::from_secs(10)).code(), Some(10), "both devices allowed after replacement");
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
    let has = |suffix: &str, value: &str| events.iter().any(|(p, v)| p.ends_with(suffix) && v == value);
    assert!(has(&name, "mkdir"), "{events:?}");
    assert!(has("pids.max", "7"), "{events:?}");
    assert!(has(&name, "rmdir"), "{events:?}");
    assert!(Path::new(&cg.paths().values().next().unwrap()).exists().eq(&false));
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

/// Removes the test's cgroups and their parent when dropped, also when the test fails.
struct Cleanup(Vec<conductor_cgroups::Cgroup>, String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for cg in &self.0 {
            let _ = cg.destroy();
            cg.remove_empty_parent(&self.1);
        }
    }
}

/// Creating a cgroup under a shared parent while another container's delete removes that
/// parent once it is empty (the runtime's remove_empty_parent): creation must never fail.
#[test]
fn create_survives_a_concurrent_removal_of_the_empty_parent() {
    require_root!();
    let _s = serial();
    let parent = format!("conductor-test-{}-race", std::process::id());
    let cg = |n: &str| conductor_cgroups::Cgroup::new(Some(&format!("/{parent}/{n}")), n).unwrap();
    let (a, b) = (cg("a"), cg("b"));
    let _cleanup = Cleanup(vec![a.clone(), b.clone()], parent.clone());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let churn = std::thread::spawn({
        let parent = parent.clone();
        move || {
            let mut failures = 0;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                failures += usize::from(a.create().is_err());
                let _ = a.destroy();
                a.remove_empty_parent(&parent);
            }
            failures
        }
    });
    let mut failures = Vec::new();
    for _ in 0..300 {
        if let Err(e) = b.create() {
            failures.push(e.to_string());
        }
        let _ = b.destroy();
        b.remove_empty_parent(&parent);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let churn_failures = churn.join().unwrap();
    assert!(failures.is_empty(), "{} of 300 creates failed, e.g. {}", failures.len(), failures[0]);
    assert_eq!(churn_failures, 0, "creates failed in the other thread");
}

/// A create that fails part-way removes what it made: here the cgroup2 hierarchy (made last
/// on a hybrid host, the only one on v2) refuses the new level, because its parent allows
/// one descendant and has it already.
#[test]
fn a_failed_create_leaves_nothing() {
    require_root!();
    let _s = serial();
    let parent = format!("conductor-test-{}-undo", std::process::id());
    let cg = |n: &str| conductor_cgroups::Cgroup::new(Some(&format!("/{parent}/{n}")), n).unwrap();
    let (first, second) = (cg("first"), cg("second"));
    let _cleanup = Cleanup(vec![second.clone(), first.clone()], parent.clone());
    first.create().unwrap();
    let Some(unified) = first.paths().get(if first.is_v2() { "" } else { "unified" }).cloned() else {
        eprintln!("skipping: no cgroup2 hierarchy");
        return;
    };
    let limit = unified.parent().unwrap().join("cgroup.max.descendants");
    std::fs::write(&limit, "1").unwrap();
    let e = second.create().unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EAGAIN), "{e}");
    for dir in second.paths().values() {
        assert!(!dir.exists(), "{} was left behind", dir.display());
    }
    assert!(first.exists(), "what existed before stays");
}

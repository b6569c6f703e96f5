//! conductor-runtime lifecycle: create/start/state/kill/delete, run, list, wrong-state errors and
//! bad input. Root only; each test in its own sandbox, asserting nothing is left behind.

mod common;

use common::*;
use serde_json::json;

#[test]
fn create_start_kill_delete() {
    if skip_unless_root() {
        return;
    }
    let mut sb = Sandbox::new("lifecycle");
    let id = sb.id("a");
    let mut cfg = config(&["sleep", "1000"]);
    cfg["annotations"] = json!({"org.example.key": "value"});
    let b = sb.bundle("b", &cfg);
    let pidfile = sb.dir.join("pid");
    sb.ok(&["create", "--bundle", b.to_str().unwrap(), "--pid-file", pidfile.to_str().unwrap(), &id]);

    let st = sb.state(&id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], id.as_str());
    assert_eq!(st["bundle"], b.to_str().unwrap());
    assert_eq!(st["rootfs"], b.join("rootfs").to_str().unwrap());
    assert_eq!(st["annotations"]["org.example.key"], "value");
    assert!(st["created"].as_str().unwrap().contains('T'));
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().parse().unwrap();
    assert_eq!(st["pid"], pid);
    // Init has not run the user's program yet.
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).starts_with("sleep"), "program ran before start");

    assert!(sb.fails(&["delete", "--bundle-is-not-a-flag", &id]).contains("unexpected argument"));
    sb.ok(&["start", &id]);
    assert!(wait_for(5, || std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default().starts_with(b"sleep")));
    assert_eq!(sb.state(&id)["status"], "running");

    let e = sb.fails(&["start", &id]);
    assert!(e.contains("is running: cannot start"), "{e}");
    let e = sb.fails(&["delete", &id]);
    assert!(e.contains("is running: cannot delete"), "{e}");

    let list: serde_json::Value = serde_json::from_str(&sb.ok(&["list", "--format", "json"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], id.as_str());

    let ps: Vec<i32> = serde_json::from_str(&sb.ok(&["ps", "--format", "json", &id])).unwrap();
    assert_eq!(ps, vec![pid]);

    sb.ok(&["kill", &id, "KILL"]);
    assert!(wait_for(5, || sb.state(&id)["status"] == "stopped"));
    assert_eq!(sb.state(&id)["pid"], 0);
    let e = sb.fails(&["kill", &id, "TERM"]);
    assert!(e.contains("is stopped: cannot kill"), "{e}");
    sb.ok(&["delete", &id]);
    assert!(sb.fails(&["state", &id]).contains("does not exist"));
    sb.assert_clean();
}

#[test]
fn delete_force_and_created_delete() {
    if skip_unless_root() {
        return;
    }
    let mut sb = Sandbox::new("force");
    let a = sb.id("a");
    let c = sb.id("c");
    let b = sb.bundle("b", &config(&["sleep", "1000"]));
    sb.ok(&["run", "--detach", "--bundle", b.to_str().unwrap(), &a]);
    assert_eq!(sb.state(&a)["status"], "running");
    let pid = sb.state(&a)["pid"].as_i64().unwrap();
    sb.ok(&["delete", "--force", &a]);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap().contains(") Z")
    );
    // A created container can be deleted without --force.
    sb.ok(&["create", "--bundle", b.to_str().unwrap(), &c]);
    sb.ok(&["delete", &c]);
    // --force on a missing container is not an error; without it, it is.
    sb.ok(&["delete", "--force", "nope"]);
    assert!(sb.fails(&["delete", "nope"]).contains("does not exist"));
    sb.assert_clean();
}

#[test]
fn run_passes_exit_code_and_output() {
    if skip_unless_root() {
        return;
    }
    let mut sb = Sandbox::new("run");
    let id = sb.id("r");
    let b = sb.bundle("b", &config(&["sh", "-c", "echo pid=$$; echo err >&2; exit 7"]));
    let o = sb.rt(&["run", "--bundle", b.to_str().unwrap(), &id]);
    assert_eq!(o.status.code(), Some(7), "stderr: {}", stderr(&o));
    assert_eq!(stdout(&o), "pid=1\n");
    assert!(stderr(&o).contains("err"));
    sb.assert_clean();
}

#[test]
fn duplicate_id_is_refused_and_original_untouched() {
    if skip_unless_root() {
        return;
    }
    let mut sb = Sandbox::new("dup");
    let id = sb.id("d");
    let b = sb.bundle("b", &config(&["sleep", "1000"]));
    sb.ok(&["create", "--bundle", b.to_str().unwrap(), &id]);
    let e = sb.fails(&["create", "--bundle", b.to_str().unwrap(), &id]);
    assert!(e.contains("already exists"), "{e}");
    assert_eq!(sb.state(&id)["status"], "created");
    sb.ok(&["delete", &id]);
    sb.assert_clean();
}

#[test]
fn bad_input_is_named_and_leaves_nothing() {
    if skip_unless_root() {
        return;
    }
    let mut sb = Sandbox::new("bad");
    let id = sb.id("x");
    let good = config(&["true"]);
    let b = sb.bundle("b", &good);
    let bs = b.to_str().unwrap();
    let cfg = b.join("config.json");
    let cases: Vec<(String, &str)> = vec![
        ("{not json".into(), "config.json: key must be a string"),
        (json!({"ociVersion": "1.0.2"}).to_string(), "missing field `root`"),
        (
            {
                let mut v = good.clone();
                v["root"]["path"] = json!("missing");
                v.to_string()
            },
            "root.path:",
        ),
        (
            {
                let mut v = good.clone();
                v["linux"]["namespaces"][0]["type"] = json!("bogus");
                v.to_string()
            },
            "linux.namespaces[0].type: unknown variant `bogus`",
        ),
        (
            {
                let mut v = good.clone();
                v["mounts"][0]["type"] = json!("bogusfs");
                v.to_string()
            },
            "mounts[0].type: unknown filesystem type \"bogusfs\"",
        ),
        (
            {
                let mut v = good.clone();
                v["process"]["args"] = json!(["/no/such/program"]);
                v.to_string()
            },
            "no such executable",
        ),
    ];
    for (text, want) in cases {
        std::fs::write(&cfg, text).unwrap();
        let e = sb.fails(&["create", "--bundle", bs, &id]);
        assert!(e.contains(want), "want {want:?} in {e:?}");
        assert_eq!(e.trim().lines().count(), 1, "one line: {e:?}");
        sb.assert_clean();
    }
    std::fs::write(&cfg, good.to_string()).unwrap();
    let long = "a".repeat(1025);
    for (bad, want) in
        [("a/b", "contains '/'"), ("..", "not a name"), (long.as_str(), "longer than 1024"), ("a b", "only letters")]
    {
        let e = sb.fails(&["create", "--bundle", bs, bad]);
        assert!(e.contains(want), "{bad:?}: {e}");
    }
    // NUL cannot pass through argv; the library check is unit-tested.
    sb.assert_clean();
}

#[test]
fn systemd_cgroup_flag_takes_systemd_paths_only() {
    if skip_unless_root() {
        return;
    }
    let mut sb = Sandbox::new("systemd");
    let id = sb.id("s");
    let mut cfg = config(&["true"]);
    cfg["linux"]["cgroupsPath"] = json!("/plain/path");
    let b = sb.bundle("b", &cfg);
    let e = sb.fails(&["--systemd-cgroup", "run", "--bundle", b.to_str().unwrap(), &id]);
    assert!(e.contains("--systemd-cgroup: linux.cgroupsPath must be \"slice:prefix:name\""), "{e}");
    sb.assert_clean();
    // The systemd form runs, in the cgroupfs directory systemd would use.
    cfg["linux"]["cgroupsPath"] = json!(format!("cndtest.slice:cnd:{id}"));
    cfg["process"]["args"] = json!(["cat", "/proc/self/cgroup"]);
    let b = sb.bundle("b2", &cfg);
    let mut no_cgroupns = cfg.clone();
    let ns: Vec<_> = cfg["linux"]["namespaces"].as_array().unwrap().iter().filter(|n| n["type"] != "cgroup").cloned().collect();
    no_cgroupns["linux"]["namespaces"] = json!(ns);
    std::fs::write(b.join("config.json"), no_cgroupns.to_string()).unwrap();
    let out = sb.ok(&["--systemd-cgroup", "run", "--bundle", b.to_str().unwrap(), &id]);
    assert!(out.contains(&format!("/cndtest.slice/cnd-{id}.scope")), "{out}");
    // The slice is systemd's to keep on a systemd host; this test made it, so it removes it.
    for d in cgroup_dirs("cndtest.slice") {
        let _ = std::fs::remove_dir(d);
    }
    sb.assert_clean();
}

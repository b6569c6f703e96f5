//! The seed's Task 2 with conductor: `examples/simple_container.sh` run end to end (2a a new root
//! only, 2b new PID and UTS namespaces, 2c a 50% CPU cap), each stage's output checked for its
//! meaning; the cap itself asserted from the cgroup's own CPU accounting and throttling counters.
//! Root only.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::cgroup::Cg;
use common::engine::Engine;
use common::*;

fn container_prog() -> std::path::PathBuf {
    bin("container_prog")
}

fn hostname() -> String {
    nix::unistd::gethostname().unwrap().into_string().unwrap()
}

/// One stage's report: the values after each label, and the root listing.
struct Stage {
    pid: i32,
    child_pid: i32,
    hostname: Option<String>,
    root: BTreeSet<String>,
    time_ms: Option<u64>,
}

fn value<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    text.lines().find_map(|l| l.strip_prefix(label)).map(str::trim)
}

fn parse_stage(text: &str) -> Stage {
    let listing = text.split("Files/Directories in root directory:\n").nth(1).expect("a root listing");
    let root = listing.lines().take_while(|l| !l.starts_with("_ _")).map(String::from).collect();
    Stage {
        pid: value(text, "Process PID:").unwrap().parse().unwrap(),
        child_pid: value(text, "Child Process PID:").unwrap().parse().unwrap(),
        hostname: value(text, "Hostname within container:").map(String::from),
        root,
        time_ms: value(text, "Time Taken:").map(|t| t.trim_end_matches(" ms").parse().unwrap()),
    }
}

#[test]
fn the_three_stages_of_the_script() {
    if skip_unless_root() {
        return;
    }
    let host_name = hostname();
    let e = Engine::new("stages");
    let o = output_via_files(
        std::process::Command::new("examples/simple_container.sh")
            .env("CONDUCTOR", bin("conductor"))
            .env("CONTAINER_PROG", container_prog())
            .env("CONTAINER_PROG_MILLIONS", "50")
            .env("CONDUCTOR_ROOT", e.dir.join("data"))
            .env("CONDUCTOR_RUNROOT", e.dir.join("run")),
        &e.dir,
    );
    let out = stdout(&o);
    assert!(o.status.success(), "{out}\n{}", stderr(&o));
    let part = |from: &str, to: &str| {
        let start = out.find(from).unwrap_or_else(|| panic!("no {from:?} in\n{out}"));
        let rest = &out[start..];
        rest[..rest.find(to).unwrap_or(rest.len())].to_string()
    };
    let (a, b, c) = (
        part("Output Subtask 2a", "Output Subtask 2b"),
        part("Output Subtask 2b", "Output Subtask 2c"),
        part("Output Subtask 2c", "\0"),
    );
    let (sa, sb, sc) = (parse_stage(&a), parse_stage(&b), parse_stage(&c));

    // 2a: only a new root. The pids are the host's, and so is the hostname.
    assert!(sa.pid > 2 && sa.child_pid > sa.pid, "host pids: {a}");
    assert_eq!(sa.hostname.as_deref(), Some(host_name.as_str()));
    // The root holds the program's closure and the mount points the engine adds, nothing else:
    // no shell, no /bin, no /tmp.
    let top = container_prog().components().nth(1).unwrap().as_os_str().to_string_lossy().into_owned();
    for entry in [".", "..", "lib", "lib64", "proc", "dev", "sys", "etc", top.as_str()] {
        assert!(sa.root.contains(entry), "{entry} missing from the root: {:?}", sa.root);
    }
    for absent in ["bin", "sbin", "tmp", "var", "home", "root"] {
        assert!(!sa.root.contains(absent) || top == absent, "{absent} in the root: {:?}", sa.root);
    }

    // 2b: new PID and UTS namespaces: pid 1 and its child 2, its own hostname, the host's kept.
    assert_eq!((sb.pid, sb.child_pid), (1, 2));
    assert_eq!(sb.hostname.as_deref(), Some("new_hostname"));
    assert_eq!(value(&b, "Hostname in the host:"), Some(host_name.as_str()));
    assert_eq!(sb.root, sa.root);
    assert!(sb.time_ms.is_some());

    // 2c: the same, capped (the cap's effect is measured in the next test, from the cgroup).
    assert_eq!((sc.pid, sc.child_pid), (1, 2));
    assert_eq!(sc.hostname.as_deref(), Some("new_hostname"));
    assert!(sc.time_ms.is_some());
    assert_eq!(hostname(), host_name, "the host's hostname never changed");
    e.assert_clean();
}

#[test]
fn cpu_cap_of_half_a_cpu_from_the_cgroup_counters() {
    if skip_unless_root() {
        return;
    }
    let mut e = Engine::new("cap");
    e.ok(&["image", "from-binary", "cprog", container_prog().to_str().unwrap()]);
    let n = e.name("cap");
    // Enough work for far longer than the measurement; stopped afterwards.
    e.ok(&["run", "-d", "--cpus", "0.5", "-e", "CONTAINER_PROG_MILLIONS=100000", "cprog", &n]);
    let cg = Cg::of_engine(&e, &n);
    assert_eq!(cg.cpu_quota(), Some(50_000));
    assert_eq!(cg.cpu_period(), 100_000);
    std::thread::sleep(Duration::from_millis(300));
    let (cpu0, thr0, t0) = (cg.cpu_ns(), cg.nr_throttled(), std::time::Instant::now());
    std::thread::sleep(Duration::from_millis(2000));
    let (cpu1, thr1, wall) = (cg.cpu_ns(), cg.nr_throttled(), t0.elapsed());
    let share = (cpu1 - cpu0) as f64 / wall.as_nanos() as f64;
    // The computation wants a whole CPU; the cgroup lets it have half of one.
    assert!((0.3..=0.56).contains(&share), "CPU share under --cpus 0.5: {share:.3}");
    assert!(thr1 - thr0 >= 15, "throttled in most of the ~20 periods: {} times", thr1 - thr0);
    e.ok(&["stop", "-t", "0", &n]);
    e.ok(&["rmi", "cprog"]);
    e.assert_clean();
}

/// `conductor lab namespaces` prints Task 1's report (checked line by line by conductor-lab's
/// own test of namespace_prog): here, that the CLI runs it and the values mean what they say.
#[test]
fn lab_namespaces_from_the_cli() {
    if skip_unless_root() {
        return;
    }
    let o = output_via_files(std::process::Command::new(bin("conductor")).args(["lab", "namespaces"]), &std::env::temp_dir());
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let get = |label: &str| out.lines().filter_map(|l| l.strip_prefix(label)).map(str::trim).collect::<Vec<_>>();
    let host = hostname();
    assert_eq!(get("Parent Hostname:"), [host.as_str(); 3]);
    assert_eq!(get("Child1 Process PID:"), ["1"]);
    assert_eq!(get("Child1 Hostname:"), ["Child1Hostname"]);
    assert_eq!(get("Child2 Process PID:"), ["2"]);
    assert_eq!(get("Child2 Hostname:"), ["Child1Hostname"]);
    let parent = get("Parent Process PID:");
    assert!(parent.len() == 3 && parent.iter().all(|p| p == &parent[0] && p.parse::<i32>().unwrap() > 2), "{out}");
    assert_eq!(out.lines().filter(|l| *l == "-".repeat(40)).count(), 6, "{out}");
    assert_eq!(hostname(), host);
}

/// from-binary refuses what is not a program, in one line, and leaves no image.
#[test]
fn from_binary_bad_input() {
    if skip_unless_root() {
        return;
    }
    let e = Engine::new("frombin-bad");
    let script = e.dir.join("script.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    for (path, why) in
        [(script.to_str().unwrap(), "not an ELF"), ("/etc", "is a directory"), ("/nonexistent/prog", "No such file or directory")]
    {
        let err = e.fails(&["image", "from-binary", "x", path]);
        assert!(err.contains(why) && err.lines().count() == 1, "{path}: {err}");
    }
    let err = e.fails(&["image", "from-binary", "x", "/bin/ls", "--add", "/nonexistent/extra"]);
    assert!(err.contains("/nonexistent/extra"), "{err}");
    let images = e.ok(&["images"]);
    assert!(!images.lines().any(|l| l.starts_with("x ")), "{images}");
    let leftovers: Vec<_> = std::fs::read_dir(e.dir.join("data/images")).unwrap().flatten().map(|d| d.file_name()).collect();
    assert!(leftovers.iter().all(|n| n == "bb"), "{leftovers:?}");
}

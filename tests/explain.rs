//! `--explain`: the kernel steps of run, exec, addnetwork, peer and stop, in order, on stderr
//! only. Root only; networking inside the sandbox of tests/common/lan.rs.

mod common;

use std::time::Duration;

use common::engine::Engine;
use common::lan::{cannot_run, Lan};
use common::*;

/// The explained steps: the part of each line after "process[pid]: ".
fn steps(stderr: &str) -> Vec<String> {
    stderr.lines().filter_map(|l| l.split_once("]: ").map(|(_, s)| s.to_string())).collect()
}

/// Each pattern (all of its words) matches a step, in this order; the index of each match.
fn in_order(steps: &[String], patterns: &[&str]) -> Vec<usize> {
    let mut at = 0;
    let mut found = Vec::new();
    for p in patterns {
        let words: Vec<&str> = p.split_whitespace().collect();
        let i = steps[at..]
            .iter()
            .position(|s| words.iter().all(|w| s.contains(w)))
            .unwrap_or_else(|| panic!("no step matching {p:?} after step {at}:\n{}", steps[at..].join("\n")));
        found.push(at + i);
        at += i + 1;
    }
    found
}

#[test]
fn run_and_exec_steps_in_order() {
    if skip_unless_root() {
        return;
    }
    let mut e = Engine::new("explain");
    let n = e.name("x");
    let o = e.run(&["--explain", "run", "--cpus", "0.5", "--hostname", "box", "bb", &n, "--", "echo", "hello"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The program's output is untouched; the steps go to stderr.
    assert_eq!(stdout(&o), "hello\n");
    let s = steps(&stderr(&o));
    in_order(
        &s,
        &[
            "mount fstype=overlay lowerdir=",
            "mkdir path=/sys/fs/cgroup/",
            "write cpu.cfs_quota_us value=50000",
            "clone3 flags=CLONE_NEWNS|CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWPID|CLONE_NEWNET",
            "mount source=proc target=/proc fstype=proc flags=MS_NOSUID|MS_NODEV|MS_NOEXEC",
            "mount target=/sys fstype=sysfs flags=MS_RDONLY",
            "pivot_root",
            "umount2 target=. flags=MNT_DETACH",
            "sethostname name=box",
            "unshare flags=CLONE_NEWCGROUP",
            "prctl PR_SET_NO_NEW_PRIVS",
            "capset",
            "seccomp",
            "execve argv=[\"echo\", \"hello\"]",
        ],
    );
    // init joins its cgroup (written by the monitor) before it runs the program.
    let joined = s.iter().position(|l| l.contains("cgroup.procs")).expect("a cgroup.procs write");
    let exec = s.iter().position(|l| l.starts_with("execve")).unwrap();
    assert!(joined < exec);
    // Each line names the process that took the step.
    let err = stderr(&o);
    assert!(err.lines().any(|l| l.starts_with("conductor-mon[") && l.contains("clone3")), "{err}");
    assert!(err.lines().any(|l| l.starts_with("conductor:init[1]: pivot_root")), "{err}");
    e.ok(&["stop", &n]);

    // exec: one setns into all of init's namespaces through its pidfd, then the program.
    let d = e.name("d");
    e.ok(&["run", "-d", "bb", &d, "--", "sleep", "inf"]);
    let o = e.run(&["--explain", "exec", &d, "--", "true"]);
    assert!(o.status.success(), "{}", stderr(&o));
    in_order(
        &steps(&stderr(&o)),
        &[
            "setns pidfd CLONE_NEWNS CLONE_NEWPID CLONE_NEWNET CLONE_NEWUTS CLONE_NEWIPC",
            "write cgroup.procs",
            "execve /bin/true",
        ],
    );
    // Without --explain, nothing.
    let o = e.run(&["exec", &d, "--", "true"]);
    assert_eq!(stderr(&o), "");

    // A detached run returns with its stderr closed: the monitor, which lives on, stops
    // explaining once the container started (else a pipe reader would wait for the container).
    let w = e.name("w");
    let mut c = e.cmd();
    c.args(["--explain", "run", "-d", "bb", &w, "--", "sleep", "inf"]);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(c.output().unwrap()).unwrap());
    let o = rx.recv_timeout(Duration::from_secs(20)).expect("`run -d --explain` with a piped stderr returned");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("execve"), "the container's start is explained before the pipe closes");

    let o = e.run(&["--explain", "stop", "-t", "1", &d]);
    in_order(&steps(&stderr(&o)), &["pidfd_send_signal signal=15", "rmdir path=/sys/fs/cgroup/", "umount2 rootfs"]);
    e.ok(&["stop", "-t", "0", &w]);
    e.assert_clean();
}

#[test]
fn network_steps_in_order() {
    if let Some(why) = cannot_run() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let lan = Lan::new();
    let mut e = Engine::in_netns("explain-net", lan.host.clone());
    let (a, b) = (e.name("a"), e.name("b"));
    for n in [&a, &b] {
        e.ok(&["run", "-d", "bb", n, "--", "sleep", "inf"]);
    }
    let o = e.run(&["--explain", "addnetwork", &a, "-i", "-e", "8080-3000"]);
    assert!(o.status.success(), "{}", stderr(&o));
    in_order(
        &steps(&stderr(&o)),
        &[
            "RTM_NEWLINK kind=veth peer_netns=pid",
            "RTM_NEWADDR address=192.168.1.1/24",
            "RTM_SETLINK set=up",
            "setns target_ns=net",
            "RTM_SETLINK link=lo set=up",
            "RTM_NEWADDR address=192.168.1.2/24",
            "RTM_NEWROUTE dst=0.0.0.0/0 gateway=192.168.1.1",
            "route_localnet value=1",
            // One transaction: the table brought up to date, then the container's elements.
            "nft add table inet conductor",
            "nft add rule inet conductor forward ip saddr @containers drop",
            "nft add element inet conductor containers { 192.168.1.2 }",
            "nft add element inet conductor internet { 192.168.1.2 . \"lan0\" }",
            "nft create element inet conductor ports_addr { tcp . 3000 : 192.168.1.2 }",
            // Forwarding only once the isolation rules are in place.
            "write /proc/sys/net/ipv4/ip_forward value=1",
        ],
    );
    e.ok(&["addnetwork", &b]);
    let o = e.run(&["--explain", "peer", &a, &b]);
    in_order(
        &steps(&stderr(&o)),
        &["nft add element inet conductor peers { 192.168.1.2 . 192.168.2.2, 192.168.2.2 . 192.168.1.2 }"],
    );
    let o = e.run(&["--explain", "stop", "-t", "1", &a]);
    in_order(
        &steps(&stderr(&o)),
        &[
            "pidfd_send_signal",
            "nft delete element inet conductor containers { 192.168.1.2 }",
            "nft delete element inet conductor ports_addr { tcp . 3000 }",
        ],
    );
    e.ok(&["stop", "-t", "1", &b]);
    e.assert_clean();
}

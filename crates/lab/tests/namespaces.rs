//! `namespace_prog` as root, run as a subprocess (it must be single-threaded): every line of
//! its report is checked for its meaning, not only its shape.

use std::process::{Command, Stdio};

use conductor_lab::namespaces::{CHILD1_HOSTNAME, SEPARATOR};

fn host_hostname() -> String {
    nix::unistd::gethostname().unwrap().into_string().unwrap()
}

/// (who, pid, hostname) for each block between separators; panics on any other shape.
fn parse(out: &str) -> Vec<(String, i32, String)> {
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 16, "5 blocks of 2 lines and 6 separators:\n{out}");
    let mut blocks = Vec::new();
    for chunk in lines[1..].chunks(3) {
        assert_eq!(chunk[2], SEPARATOR, "{out}");
        let (who, pid) = chunk[0].split_once(" Process PID: ").unwrap_or_else(|| panic!("pid line {:?}", chunk[0]));
        let host = chunk[1].strip_prefix(&format!("{who} Hostname: ")).unwrap_or_else(|| panic!("hostname line {:?}", chunk[1]));
        blocks.push((who.to_string(), pid.parse().unwrap(), host.to_string()));
    }
    assert_eq!(lines[0], SEPARATOR);
    blocks
}

#[test]
fn namespace_prog_reports_the_seed_output() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping namespace_prog_reports_the_seed_output: needs root (new UTS and PID namespaces, setns)");
        return;
    }
    let host = host_hostname();
    let child = Command::new(env!("CARGO_BIN_EXE_namespace_prog")).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id() as i32;
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{:?}\nstdout:\n{stdout}\nstderr:\n{}", out.status, String::from_utf8_lossy(&out.stderr));

    let blocks = parse(&stdout);
    let who: Vec<&str> = blocks.iter().map(|b| b.0.as_str()).collect();
    assert_eq!(who, ["Parent", "Child1", "Parent", "Child2", "Parent"], "{stdout}");
    for (w, p, h) in blocks.iter().filter(|b| b.0 == "Parent") {
        assert_eq!((*p, h.as_str()), (pid, host.as_str()), "{w}: the parent's pid and hostname never change");
    }
    assert_eq!((blocks[1].1, blocks[1].2.as_str()), (1, CHILD1_HOSTNAME), "child 1: init of a new pid namespace, own hostname");
    assert_eq!((blocks[3].1, blocks[3].2.as_str()), (2, CHILD1_HOSTNAME), "child 2: joined child 1's pid and UTS namespaces");
    assert_eq!(host_hostname(), host, "the host's hostname is untouched");
}

#[test]
fn namespace_prog_explains_each_kernel_step() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping namespace_prog_explains_each_kernel_step: needs root");
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_namespace_prog")).arg("--explain").output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    let order = ["clone3", "sethostname", "pidfd_open", "setns", "fork"];
    let mut at = 0;
    for step in order {
        let found = err[at..].find(&format!("step=\"{step}\"")).unwrap_or_else(|| panic!("no {step} after byte {at}:\n{err}"));
        at += found;
    }
    assert!(err.contains("CLONE_NEWUTS | CLONE_NEWPID"), "{err}");
    assert_eq!(parse(&String::from_utf8(out.stdout).unwrap()).len(), 5, "the report is unchanged by --explain");
}

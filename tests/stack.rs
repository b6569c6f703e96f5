//! The seed's Task 4 end to end, inside the network sandbox (tests/common/lan.rs): once as
//! examples/matrix/service-orchestrator.sh, once as `conductor stack up` of
//! examples/matrix/stack.toml. From the other host, http://10.99.0.1:3000 answers with an
//! increasing count and the external service's host name; the counter service is not reachable
//! from there; everything is gone afterwards. Also: restart policies, `up` converging, `cp` and
//! `inspect --format` (good and bad paths).

mod common;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::engine::Engine;
use common::lan::*;
use common::netcheck::{add_route, assert_network_clean};
use common::*;

macro_rules! need_sandbox {
    () => {
        if let Some(why) = cannot_run() {
            eprintln!("SKIPPED: {why}");
            return;
        }
    };
}

fn matrix_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/matrix")
}

/// The image of the seed's Task 4, built as tests/engine_debian.rs does (the cached rootfs
/// under /var/cache/conductor makes this about 2 s after the first build on a machine).
fn build_image(e: &Engine) {
    e.ok(&["build", "mydebian", "--variant", "minbase", "--include", "procps,iproute2,python3"]);
}

/// The external service's answer from the other host: (count, hostname).
fn ask(lan: &Lan) -> Option<(u64, String)> {
    let body = http_get(&lan.other, HOST_IP, 3000, "/").ok()?;
    let v: serde_json::Value = serde_json::from_str(body.trim()).ok()?;
    Some((v["count"].as_u64()?, v["hostname"].as_str()?.to_string()))
}

/// Counts go up by one per request, and the external service names itself.
fn assert_counts_up(lan: &Lan, hostname: &str) {
    let (first, h) = eventually(20, || ask(lan)).expect("the external service answers from the other host");
    assert_eq!(h, hostname);
    let (second, _) = ask(lan).unwrap();
    assert_eq!(second, first + 1);
}

fn ip_of(e: &Engine, n: &str) -> Ipv4Addr {
    e.ok(&["inspect", "--format", "{{.Network.allocation.container_ip}}", n]).trim().parse().unwrap()
}

/// The counter service is reachable from the host, not from the other host (which routes the
/// container pool to us).
fn assert_counter_private(lan: &Lan, ip: Ipv4Addr) {
    assert!(http_get(&lan.host, ip, 8080, "/health").is_ok_and(|b| b.contains("ok")), "the host reaches the counter");
    add_route(&lan.other, "192.168.0.0/16", HOST_IP);
    assert!(http_get(&lan.other, ip, 8080, "/health").is_err(), "the counter is reachable from the other host");
}

#[test]
fn orchestrator_script() {
    need_sandbox!();
    let lan = Lan::new();
    let mut e = Engine::in_netns("stack-script", lan.host.clone());
    build_image(&e);
    let (c1, c2) = (e.name("c1"), e.name("c2"));
    let mut bash = Command::new("bash");
    bash.arg(matrix_dir().join("service-orchestrator.sh"));
    bash.env("CONDUCTOR", bin("conductor")).env("HOST_IP", HOST_IP.to_string()).env("C1", &c1).env("C2", &c2);
    bash.env("CONDUCTOR_ROOT", e.dir.join("data")).env("CONDUCTOR_RUNROOT", e.dir.join("run"));
    let o = conductor_network::in_netns(&lan.host, || Ok(output_via_files(&mut bash, &e.dir))).unwrap();
    let out = stdout(&o);
    assert!(o.status.success(), "the script failed: {out}\n{}", stderr(&o));
    // Step 8: two answers from the host itself, counting up.
    let counts: Vec<&str> = out.lines().filter(|l| l.starts_with('{')).collect();
    assert_eq!(counts.len(), 2, "{out}");
    assert!(counts[0].contains("\"count\": 1") && counts[1].contains("\"count\": 2"), "{out}");
    assert!(out.contains(&format!("curl http://{HOST_IP}:3000/")), "step 9 tells how: {out}");
    // Step 9, done: from the other host.
    assert_counts_up(&lan, &c1);
    assert_counter_private(&lan, ip_of(&e, &c2));
    e.ok(&["stop", "-t", "1", &c1]);
    e.ok(&["stop", "-t", "1", &c2]);
    assert_network_clean(&e, &lan);
}

/// examples/matrix/stack.toml with a stack name of this test's own (cgroups are machine-wide)
/// and absolute copy sources; extra TOML is appended to service `external`.
fn write_stack(e: &Engine, name: &str, external_extra: &str) -> PathBuf {
    let text = std::fs::read_to_string(matrix_dir().join("stack.toml")).unwrap();
    let dir = matrix_dir();
    let text = text
        .replace("name = \"matrix\"", &format!("name = \"{name}\""))
        .replace("src = \"counter-service\"", &format!("src = \"{}\"", dir.join("counter-service").display()))
        .replace("src = \"external-service\"", &format!("src = \"{}\"", dir.join("external-service").display()))
        + external_extra;
    let p = e.dir.join("stack.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn pid_of(e: &Engine, n: &str) -> i64 {
    e.ok(&["inspect", "--format", "{{.State.Pid}}", n]).trim().parse().unwrap()
}

/// Brings the stack down even when the test fails.
struct Down<'a>(&'a Engine, PathBuf);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = self.0.run(&["stack", "down", self.1.to_str().unwrap()]);
    }
}

/// `stack logs -f`: the services' existing lines, then a line for a request made afterwards
/// (http.server logs each request), each prefixed with its container. Only our child is killed.
fn follow_logs_sees_new_requests(e: &Engine, lan: &Lan, file: &str, external: &str) {
    use std::io::BufRead;
    let mut child = e.cmd().args(["stack", "logs", "-f", file]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let wait_for = |what: &dyn Fn(&str) -> bool| {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while let Ok(l) = rx.recv_timeout(end.saturating_duration_since(std::time::Instant::now())) {
            if what(&l) {
                return true;
            }
        }
        false
    };
    let ok = wait_for(&|l: &str| l.starts_with(external) && l.contains("listening on 8080"))
        && ask(lan).is_some()
        && wait_for(&|l: &str| l.starts_with(external) && l.contains("\"GET / HTTP"));
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "stack logs -f did not show the new request of {external}");
}

#[test]
fn stack_up_converges_and_down_leaves_nothing() {
    need_sandbox!();
    let lan = Lan::new();
    let e = Engine::in_netns("stack-up", lan.host.clone());
    let name = format!("t{}-m", std::process::id());
    let file = write_stack(&e, &name, "");
    let f = file.to_str().unwrap();
    let _down = Down(&e, file.clone());
    let (counter, external) = (format!("{name}-counter"), format!("{name}-external"));
    build_image(&e);
    e.ok(&["stack", "up", f]);
    assert_counts_up(&lan, &external);
    assert_counter_private(&lan, ip_of(&e, &counter));
    let ps = e.ok(&["stack", "ps", f]);
    assert!(ps.lines().filter(|l| l.contains("running")).count() == 2 && ps.contains("3000:8080/tcp"), "{ps}");

    // up again: nothing changes; the same processes run.
    let pids = (pid_of(&e, &counter), pid_of(&e, &external));
    let o = e.run(&["stack", "up", f]);
    assert!(o.status.success() && stderr(&o).matches("unchanged").count() == 2, "{}", stderr(&o));
    assert_eq!((pid_of(&e, &counter), pid_of(&e, &external)), pids);

    // A changed service is recreated, alone, and peered again with the one that stayed.
    write_stack(&e, &name, "env = { GREETING = \"hello\" }\n");
    let o = e.run(&["stack", "up", f]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains(&format!("{external}: recreated")), "{}", stderr(&o));
    assert_eq!(pid_of(&e, &counter), pids.0, "the unchanged counter keeps running");
    assert_ne!(pid_of(&e, &external), pids.1);
    assert_counts_up(&lan, &external);
    let logs = e.ok(&["stack", "logs", f]);
    assert!(logs.lines().any(|l| l.starts_with(&counter) && l.ends_with("| counter-service listening on 8080")), "{logs}");
    follow_logs_sees_new_requests(&e, &lan, f, &external);

    e.ok(&["stack", "down", f]);
    assert_eq!(e.ok(&["stack", "ps", f]).lines().count(), 1, "only the header is left");
    assert_network_clean(&e, &lan);
}

#[test]
fn restart_policies_and_stop_for_good() {
    need_sandbox!();
    let lan = Lan::new();
    let e = Engine::in_netns("stack-restart", lan.host.clone());
    let name = format!("t{}-r", std::process::id());
    // `crash` prints its address (the network is attached again on each run), then fails.
    let text = format!(
        "name = \"{name}\"\n\
         [services.crash]\nimage = \"bb\"\ncommand = [\"sh\", \"-c\", \"ip -4 addr; sleep 0.2; exit 3\"]\n\
         restart = \"on-failure:2\"\n\
         [services.loop]\nimage = \"bb\"\ncommand = [\"sh\", \"-c\", \"sleep 0.2\"]\nrestart = \"always\"\n"
    );
    let file = e.dir.join("restart.toml");
    std::fs::write(&file, text).unwrap();
    let f = file.to_str().unwrap();
    let _down = Down(&e, file.clone());
    e.ok(&["stack", "up", f]);
    let crash = format!("{name}-crash");
    let done = eventually(20, || {
        let v = e.inspect(&crash);
        (v["State"]["RestartCount"] == 2 && v["State"]["ExitCode"] == 3).then_some(v)
    });
    let v = done.expect("crash is restarted twice, then left exited");
    assert_eq!(v["State"]["Status"], "exited");
    let ip = ip_of(&e, &crash).to_string();
    let logs = e.ok(&["logs", &crash]);
    assert_eq!(logs.matches(&format!("inet {ip}/")).count(), 3, "three runs, each with its address: {logs}");
    // `always` keeps coming back, until down stops it for good.
    let lp = format!("{name}-loop");
    assert!(eventually(10, || (e.inspect(&lp)["State"]["RestartCount"].as_u64() >= Some(2)).then_some(())).is_some());
    let t = std::time::Instant::now();
    e.ok(&["stack", "down", f]);
    assert!(t.elapsed() < std::time::Duration::from_secs(8), "down took {:?}", t.elapsed());
    assert_network_clean(&e, &lan);
}

#[test]
fn cp_and_inspect_format() {
    if skip_unless_root() {
        return;
    }
    let mut e = Engine::new("stack-cp");
    let n = e.name("cp");
    e.ok(&["run", "-d", "bb", &n, "--", "sleep", "1000"]);
    let host = e.dir.join("h");
    std::fs::create_dir_all(host.join("svc/sub")).unwrap();
    std::fs::write(host.join("svc/run.sh"), "echo hi\n").unwrap();
    std::fs::write(host.join("svc/sub/f"), "x").unwrap();
    std::process::Command::new("chmod").arg("750").arg(host.join("svc/run.sh")).status().unwrap();
    let svc = host.join("svc");
    e.ok(&["cp", svc.to_str().unwrap(), &format!("{n}:/srv")]);
    assert_eq!(e.ok(&["exec", &n, "--", "stat", "-c", "%a", "/srv/run.sh"]), "750\n");
    assert_eq!(e.ok(&["exec", &n, "--", "cat", "/srv/sub/f"]), "x");
    // Into an existing directory: under the source's name.
    e.ok(&["cp", svc.to_str().unwrap(), &format!("{n}:/tmp")]);
    e.ok(&["exec", &n, "--", "test", "-f", "/tmp/svc/run.sh"]);
    // Out again, mode kept.
    let back = e.dir.join("back");
    e.ok(&["cp", &format!("{n}:/srv"), back.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(back.join("run.sh")).unwrap(), "echo hi\n");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(back.join("run.sh")).unwrap().permissions().mode() & 0o777, 0o750);

    // A symlink in the container pointing at a host directory by its absolute path: the copy
    // resolves it inside the container, where that path does not exist.
    let target = e.dir.join("victim");
    std::fs::create_dir_all(&target).unwrap();
    e.ok(&["exec", &n, "--", "ln", "-s", target.to_str().unwrap(), "/escape"]);
    e.ok(&["exec", &n, "--", "ln", "-s", "../../../../../../..", "/up"]);
    let err = e.fails(&["cp", host.join("svc/run.sh").to_str().unwrap(), &format!("{n}:/escape/pwned")]);
    assert!(err.contains("container directory"), "{err}");
    assert!(!target.join("pwned").exists(), "wrote through the container's symlink onto the host");
    // `..` stops at the container's root: /up/tmp is the container's /tmp.
    e.ok(&["cp", host.join("svc/run.sh").to_str().unwrap(), &format!("{n}:/up/tmp/x.sh")]);
    e.ok(&["exec", &n, "--", "test", "-f", "/tmp/x.sh"]);
    assert!(!Path::new("/tmp/x.sh").exists());

    let err = e.fails(&["cp", "/nonexistent-src", &format!("{n}:/x")]);
    assert!(err.contains("/nonexistent-src") && err.lines().count() == 1, "{err}");
    let err = e.fails(&["cp", svc.to_str().unwrap(), "nosuch:/x"]);
    assert!(err.contains("no such container: nosuch"), "{err}");
    let err = e.fails(&["cp", &format!("{n}:/nope"), back.to_str().unwrap()]);
    assert!(err.contains("/nope"), "{err}");
    e.fails(&["cp", "a", "b"]);

    // inspect --format
    assert_eq!(e.ok(&["inspect", "--format", "{{.Name}} {{.State.Running}}", &n]), format!("{n} true\n"));
    assert_eq!(e.ok(&["inspect", "--format", "{{json .Command}}", &n]), "[\"sleep\",\"1000\"]\n");
    let err = e.fails(&["inspect", "--format", "{{.State.Nope}}", &n]);
    assert!(err.contains("no field .State.Nope"), "{err}");
    let err = e.fails(&["inspect", "--format", "{{.Network.allocation.container_ip}}", &n]);
    assert!(err.contains(".Network is null"), "{err}");
    e.ok(&["stop", "-t", "0", &n]);
    e.assert_clean();
}

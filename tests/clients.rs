//! Real clients drive conductor-runtime in place of runc: podman (through conmon) and containerd
//! (through its io.containerd.runc.v2 shim), both Debian's, each in a throwaway directory of its
//! own. Root only; skipped when a client is not installed. Every fixture is a Drop guard that
//! removes what the client left (processes, mounts, cgroups, runtime state), also on failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::host::*;
use common::image::*;
use common::*;

/// Where conductor-runtime keeps state when not given --root (podman passes none).
const DEFAULT_RUNTIME_ROOT: &str = "/run/conductor-runtime";
/// Upper bound for one client command: a hang fails the test instead of stalling the suite.
const CMD_SECS: u64 = 30;

fn runtime() -> String {
    bin("conductor-runtime").to_string_lossy().into_owned()
}

fn code(o: &Output) -> Option<i32> {
    o.status.code()
}

/// A fresh temp dir for one client test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cnd-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// conductor-runtime `state` of `id` under `root`, or None when it does not exist.
fn runtime_state(root: &Path, id: &str) -> Option<serde_json::Value> {
    let o = Command::new(bin("conductor-runtime")).arg("--root").arg(root).args(["state", id]).output().unwrap();
    o.status.success().then(|| serde_json::from_slice(&o.stdout).unwrap())
}

/// Force-delete the containers under runtime `root` whose bundle lies in `dir`: what a failed
/// test leaves when the client could not clean up.
fn delete_runtime_states_under(root: &Path, dir: &Path) {
    for e in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let id = e.file_name().to_string_lossy().into_owned();
        let Some(st) = runtime_state(root, &id) else { continue };
        if st["bundle"].as_str().is_some_and(|b| Path::new(b).starts_with(dir)) {
            let _ = Command::new(bin("conductor-runtime")).arg("--root").arg(root).args(["delete", "--force", &id]).output();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// podman

/// A podman with its own storage, run root, tmp dir, config and cgroup parent; conmon calls our
/// runtime. Two settings this machine needs: podman asks for RLIMIT_NOFILE and RLIMIT_NPROC
/// above the hard limits, which without CAP_SYS_RESOURCE (absent here) no runtime may raise, so
/// every container gets limits at or below what conmon itself has.
struct Podman {
    dir: PathBuf,
    cgroup_parent: String,
}

impl Podman {
    fn new(name: &str) -> Podman {
        let dir = temp_dir(&format!("podman-{name}"));
        let d = dir.display();
        // lock_type file: locks under --tmpdir, not in the host-wide /dev/shm/libpod_lock.
        // The CNI backend with its config dir here: netavark's would write /etc/containers/networks
        // and /run/containers/networks. Containers run with --network none: no plugin is needed.
        let conf = format!(
            "[engine]\nlock_type = \"file\"\nimage_copy_tmp_dir = \"{d}/tmp\"\n\n\
             [network]\nnetwork_backend = \"cni\"\nnetwork_config_dir = \"{d}/net\"\ncni_plugin_dirs = [\"{d}/cni\"]\n"
        );
        std::fs::write(dir.join("containers.conf"), conf).unwrap();
        let storage = format!("[storage]\ndriver = \"vfs\"\ngraphroot = \"{d}/root\"\nrunroot = \"{d}/runroot\"\n");
        std::fs::write(dir.join("storage.conf"), storage).unwrap();
        for sub in ["tmp", "cni"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let cgroup_parent = format!("/cnd-podman-{name}-{}", std::process::id());
        Podman { dir, cgroup_parent }
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("podman");
        cmd.env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", self.dir.join("storage.conf"))
            .env("TMPDIR", self.dir.join("tmp"))
            .arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("runroot"))
            .arg("--tmpdir")
            .arg(self.dir.join("tmp"))
            .args([
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "file",
                "--storage-driver",
                "vfs",
                "--runtime",
                &runtime(),
            ])
            .args(args);
        run_timed(&mut cmd, &self.dir, CMD_SECS).unwrap_or_else(|| panic!("podman {args:?}: no answer in {CMD_SECS} s"))
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(o.status.success(), "podman {args:?}: {:?}\nstdout: {}\nstderr: {}", o.status, stdout(&o), stderr(&o));
        stdout(&o)
    }

    /// `podman run` with the options every test container gets, then `rest`.
    fn run_ctr(&self, rest: &[&str]) -> Output {
        let mut args = vec!["run", "--network", "none", "--cgroup-parent", &self.cgroup_parent];
        let nproc = format!("nproc={0}:{0}", podman_nproc());
        args.extend(["--ulimit", "nofile=20000:20000", "--ulimit", &nproc]);
        args.extend(rest);
        self.run(&args)
    }

    fn import_busybox(&self) -> &'static str {
        let tar = busybox_tar(&self.dir);
        self.ok(&["import", tar.to_str().unwrap(), "localhost/cnd-busybox:latest"]);
        "localhost/cnd-busybox:latest"
    }

    /// Containers left in the test's cgroup parent (conmon has its own child there).
    fn container_cgroups(&self) -> Vec<PathBuf> {
        let mut v = Vec::new();
        for p in cgroup_paths(&self.cgroup_parent) {
            let children = std::fs::read_dir(&p).into_iter().flatten().flatten();
            v.extend(children.filter(|e| e.file_name().to_string_lossy().starts_with("libpod-")).map(|e| e.path()));
        }
        v
    }

    /// Nothing of the test's containers is left: podman knows none, no conmon or cleanup process
    /// runs, no runtime state, mounts or container cgroups remain.
    fn assert_clean(&self) {
        assert_eq!(self.ok(&["ps", "--all", "--quiet"]).trim(), "", "podman still lists containers");
        let dir = self.dir.to_string_lossy();
        assert!(wait_for(10, || pids_mentioning(&dir).is_empty()), "processes left: {:?}", pids_mentioning(&dir));
        let states: Vec<_> = std::fs::read_dir(DEFAULT_RUNTIME_ROOT)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| runtime_state(Path::new(DEFAULT_RUNTIME_ROOT), &e.file_name().to_string_lossy()))
            .filter(|st| st["bundle"].as_str().is_some_and(|b| b.starts_with(dir.as_ref())))
            .collect();
        assert!(states.is_empty(), "runtime state left: {states:?}");
        assert!(mounts_under(&self.dir).is_empty(), "mounts left: {:?}", mounts_under(&self.dir));
        assert!(self.container_cgroups().is_empty(), "cgroups left: {:?}", self.container_cgroups());
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.run(&["rm", "--all", "--force", "--time", "0"])));
        // conmon and `podman container cleanup` outlive the command that started them.
        stop_processes_mentioning(&self.dir.to_string_lossy(), 10);
        delete_runtime_states_under(Path::new(DEFAULT_RUNTIME_ROOT), &self.dir);
        umount_under(&self.dir);
        remove_cgroup_tree(&self.cgroup_parent);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The RLIMIT_NPROC containers get: podman lowers its own (and so conmon's and our runtime's)
/// to 32768; a container cannot go above what the runtime has.
fn podman_nproc() -> u64 {
    let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NPROC).unwrap();
    hard.min(32768)
}

fn skip_podman() -> bool {
    skip_unless_root() || skip_unless_installed(&["podman", "conmon"])
}

#[test]
fn podman_run_output_and_exit_codes() {
    if skip_podman() {
        return;
    }
    let pm = Podman::new("run");
    let img = pm.import_busybox();

    let o = pm.run_ctr(&["--rm", img, "echo", "hi"]);
    assert_eq!((code(&o), stdout(&o).as_str()), (Some(0), "hi\n"), "stderr: {}", stderr(&o));

    let o = pm.run_ctr(&["--rm", img, "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(code(&o), Some(3), "stderr: {}", stderr(&o));
    assert_eq!(stdout(&o), "out\n");
    assert!(stderr(&o).contains("err"), "{}", stderr(&o));

    // Our runtime's error reaches the user, and podman maps it to 127 as it does runc's.
    let o = pm.run_ctr(&["--rm", img, "/no/such/program"]);
    assert_eq!(code(&o), Some(127), "stderr: {}", stderr(&o));
    assert!(stderr(&o).contains("no such executable"), "{}", stderr(&o));

    // A terminal through conmon's console socket.
    let o = pm.run_ctr(&["--rm", "-t", img, "tty"]);
    assert_eq!(code(&o), Some(0), "stderr: {}", stderr(&o));
    assert!(stdout(&o).starts_with("/dev/pts/"), "{}", stdout(&o));

    pm.assert_clean();
}

#[test]
fn podman_detached_exec_stop_rm() {
    if skip_podman() {
        return;
    }
    let pm = Podman::new("detached");
    let img = pm.import_busybox();
    let o = pm.run_ctr(&["-d", "--name", "top", img, "sleep", "1000"]);
    assert!(o.status.success(), "run -d: {}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    assert_eq!(id.len(), 64, "container id: {id:?}");

    // podman really went through our runtime: it names it, and our state agrees on init's pid.
    let inspect = pm.ok(&["inspect", "--format", "{{.OCIRuntime}} {{.State.Pid}}", "top"]);
    let (rt, pid) = inspect.trim().split_once(' ').unwrap();
    assert_eq!(rt, runtime());
    let st = runtime_state(Path::new(DEFAULT_RUNTIME_ROOT), &id).expect("our runtime has no state for podman's container");
    assert_eq!(st["status"], "running");
    assert_eq!(st["pid"].to_string(), pid);

    // exec, through --process files podman writes.
    assert_eq!(pm.ok(&["exec", "top", "cat", "/proc/1/cmdline"]), "sleep\x001000\x00");
    let ps = pm.ok(&["exec", "top", "ps"]);
    assert!(ps.lines().any(|l| l.split_whitespace().next() == Some("1") && l.ends_with("sleep 1000")), "{ps}");
    let o = pm.run(&["exec", "top", "sh", "-c", "exit 4"]);
    assert_eq!(code(&o), Some(4), "stderr: {}", stderr(&o));
    let env = pm.ok(&["exec", "-e", "FOO=bar", "-w", "/tmp", "-u", "65534", "top", "sh", "-c", "echo $FOO $(pwd) $(id -u)"]);
    assert_eq!(env, "bar /tmp 65534\n");
    let tty = pm.ok(&["exec", "-t", "top", "tty"]);
    assert!(tty.starts_with("/dev/pts/"), "{tty}");

    pm.ok(&["pause", "top"]);
    assert_eq!(pm.ok(&["inspect", "--format", "{{.State.Status}}", "top"]).trim(), "paused");
    assert_eq!(runtime_state(Path::new(DEFAULT_RUNTIME_ROOT), &id).unwrap()["status"], "paused");
    pm.ok(&["unpause", "top"]);
    assert_eq!(pm.ok(&["exec", "top", "echo", "thawed"]), "thawed\n");

    // busybox sleep as pid 1 ignores SIGTERM: stop must fall back to SIGKILL after the timeout.
    let t = Instant::now();
    pm.ok(&["stop", "-t", "1", "top"]);
    let took = t.elapsed();
    assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(10), "stop took {took:?}");
    assert_eq!(pm.ok(&["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "top"]).trim(), "exited 137");
    assert!(wait_for(5, || runtime_state(Path::new(DEFAULT_RUNTIME_ROOT), &id).is_none()), "runtime state kept after stop");

    pm.ok(&["rm", "top"]);
    assert!(cgroup_dirs(&id).is_empty(), "cgroups left: {:?}", cgroup_dirs(&id));
    pm.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// containerd

const IMAGE: &str = "docker.io/library/cnd-busybox:latest";

/// A containerd of our own: config, root, state and sockets in a temp dir, no CRI plugin, the
/// native snapshotter. Tasks run through the runc v2 shim with our runtime as its runc.
struct Containerd {
    dir: PathBuf,
    daemon: std::process::Child,
    ns: String,
    /// Container ids handed out by `id`.
    ids: std::cell::RefCell<Vec<String>>,
    /// /run/containerd did not exist before: the shim's socket dir there is ours to remove.
    made_run_dir: bool,
}

impl Containerd {
    fn start() -> Containerd {
        let dir = temp_dir("containerd");
        let d = dir.display();
        let config = format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{d}/c.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
"#
        );
        std::fs::write(dir.join("config.toml"), config).unwrap();
        let made_run_dir = !Path::new("/run/containerd").exists();
        let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
        let daemon = Command::new("containerd")
            .arg("--config")
            .arg(dir.join("config.toml"))
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let ns = format!("cnd-test-{}", std::process::id());
        let c = Containerd { dir, daemon, ns, ids: Default::default(), made_run_dir };
        let up = wait_for(10, || c.dir.join("c.sock").exists() && c.run(&["version"]).status.success());
        assert!(up, "containerd did not come up: {}", std::fs::read_to_string(c.dir.join("containerd.log")).unwrap_or_default());
        c
    }

    /// A unique container id (remembered for cleanup).
    fn id(&self, name: &str) -> String {
        let id = format!("cnd{}-{name}", std::process::id());
        self.ids.borrow_mut().push(id.clone());
        id
    }

    /// The socket a task's shim listens on: containerd 1.6 puts it in /run/containerd/s whatever
    /// its state dir, named by the sha256 of "<address>/<namespace>/<id>". A killed shim leaves it.
    fn shim_socket(&self, id: &str) -> PathBuf {
        let key = format!("{}/{}/{id}", self.socket(), self.ns);
        Path::new("/run/containerd/s").join(sha256_hex(key.as_bytes()))
    }

    fn runc_root(&self) -> PathBuf {
        self.dir.join("runc-root")
    }

    /// Where our runtime keeps the namespace's containers (the shim passes --root runc-root/ns).
    fn runtime_root(&self) -> PathBuf {
        self.runc_root().join(&self.ns)
    }

    /// ctr's global options: our daemon and namespace.
    fn global_args(&self) -> Vec<String> {
        vec!["--address".into(), self.socket(), "--namespace".into(), self.ns.clone()]
    }

    /// `ctr run` options: our runtime as the shim's runc, its state and ctr's fifos in our dir.
    fn run_args(&self) -> Vec<String> {
        let (root, fifos) = (self.runc_root(), self.dir.join("fifo"));
        let mut v: Vec<String> = ["run", "--snapshotter", "native", "--runc-binary", &runtime()].map(String::from).to_vec();
        v.extend([
            "--runc-root".into(),
            root.to_string_lossy().into_owned(),
            "--fifo-dir".into(),
            fifos.to_string_lossy().into_owned(),
        ]);
        v
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("ctr");
        cmd.args(self.global_args()).args(args);
        run_timed(&mut cmd, &self.dir, CMD_SECS).unwrap_or_else(|| panic!("ctr {args:?}: no answer in {CMD_SECS} s"))
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(o.status.success(), "ctr {args:?}: {:?}\nstdout: {}\nstderr: {}", o.status, stdout(&o), stderr(&o));
        stdout(&o)
    }

    /// `ctr run` with our runtime as the shim's runc, then `rest`.
    fn run_ctr(&self, rest: &[&str]) -> Output {
        let run_args = self.run_args();
        let mut args: Vec<&str> = run_args.iter().map(String::as_str).collect();
        args.extend(rest);
        self.run(&args)
    }

    fn exec(&self, id: &str, exec_id: &str, cmd: &[&str]) -> Output {
        let fifos = self.dir.join("fifo");
        let mut args = vec!["task", "exec", "--fifo-dir", fifos.to_str().unwrap(), "--exec-id", exec_id, id];
        args.extend(cmd);
        self.run(&args)
    }

    /// (pid, status) of a task as `ctr task ls` shows it.
    fn task(&self, id: &str) -> Option<(String, String)> {
        let ls = self.ok(&["task", "ls"]);
        ls.lines().find_map(|l| {
            let f: Vec<_> = l.split_whitespace().collect();
            (f.first() == Some(&id)).then(|| (f[1].to_string(), f[2].to_string()))
        })
    }

    fn import_busybox(&self) {
        let archive = busybox_oci_archive(&self.dir, IMAGE);
        self.ok(&["images", "import", "--snapshotter", "native", archive.to_str().unwrap()]);
    }

    fn assert_clean(&self, ids: &[&str]) {
        assert_eq!(self.ok(&["containers", "ls", "--quiet"]).trim(), "", "containerd still lists containers");
        let left: Vec<_> =
            std::fs::read_dir(self.runtime_root()).into_iter().flatten().flatten().map(|e| e.file_name()).collect();
        assert!(left.is_empty(), "runtime state left: {left:?}");
        assert!(wait_for(10, || pids_mentioning(&self.socket()).is_empty()), "shims left: {:?}", pids_mentioning(&self.socket()));
        assert!(mounts_under(&self.dir).is_empty(), "mounts left: {:?}", mounts_under(&self.dir));
        for id in ids {
            assert!(cgroup_dirs(id).is_empty(), "cgroups left for {id}: {:?}", cgroup_dirs(id));
        }
    }

    fn socket(&self) -> String {
        self.dir.join("c.sock").to_string_lossy().into_owned()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        delete_runtime_states_under(&self.runtime_root(), Path::new("/"));
        let pid = nix::unistd::Pid::from_raw(self.daemon.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        if !wait_for(5, || self.daemon.try_wait().is_ok_and(|s| s.is_some())) {
            let _ = self.daemon.kill();
            let _ = self.daemon.wait();
        }
        // Shims outlive containerd by design; theirs name our socket.
        stop_processes_mentioning(&self.socket(), 1);
        for id in self.ids.borrow().iter() {
            let _ = std::fs::remove_file(self.shim_socket(id));
        }
        umount_under(&self.dir);
        // ctr run puts a container in cgroup /<namespace>/<id>; the namespace's stays behind.
        remove_cgroup_tree(&self.ns);
        if self.made_run_dir {
            let _ = std::fs::remove_dir(Path::new("/run/containerd/s"));
            let _ = std::fs::remove_dir(Path::new("/run/containerd"));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn containerd_runs_tasks_through_the_shim() {
    if skip_unless_root() || skip_unless_installed(&["containerd", "ctr", "containerd-shim-runc-v2"]) {
        return;
    }
    let cd = Containerd::start();
    cd.import_busybox();
    let (fg, fail, bg) = (cd.id("fg"), cd.id("fail"), cd.id("bg"));

    let o = cd.run_ctr(&["--rm", IMAGE, &fg, "echo", "hi"]);
    assert_eq!((code(&o), stdout(&o).as_str()), (Some(0), "hi\n"), "stderr: {}", stderr(&o));
    let o = cd.run_ctr(&["--rm", IMAGE, &fg, "sh", "-c", "exit 3"]);
    assert_eq!(code(&o), Some(3), "stderr: {}", stderr(&o));

    // A terminal: the shim hands us its console socket. ctr wants a terminal of its own too,
    // so it runs under script(1).
    let tty = cd.id("tty");
    let ctr_cmd = format!("ctr {} {} -t --rm {IMAGE} {tty} tty", cd.global_args().join(" "), cd.run_args().join(" "));
    let o = run_timed(Command::new("script").args(["-qec", &ctr_cmd, "/dev/null"]), &cd.dir, CMD_SECS).expect("ctr run -t hung");
    assert!(o.status.success() && stdout(&o).contains("/dev/pts/"), "{:?} {} {}", o.status, stdout(&o), stderr(&o));

    // The shim reads our error from `--log log.json --log-format json`, not from stderr.
    let o = cd.run_ctr(&["--rm", IMAGE, &fail, "/no/such/program"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("OCI runtime create failed") && stderr(&o).contains("no such executable"), "{}", stderr(&o));
    let _ = cd.run(&["containers", "rm", &fail]);

    let o = cd.run_ctr(&["-d", IMAGE, &bg, "sleep", "1000"]);
    assert!(o.status.success(), "run -d: {}", stderr(&o));
    let (task_pid, status) = cd.task(&bg).expect("task listed");
    assert_eq!(status, "RUNNING");
    let st = runtime_state(&cd.runtime_root(), &bg).expect("our runtime has no state for the task");
    assert_eq!((st["status"].as_str(), st["pid"].to_string()), (Some("running"), task_pid.clone()));

    let o = cd.exec(&bg, "e1", &["cat", "/proc/1/cmdline"]);
    assert_eq!((code(&o), stdout(&o).as_str()), (Some(0), "sleep\x001000\x00"), "stderr: {}", stderr(&o));
    let o = cd.exec(&bg, "e2", &["sh", "-c", "exit 5"]);
    assert_eq!(code(&o), Some(5), "stderr: {}", stderr(&o));
    let o = cd.exec(&bg, "e3", &["/no/such/program"]);
    assert!(!o.status.success() && stderr(&o).contains("no such executable"), "{}", stderr(&o));
    let ps = cd.ok(&["task", "ps", &bg]);
    assert!(ps.lines().any(|l| l.split_whitespace().next() == Some(task_pid.as_str())), "{ps}");

    cd.ok(&["task", "pause", &bg]);
    assert_eq!(cd.task(&bg).unwrap().1, "PAUSED");
    assert_eq!(runtime_state(&cd.runtime_root(), &bg).unwrap()["status"], "paused");
    cd.ok(&["task", "resume", &bg]);
    assert_eq!(cd.task(&bg).unwrap().1, "RUNNING");

    // SIGTERM is ignored by sleep as pid 1; SIGKILL is not.
    cd.ok(&["task", "kill", &bg]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(cd.task(&bg).unwrap().1, "RUNNING");
    cd.ok(&["task", "kill", "--signal", "SIGKILL", &bg]);
    assert!(wait_for(5, || cd.task(&bg).is_some_and(|t| t.1 == "STOPPED")), "task did not stop");
    cd.ok(&["task", "delete", &bg]);
    assert!(runtime_state(&cd.runtime_root(), &bg).is_none(), "runtime state kept after task delete");
    cd.ok(&["containers", "rm", &bg]);

    // Without a pid namespace of its own, init's children outlive it: when init exits the shim
    // kills them with `kill --all` on the stopped container.
    let shared = cd.id("sharedpid");
    let token = format!("{}7", std::process::id());
    let pidns = format!("pid:/proc/{}/ns/pid", std::process::id());
    let script = format!("sleep {token} & sleep 0.2");
    let o = cd.run_ctr(&["-d", "--with-ns", &pidns, IMAGE, &shared, "sh", "-c", &script]);
    assert!(o.status.success(), "run -d: {}", stderr(&o));
    assert!(wait_for(5, || cd.task(&shared).is_some_and(|t| t.1 == "STOPPED")), "init did not exit");
    let orphan = format!("sleep\0{token}\0");
    assert!(wait_for(5, || pids_mentioning(&orphan).is_empty()), "init's child survived: {:?}", pids_mentioning(&orphan));
    cd.ok(&["task", "delete", &shared]);
    cd.ok(&["containers", "rm", &shared]);

    cd.assert_clean(&[&fg, &fail, &bg, &shared, &tty]);
}

// ---------------------------------------------------------------------------------------------
// The log contract both shims rely on

/// containerd's shim decodes `--log` as a stream of JSON objects and reports the last
/// {"level":"error"} msg; a line that is not JSON would hide the error.
#[test]
fn json_log_lines_carry_the_error() {
    let sb = Sandbox::new("jsonlog");
    let log = sb.dir.join("log.json");
    let e = sb.fails(&["--log", log.to_str().unwrap(), "--log-format", "json", "--systemd-cgroup", "delete", "no-such-ctr"]);
    assert!(e.contains("does not exist"), "{e}");
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|err| panic!("not JSON ({err}): {l:?}"))).collect();
    for l in &lines {
        let keys: Vec<_> = l.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["level", "msg", "time"], "{l}");
        let time = l["time"].as_str().unwrap();
        assert!(time.ends_with('Z') && time.contains('T'), "not RFC 3339: {time}");
    }
    let last = lines.last().expect("an error line");
    assert_eq!(last["level"], "error");
    assert!(last["msg"].as_str().unwrap().contains("container \"no-such-ctr\" does not exist"), "{last}");
    // The warning for --systemd-cgroup is a JSON line too, at level "warning" as logrus names it.
    assert!(lines.iter().any(|l| l["level"] == "warning"), "{text}");
}

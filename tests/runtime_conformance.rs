//! conductor-runtime conformance: every Linux field of config.json that runc honours is applied,
//! as seen from inside the container (busybox applets report what they see). Root only; each
//! test in its own sandbox, asserting nothing is left behind.
//!
//! Where the kernel decides what the container sees (capabilities after execve, mount propagation
//! of host mounts, /proc/kcore), the expectation says why, so that a failure points at the runtime
//! and not at the host.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::*;
use serde_json::{json, Value};

/// Lines `key=value` printed by a container script, as a lookup.
fn kv(out: &str, key: &str) -> String {
    let prefix = format!("{key}=");
    out.lines().find_map(|l| l.strip_prefix(prefix.as_str())).unwrap_or_else(|| panic!("no {key}= in output:\n{out}")).to_string()
}

/// A field of /proc/self/status text ("CapEff" -> "0000000000000000").
fn status_field(status: &str, name: &str) -> String {
    let prefix = format!("{name}:");
    status
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {name} in status:\n{status}"))
        .trim()
        .to_string()
}

/// The kernel's mask of capability names (those used here, in kernel order: CAP_CHOWN = 0).
fn cap_mask(names: &[&str]) -> u64 {
    let all = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_DAC_READ_SEARCH",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETPCAP",
        "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE",
    ];
    names.iter().fold(0, |m, n| m | 1 << all.iter().position(|a| a == n).unwrap_or_else(|| panic!("{n}")))
}

fn host_ns(pid: &str, ns: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap().to_string_lossy().into_owned()
}

const NS_SCRIPT: &str =
    "for n in pid net ipc uts mnt cgroup user; do echo \"$n=$(readlink /proc/self/ns/$n)\"; done; echo pid1=$$";

#[test]
fn namespaces_new_and_shared() {
    if skip_unless_root() {
        return;
    }
    let mut sb = Sandbox::new("ns");
    let b = sb.bundle("b", &config(&["true"]));
    let out = run_in_ok(&mut sb, &b, &sh(&format!("{NS_SCRIPT}; echo ---; cat /proc/net/dev; echo ---; cat /proc/self/cgroup")));
    for ns in ["pid", "net", "ipc", "uts", "mnt", "cgroup"] {
        assert_ne!(kv(&out, ns), host_ns("self", ns), "{ns} namespace is the host's");
    }
    assert_eq!(kv(&out, "user"), host_ns("self", "user"), "no user namespace was asked for");
    assert_eq!(kv(&out, "pid1"), "1");
    let sections: Vec<&str> = out.split("---\n").collect();
    let ifaces: Vec<&str> = sections[1].lines().filter_map(|l| l.split_once(':')).map(|(i, _)| i.trim()).collect();
    assert_eq!(ifaces, ["lo"], "{}", sections[1]);
    for l in sections[2].lines() {
        assert!(l.ends_with(":/"), "cgroup namespace root is not /: {l}\n{}", sections[2]);
    }

    // Only a mount namespace: everything else is the host's.
    let mut cfg = sh(NS_SCRIPT);
    cfg["linux"]["namespaces"] = json!([{"type": "mount"}]);
    cfg.as_object_mut().unwrap().remove("hostname");
    let out = run_in_ok(&mut sb, &b, &cfg);
    for ns in ["pid", "net", "ipc", "uts", "cgroup"] {
        assert_eq!(kv(&out, ns), host_ns("self", ns), "{ns} namespace should be shared");
    }
    assert_ne!(kv(&out, "mnt"), host_ns("self", "mnt"));
    assert_ne!(kv(&out, "pid1"), "1");
    sb.assert_clean();
}

#[test]
fn user_namespace_maps_ids() {
    if skip_unless_root() {
        return;
    }
    let mut sb = Sandbox::new("userns");
    let data = sb.dir.join("data");
    std::fs::create_dir(&data).unwrap();
    std::os::unix::fs::chown(&data, Some(100_000), Some(100_000)).unwrap();
    let mut cfg = sh("cat /proc/self/uid_map /proc/self/gid_map; id; touch /data/made; stat -c 'busybox=%u:%g' /bin/busybox; echo user=$(readlink /proc/self/ns/user)");
    let ns = cfg["linux"]["namespaces"].as_array_mut().unwrap();
    ns.push(json!({"type": "user"}));
    cfg["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    cfg["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    cfg["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/data", "type": "bind", "source": data, "options": ["bind"]}));
    // Container root cannot create mount points in a rootfs owned by (unmapped) host root.
    let b = sb.bundle("u", &cfg);
    std::fs::create_dir(b.join("rootfs/data")).unwrap();
    let out = run_in_ok(&mut sb, &b, &cfg);
    let maps: Vec<Vec<&str>> = out.lines().take(2).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(maps, [["0", "100000", "65536"], ["0", "100000", "65536"]], "{out}");
    assert!(out.contains("uid=0(root) gid=0(root)"), "{out}");
    assert_ne!(kv(&out, "user"), host_ns("self", "user"));
    // Host root is unmapped inside: it shows as the overflow id.
    assert_eq!(kv(&out, "busybox"), "65534:65534");
    let md = std::fs::metadata(data.join("made")).unwrap();
    assert_eq!((md.uid(), md.gid()), (100_000, 100_000), "file made by container root has the mapped host ids");
    sb.assert_clean();
}

#[test]
fn join_existing_network_namespace() {
    if skip_unless_root() {
        return;
    }
    let mut sb = Sandbox::new("join");
    let a = sb.id("a");
    let mut cfg = config(&["sleep", "1000"]);
    // A marker that lives in the network namespace.
    cfg["linux"]["sysctl"] = json!({"net.ipv4.ip_default_ttl": "77"});
    let ba = sb.bundle("a", &cfg);
    sb.ok(&["run", "--detach", "--bundle", ba.to_str().unwrap(), &a]);
    let pid = sb.state(&a)["pid"].as_i64().unwrap().to_string();

    let mut cfg = sh("echo net=$(readlink /proc/self/ns/net); echo ttl=$(cat /proc/sys/net/ipv4/ip_default_ttl); echo ipc=$(readlink /proc/self/ns/ipc)");
    for ns in cfg["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "network" {
            ns["path"] = json!(format!("/proc/{pid}/ns/net"));
        }
    }
    let out = run_ok(&mut sb, &cfg);
    assert_eq!(kv(&out, "net"), host_ns(&pid, "net"));
    assert_eq!(kv(&out, "ttl"), "77");
    assert_ne!(kv(&out, "ipc"), host_ns(&pid, "ipc"), "only the network namespace is joined");
    sb.ok(&["delete", "--force", &a]);
    sb.assert_clean();
}

#[test]
fn hostname_and_domainname() {
    if skip_unless_root() {
        return;
    }
    let mut sb = Sandbox::new("uts");
    let mut cfg = sh("echo host=$(hostname); echo domain=$(cat /proc/sys/kernel/domainname)");
    cfg["hostname"] = json!("box1");
    cfg["domainname"] = json!("example.test");
    let out = run_ok(&mut sb, &cfg);
    assert_eq!(kv(&out, "host"), "box1");
    assert_eq!(kv(&out, "domain"), "example.test");
    sb.assert_clean();
}

#[test]
fn root_readonly_and_paths() {
    if skip_unless_root() {
        return;
    }
    let mut sb = Sandbox::new("root");
    let mut cfg = sh("touch /x 2>&1; echo rc=$?; touch /tmp/y && echo tmp=ok");
    cfg["root"]["readonly"] = json!(true);
    cfg["mounts"].as_array_mut().unwrap().push(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}));
    let out = run_ok(&mut sb, &cfg);
    assert!(out.contains("Read-only file system"), "{out}");
    assert_eq!(kv(&out, "rc"), "1");
    assert_eq!(kv(&out, "tmp"), "ok", "mounts on a read-only root stay writable");

    // A relative root.path is relative to the bundle; an absolute one is taken as is.
    let b = sb.dir.join("relbundle");
    busybox_rootfs(&b.join("myroot"));
    std::fs::create_dir_all(b.join("sub")).unwrap();
    std::fs::write(b.join("myroot/marker"), "rel").unwrap();
    let mut cfg = sh("echo marker=$(cat /marker)");
    cfg["root"]["path"] = json!("./sub/../myroot");
    assert_eq!(kv(&run_in_ok(&mut sb, &b, &cfg), "marker"), "rel");
    let elsewhere = sb.dir.join("absbundle");
    std::fs::create_dir(&elsewhere).unwrap();
    cfg["root"]["path"] = json!(b.join("myroot"));
    assert_eq!(kv(&run_in_ok(&mut sb, &elsewhere, &cfg), "marker"), "rel");
    sb.assert_clean();
}

#[test]
fn mounts_types_and_flags() {
    if skip_unless_root() {
        return;
    }
    let mut sb = Sandbox::new("mounts");
    let host = sb.dir.join("hostdir");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("file"), "from host").unwrap();
    std::fs::copy("/bin/busybox", host.join("bb")).unwrap();
    let hostfile = sb.dir.join("hostfile");
    std::fs::write(&hostfile, "single file").unwrap();
    let b = sb.dir.join("m");
    let rootfs = b.join("rootfs");
    busybox_rootfs(&rootfs);
    std::fs::create_dir_all(rootfs.join("src/sub")).unwrap();

    let script = r#"cat /proc/self/mountinfo; echo ---
        echo tmpmode=$(stat -c %a /tmp)
        echo shmmode=$(stat -c %a /dev/shm)
        touch /ro/new 2>&1; echo rowrite=$?
        echo rofile=$(cat /ro/file)
        /ro/bb true 2>&1; echo noexec=$?
        echo cgroups=$(ls /sys/fs/cgroup | tr '\n' ,)
        echo single=$(cat /etc/single)
        touch /rb/x 2>&1; echo rbwrite=$?
        touch /rb/sub/x && echo rbsub=writable"#;
    let mut cfg = sh(script);
    let mounts = cfg["mounts"].as_array_mut().unwrap();
    mounts.extend([
        json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "size=1m", "mode=1777"]}),
        json!({"destination": "/ro", "type": "bind", "source": host, "options": ["bind", "ro", "nosuid", "nodev", "noexec"]}),
        json!({"destination": "/etc/single", "type": "bind", "source": hostfile, "options": ["bind", "ro"]}),
        // A mount inside the rootfs, then a recursive and a plain bind of its parent.
        json!({"destination": "/src/sub", "type": "tmpfs", "source": "tmpfs", "options": ["size=64k"]}),
        json!({"destination": "/rb", "source": rootfs.join("src"), "options": ["rbind", "ro"]}),
        json!({"destination": "/nb", "source": rootfs.join("src"), "options": ["bind"]}),
    ]);
    let out = run_in_ok(&mut sb, &b, &cfg);
    let (info, rest) = out.split_once("---\n").unwrap();
    let at = |p: &str| mount_at(info, p).unwrap_or_else(|| panic!("no mount at {p}:\n{info}"));

    let proc = at("/proc");
    assert_eq!(proc.fstype, "proc");
    let sys = at("/sys");
    assert_eq!(sys.fstype, "sysfs");
    assert!(sys.has("ro") && sys.has("nosuid") && sys.has("nodev") && sys.has("noexec"), "{sys:?}");
    let dev = at("/dev");
    assert_eq!(dev.fstype, "tmpfs");
    assert!(dev.has("nosuid") && dev.super_has("mode=755"), "{dev:?}");
    let pts = at("/dev/pts");
    assert_eq!(pts.fstype, "devpts");
    assert!(pts.super_has("gid=5") && pts.super_has("mode=620") && pts.super_has("ptmxmode=666"), "{pts:?}");
    assert_eq!(at("/dev/mqueue").fstype, "mqueue");
    let shm = at("/dev/shm");
    assert!(shm.has("nodev") && shm.has("noexec") && shm.super_has("size=65536k"), "{shm:?}");
    assert_eq!(kv(rest, "shmmode"), "1777");
    let cg = at("/sys/fs/cgroup");
    assert!(cg.has("ro"), "{cg:?}");
    let cgroups = kv(rest, "cgroups");
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        // Pure v2: one cgroup2 mount of the container's own cgroup, with its controllers' files.
        assert_eq!(cg.fstype, "cgroup2", "{cg:?}");
        for f in ["cgroup.controllers", "cpu.max", "memory.max", "pids.max"] {
            assert!(cgroups.split(',').any(|x| x == f), "{f} missing from /sys/fs/cgroup: {cgroups}");
        }
    } else {
        for c in ["cpu", "memory", "pids", "devices"] {
            assert!(cgroups.split(',').any(|x| x == c), "{c} missing from /sys/fs/cgroup: {cgroups}");
        }
        let mem = at("/sys/fs/cgroup/memory");
        assert_eq!(mem.fstype, "cgroup");
        assert!(mem.super_has("memory") && mem.has("ro"), "{mem:?}");
    }

    let tmp = at("/tmp");
    assert_eq!(tmp.fstype, "tmpfs");
    assert!(tmp.has("nosuid") && tmp.has("nodev") && !tmp.has("noexec"), "{tmp:?}");
    assert!(tmp.super_has("size=1024k"), "{tmp:?}");
    assert_eq!(kv(rest, "tmpmode"), "1777");

    let ro = at("/ro");
    assert!(ro.has("ro") && ro.has("nosuid") && ro.has("nodev") && ro.has("noexec"), "{ro:?}");
    assert_eq!(kv(rest, "rowrite"), "1");
    assert!(rest.lines().any(|l| l.contains("/ro/new") && l.contains("Read-only file system")), "{rest}");
    assert_eq!(kv(rest, "rofile"), "from host");
    assert_eq!(kv(rest, "noexec"), "126", "exec on a noexec mount: {rest}");
    assert!(at("/etc/single").has("ro"));
    assert_eq!(kv(rest, "single"), "single file");

    assert!(at("/rb").has("ro"));
    assert_eq!(kv(rest, "rbwrite"), "1");
    assert_eq!(at("/rb/sub").fstype, "tmpfs", "rbind takes submounts along");
    assert_eq!(kv(rest, "rbsub"), "writable", "ro on an rbind applies to its top mount only (as runc)");
    assert!(mount_at(info, "/nb").is_some());
    assert!(mount_at(info, "/nb/sub").is_none(), "a plain bind leaves submounts behind");
    sb.assert_clean();
}

#[test]
fn mount_propagation_options() {
    if skip_unless_root() {
        return;
    }
    let mut sb = Sandbox::new("prop");
    let b = sb.dir.join("p");
    let rootfs = b.join("rootfs");
    busybox_rootfs(&rootfs);
    let src = rootfs.join("shared");
    let mut cfg = sh("cat /proc/self/mountinfo");
    cfg["mounts"].as_array_mut().unwrap().extend([
        json!({"destination": "/shared", "type": "tmpfs", "source": "tmpfs", "options": ["shared"]}),
        json!({"destination": "/peer", "type": "bind", "source": src, "options": ["bind"]}),
        json!({"destination": "/slave", "type": "bind", "source": src, "options": ["bind", "slave"]}),
        json!({"destination": "/private", "type": "bind", "source": src, "options": ["bind", "rprivate"]}),
        json!({"destination": "/unbindable", "type": "bind", "source": src, "options": ["bind", "unbindable"]}),
    ]);
    let info = run_in_ok(&mut sb, &b, &cfg);
    let at = |p: &str| mount_at(&info, p).unwrap_or_else(|| panic!("no mount at {p}:\n{info}"));
    let group = at("/shared").tagged("shared:").unwrap_or_else(|| panic!("/shared not shared:\n{info}")).to_string();
    assert_eq!(at("/peer").tagged("shared:"), Some(group.as_str()), "a bind of a shared mount is its peer");
    let slave = at("/slave");
    assert_eq!(slave.tagged("master:").map(|m| &m[7..]), Some(&group[7..]), "{slave:?}");
    assert!(slave.tagged("shared:").is_none(), "{slave:?}");
    assert!(at("/private").optional.is_empty(), "{:?}", at("/private"));
    assert_eq!(at("/unbindable").optional, ["unbindable"]);
    sb.assert_clean();
}

#[test]
fn rootfs_propagation() {
    if skip_unless_root() {
        return;
    }
    let mut sb = Sandbox::new("rootprop");
    let b = sb.bundle("b", &config(&["true"]));
    // The host's mounts may be shared or private: a slave shows a master only in the first case.
    for prop in ["shared", "rshared", "private", "rprivate", "slave", "rslave", "unbindable", "runbindable"] {
        let mut cfg = sh("cat /proc/self/mountinfo");
        cfg["linux"]["rootfsPropagation"] = json!(prop);
        let o = run_in(&mut sb, &b, &cfg);
        assert!(o.status.success(), "rootfsPropagation {prop}: {}", stderr(&o));
        let root = mount_at(&stdout(&o), "/").unwrap();
        let ok = match prop.trim_start_matches('r') {
            "shared" => root.tagged("shared:").is_some(),
            "private" => root.optional.is_empty(),
            "slave" => root.tagged("shared:").is_none() && root.tagged("unbindable").is_none(),
            _ => root.optional == ["unbindable"],
        };
        assert!(ok, "rootfsPropagation {prop}: {root:?}");
    }
    let mut cfg = sh("true");
    cfg["linux"]["rootfsPropagation"] = json!("sideways");
    let e = stderr(&run_in(&mut sb, &b, &cfg));
    assert!(e.contains("linux.rootfsPropagation"), "{e}");
    sb.assert_clean();
}

#[test]
fn default_devices_and_links() {
    if skip_unless_root() {
        return;
    }
    let mut sb = Sandbox::new("dev");
    let script = r#"for d in null zero full random urandom tty; do stat -c '%n=%F %t,%T %a %u:%g' /dev/$d; done
        for l in fd stdin stdout stderr ptmx core; do echo "/dev/$l=$(readlink /dev/$l)"; done
        echo hi > /dev/null && echo nullwrite=ok
        echo zero=$(head -c 4 /dev/zero | od -An -tx1 | tr -d ' ')
        echo list=$(ls /dev | tr '\n' ,)"#;
    let out = run_ok(&mut sb, &sh(script));
    for (d, maj, min) in [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)] {
        assert_eq!(kv(&out, &format!("/dev/{d}")), format!("character special file {maj:x},{min:x} 666 0:0"));
    }
    for (l, t) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        assert_eq!(kv(&out, &format!("/dev/{l}")), t);
    }
    // As runc: /dev/core only where the kernel has /proc/kcore.
    let core = if Path::new("/proc/kcore").exists() { "/proc/kcore" } else { "" };
    assert_eq!(kv(&out, "/dev/core"), core);
    assert_eq!(kv(&out, "nullwrite"), "ok");
    assert_eq!(kv(&out, "zero"), "00000000");
    let list = kv(&out, "list");
    assert!(!list.split(',').any(|d| d == "vda" || d == "kmsg"), "host devices leaked into /dev: {list}");
    sb.assert_clean();
}

#[test]
fn linux_devices() {
    if skip_unless_root() {
        return;
    }
    let mut sb = Sandbox::new("devices");
    let script = r#"stat -c '%n=%F %t,%T %a %u:%g' /dev/mynull /dev/sub/myzero /dev/myfifo
        echo x > /dev/sub/myzero && echo myzero=writable
        echo zero=$(head -c 2 /dev/sub/myzero | od -An -tx1 | tr -d ' ')"#;
    let mut cfg = sh(script);
    cfg["linux"]["devices"] = json!([
        {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 1000, "gid": 1001},
        {"path": "/dev/sub/myzero", "type": "c", "major": 1, "minor": 5, "fileMode": 0o604},
        {"path": "/dev/myfifo", "type": "p", "major": 0, "minor": 0, "fileMode": 0o600, "uid": 7, "gid": 8}
    ]);
    let out = run_ok(&mut sb, &cfg);
    assert_eq!(kv(&out, "/dev/mynull"), "character special file 1,3 640 1000:1001");
    assert_eq!(kv(&out, "/dev/sub/myzero"), "character special file 1,5 604 0:0");
    assert_eq!(kv(&out, "/dev/myfifo"), "fifo 0,0 600 7:8");
    assert_eq!(kv(&out, "myzero"), "writable", "the device cgroup allows linux.devices");
    assert_eq!(kv(&out, "zero"), "0000");
    sb.assert_clean();
}

#[test]
fn masked_and_readonly_paths() {
    if skip_unless_root() {
        return;
    }
    let mut sb = Sandbox::new("mask");
    let b = sb.dir.join("b");
    busybox_rootfs(&b.join("rootfs"));
    std::fs::create_dir_all(b.join("rootfs/secret")).unwrap();
    std::fs::write(b.join("rootfs/secret/key"), "hidden").unwrap();
    std::fs::write(b.join("rootfs/etc/token"), "hidden").unwrap();
    let script = r#"cat /proc/self/mountinfo; echo ---
        echo timers=$(wc -c < /proc/timer_list)
        echo keys=$(wc -c < /proc/keys)
        echo secret=$(ls -A /secret | tr '\n' ,)
        touch /secret/x 2>/dev/null; echo secretwrite=$?
        echo token=$(cat /etc/token)
        echo 1 > /proc/sys/kernel/shm_rmid_forced; echo syswrite=$?
        echo 1 > /proc/sysrq-trigger; echo sysrq=$?
        echo ostype=$(cat /proc/sys/kernel/ostype)"#;
    let mut cfg = sh(&format!("exec 2>&1; {script}"));
    let masked = cfg["linux"]["maskedPaths"].as_array_mut().unwrap();
    masked.extend([json!("/secret"), json!("/etc/token"), json!("/does/not/exist")]);
    let out = run_in_ok(&mut sb, &b, &cfg);
    let (info, rest) = out.split_once("---\n").unwrap();
    assert_eq!(kv(rest, "timers"), "0");
    assert_eq!(kv(rest, "keys"), "0");
    assert!(mount_at(info, "/proc/keys").is_some(), "a masked file is /dev/null bound over it");
    assert_eq!(kv(rest, "secret"), "");
    assert_eq!(kv(rest, "secretwrite"), "1");
    assert_eq!(kv(rest, "token"), "");
    let secret = mount_at(info, "/secret").unwrap();
    assert!(secret.fstype == "tmpfs" && secret.has("ro"), "{secret:?}");
    let erofs = |path: &str| rest.lines().any(|l| l.contains(path) && l.contains("Read-only file system"));
    assert!(erofs("/proc/sys/kernel/shm_rmid_forced"), "{rest}");
    assert_eq!(kv(rest, "syswrite"), "1");
    assert_eq!(kv(rest, "sysrq"), "1");
    assert_eq!(kv(rest, "ostype"), "Linux", "read-only paths stay readable");
    assert!(mount_at(info, "/proc/sys").unwrap().has("ro"));
    assert!(mount_at(info, "/proc/bus").unwrap().has("ro"));
    sb.assert_clean();
}

#[test]
fn process_args_env_cwd() {
    if skip_unless_root() {
        return;
    }
    let mut sb = Sandbox::new("proc");
    let b = sb.bundle("b", &config(&["true"]));
    let mut cfg = config(&[
        "sh",
        "-c",
        "echo cwd=$(pwd); echo foo=\"$FOO\"; echo args=\"$#:$0:$1:$2\"; echo home=$HOME; echo path=$PATH",
        "zero",
        "a b",
        "",
    ]);
    cfg["process"]["env"] = json!(["PATH=/bin", "FOO=x y=z"]);
    cfg["process"]["cwd"] = json!("/made/on/demand");
    let out = run_in_ok(&mut sb, &b, &cfg);
    assert_eq!(kv(&out, "cwd"), "/made/on/demand", "a missing cwd is created (as runc)");
    assert_eq!(kv(&out, "foo"), "x y=z");
    assert_eq!(kv(&out, "args"), "2:zero:a b:");
    assert_eq!(kv(&out, "home"), "/root", "HOME comes from /etc/passwd when unset (as runc)");
    assert_eq!(kv(&out, "path"), "/bin");

    let mut cfg = sh("echo home=$HOME");
    cfg["process"]["env"] = json!(["PATH=/bin", "HOME=/custom"]);
    assert_eq!(kv(&run_in_ok(&mut sb, &b, &cfg), "home"), "/custom");
    let mut cfg = sh("echo home=$HOME");
    cfg["process"]["user"] = json!({"uid": 4242, "gid": 4242});
    assert_eq!(kv(&run_in_ok(&mut sb, &b, &cfg), "home"), "/", "a user without a passwd entry gets /");
    sb.assert_clean();
}

#[test]
fn user_groups_and_umask() {
    if skip_unless_root() {
        return;
    }
    let mut sb = Sandbox::new("user");
    let b = sb.bundle("b", &config(&["true"]));
    let script = "id; grep -E '^(Uid|Gid|Groups):' /proc/self/status; echo umask=$(umask); mkdir -p /tmp/d && echo dmode=$(stat -c %a /tmp/d)";
    let mut cfg = sh(script);
    cfg["process"]["user"] = json!({"uid": 1000, "gid": 1001, "additionalGids": [10, 20], "umask": 0o027});
    cfg["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["mode=1777"]}));
    let out = run_in_ok(&mut sb, &b, &cfg);
    assert!(out.contains("uid=1000 gid=1001 groups=10,20"), "{out}");
    assert_eq!(status_field(&out, "Uid"), "1000\t1000\t1000\t1000");
    assert_eq!(status_field(&out, "Gid"), "1001\t1001\t1001\t1001");
    assert_eq!(status_field(&out, "Groups"), "10 20");
    assert_eq!(kv(&out, "umask"), "0027");
    assert_eq!(kv(&out, "dmode"), "750");

    // Root without additionalGids has no supplementary groups; umask defaults to 0022.
    let out = run_in_ok(&mut sb, &b, &sh(script));
    assert_eq!(status_field(&out, "Uid"), "0\t0\t0\t0");
    assert_eq!(status_field(&out, "Groups"), "");
    assert_eq!(kv(&out, "umask"), "0022");
    sb.assert_clean();
}

#[test]
fn capabilities_all_sets() {
    if skip_unless_root() {
        return;
    }
    let mut sb = Sandbox::new("caps");
    let b = sb.bundle("b", &config(&["true"]));
    let script = "grep -E '^(Cap|NoNewPrivs)' /proc/self/status";
    let caps = |c: &Value| {
        let mut cfg = sh(script);
        cfg["process"]["capabilities"] = c.clone();
        cfg
    };
    let hex = |m: u64| format!("{m:016x}");

    let bnd = ["CAP_CHOWN", "CAP_KILL", "CAP_SETUID", "CAP_NET_BIND_SERVICE"];
    // Root with no_new_privs: execve grants nothing beyond the permitted set, and root's
    // effective set after execve is all it permits.
    // (The kernel keeps inheritable within bounding.)
    let set = json!({"bounding": bnd, "effective": ["CAP_KILL"], "permitted": ["CAP_KILL", "CAP_CHOWN"], "inheritable": ["CAP_CHOWN", "CAP_SETUID"]});
    let mut cfg = caps(&set);
    cfg["process"]["noNewPrivileges"] = json!(true);
    let out = run_in_ok(&mut sb, &b, &cfg);
    assert_eq!(status_field(&out, "CapBnd"), hex(cap_mask(&bnd)));
    assert_eq!(status_field(&out, "CapInh"), hex(cap_mask(&["CAP_CHOWN", "CAP_SETUID"])));
    assert_eq!(status_field(&out, "CapPrm"), hex(cap_mask(&["CAP_KILL", "CAP_CHOWN"])));
    assert_eq!(status_field(&out, "CapEff"), hex(cap_mask(&["CAP_KILL", "CAP_CHOWN"])));
    assert_eq!(status_field(&out, "CapAmb"), hex(0));
    // Root without it: execve gives permitted = effective = bounding | inheritable.
    cfg["process"]["noNewPrivileges"] = json!(false);
    let out = run_in_ok(&mut sb, &b, &cfg);
    assert_eq!(status_field(&out, "CapPrm"), hex(cap_mask(&bnd)));
    assert_eq!(status_field(&out, "CapEff"), hex(cap_mask(&bnd)));
    assert_eq!(status_field(&out, "CapInh"), hex(cap_mask(&["CAP_CHOWN", "CAP_SETUID"])));
    // Inheritable outside bounding is refused by the kernel: create fails naming the field.
    let cfg = caps(&json!({"bounding": ["CAP_KILL"], "effective": [], "permitted": [], "inheritable": ["CAP_CHOWN"]}));
    let e = stderr(&run_in(&mut sb, &b, &cfg));
    assert!(e.contains("process.capabilities"), "{e}");

    // Non-root: what is ambient survives execve as permitted and effective.
    let mut cfg = caps(&json!({
        "bounding": bnd,
        "effective": ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
        "permitted": ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
        "inheritable": ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
        "ambient": ["CAP_NET_BIND_SERVICE"]
    }));
    cfg["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    let out = run_in_ok(&mut sb, &b, &cfg);
    let amb = cap_mask(&["CAP_NET_BIND_SERVICE"]);
    assert_eq!(status_field(&out, "CapBnd"), hex(cap_mask(&bnd)));
    assert_eq!(status_field(&out, "CapInh"), hex(cap_mask(&["CAP_NET_BIND_SERVICE", "CAP_KILL"])));
    assert_eq!(status_field(&out, "CapAmb"), hex(amb));
    assert_eq!(status_field(&out, "CapPrm"), hex(amb));
    assert_eq!(status_field(&out, "CapEff"), hex(amb));

    // Non-root without ambient: nothing survives execve, but the bounding set is still limited.
    cfg["process"]["capabilities"]["ambient"] = json!([]);
    let out = run_in_ok(&mut sb, &b, &cfg);
    assert_eq!(status_field(&out, "CapBnd"), hex(cap_mask(&bnd)));
    assert_eq!(status_field(&out, "CapPrm"), hex(0));
    assert_eq!(status_field(&out, "CapEff"), hex(0));

    // No capabilities object at all: the process has none, even as root.
    let mut cfg = sh(script);
    cfg["process"].as_object_mut().unwrap().remove("capabilities");
    let out = run_in_ok(&mut sb, &b, &cfg);
    for f in ["CapBnd", "CapInh", "CapPrm", "CapEff", "CapAmb"] {
        assert_eq!(status_field(&out, f), hex(0), "{f}");
    }
    sb.assert_clean();
}

#[test]
fn rlimits_nnp_oom_score_adj() {
    if skip_unless_root() {
        return;
    }
    let mut sb = Sandbox::new("limits");
    let b = sb.bundle("b", &config(&["true"]));
    let script = "echo soft=$(ulimit -n); echo hard=$(ulimit -Hn); echo core=$(ulimit -c); echo oom=$(cat /proc/self/oom_score_adj); grep NoNewPrivs /proc/self/status";
    let mut cfg = sh(script);
    cfg["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 1000, "hard": 2000},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}
    ]);
    cfg["process"]["oomScoreAdj"] = json!(123);
    cfg["process"]["noNewPrivileges"] = json!(true);
    let out = run_in_ok(&mut sb, &b, &cfg);
    assert_eq!(kv(&out, "soft"), "1000");
    assert_eq!(kv(&out, "hard"), "2000");
    assert_eq!(kv(&out, "core"), "0");
    assert_eq!(kv(&out, "oom"), "123");
    assert_eq!(status_field(&out, "NoNewPrivs"), "1");

    cfg["process"]["noNewPrivileges"] = json!(false);
    // A bad limit fails create itself (init checks it before it reports ready) and leaves nothing.
    let mut bad = cfg.clone();
    bad["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 5}]);
    std::fs::write(b.join("config.json"), bad.to_string()).unwrap();
    let id = sb.id("bad");
    let e = sb.fails(&["create", "--bundle", b.to_str().unwrap(), &id]);
    assert!(e.contains("process.rlimits RLIMIT_NOFILE"), "{e}");
    sb.assert_clean();

    // Lowering below the runtime's own value needs CAP_SYS_RESOURCE, which this host's root may
    // lack: 0 is always allowed.
    cfg["process"]["oomScoreAdj"] = json!(0);
    let out = run_in_ok(&mut sb, &b, &cfg);
    assert_eq!(status_field(&out, "NoNewPrivs"), "0");
    assert_eq!(kv(&out, "oom"), "0");
    sb.assert_clean();
}

#[test]
fn personality_and_io_priority() {
    if skip_unless_root() {
        return;
    }
    let mut sb = Sandbox::new("persona");
    let mut cfg = sh("echo arch=$(uname -m); echo io=$(ionice)");
    cfg["linux"]["personality"] = json!({"domain": "LINUX32"});
    cfg["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 3});
    let out = run_ok(&mut sb, &cfg);
    assert_eq!(kv(&out, "arch"), "i686");
    assert_eq!(kv(&out, "io"), "best-effort: prio 3");
    sb.assert_clean();
}

/// What a pty master yields until `marker` shows up, the slave side closes, or `secs` pass.
fn read_until(master: &std::os::fd::OwnedFd, marker: &str, secs: u64) -> String {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&out).contains(marker) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::try_from(left).unwrap_or(PollTimeout::ZERO)) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
        match nix::unistd::read(master, &mut buf) {
            Ok(n) if n > 0 => out.extend_from_slice(&buf[..n]),
            // EIO: the last slave fd closed.
            _ => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn terminal_through_console_socket() {
    if skip_unless_root() {
        return;
    }
    let mut sb = Sandbox::new("tty");
    let id = sb.id("t");
    let mut cfg = sh("echo tty=$(tty); stty size; echo console=$(stat -c '%t,%T' /dev/console); echo done");
    cfg["process"]["terminal"] = json!(true);
    cfg["process"]["consoleSize"] = json!({"height": 33, "width": 101});
    let b = sb.bundle("b", &cfg);
    let sock = sb.dir.join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    // Non-blocking, so that a create that never connects fails the test instead of hanging it.
    listener.set_nonblocking(true).unwrap();
    let accept = std::thread::spawn(move || {
        let mut conn = None;
        wait_for(10, || {
            conn = listener.accept().ok().map(|(c, _)| c);
            conn.is_some()
        });
        let conn = conn.expect("create never connected to the console socket");
        conn.set_nonblocking(false).unwrap();
        recv_fd(&conn)
    });
    sb.ok(&["create", "--bundle", b.to_str().unwrap(), "--console-socket", sock.to_str().unwrap(), &id]);
    let master = accept.join().unwrap();
    sb.ok(&["start", &id]);
    let out = read_until(&master, "done", 10);
    let text = out.replace('\r', "");
    assert_eq!(kv(&text, "tty"), "/dev/pts/0", "{text}");
    assert!(text.contains("33 101"), "consoleSize: {text}");
    assert_eq!(kv(&text, "console"), "88,0", "/dev/console is the pty (136,0)");
    assert!(wait_for(5, || sb.state(&id)["status"] == "stopped"));
    sb.ok(&["delete", &id]);
    sb.assert_clean();
}

#[test]
fn sysctls() {
    if skip_unless_root() {
        return;
    }
    let mut sb = Sandbox::new("sysctl");
    let b = sb.bundle("b", &config(&["true"]));
    let host_rmid = std::fs::read_to_string("/proc/sys/kernel/shm_rmid_forced").unwrap();
    let mut cfg = sh("echo fwd=$(cat /proc/sys/net/ipv4/ip_forward); echo rmid=$(cat /proc/sys/kernel/shm_rmid_forced)");
    cfg["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shm_rmid_forced": "1"});
    let out = run_in_ok(&mut sb, &b, &cfg);
    assert_eq!(kv(&out, "fwd"), "1");
    assert_eq!(kv(&out, "rmid"), "1");
    assert_eq!(std::fs::read_to_string("/proc/sys/kernel/shm_rmid_forced").unwrap(), host_rmid, "the host's value is untouched");

    // Sysctls that are not namespaced (or whose namespace is the host's) are refused.
    let mut cfg = sh("true");
    cfg["linux"]["sysctl"] = json!({"kernel.pid_max": "40000"});
    let e = stderr(&run_in(&mut sb, &b, &cfg));
    assert!(e.contains("linux.sysctl") && e.contains("kernel.pid_max"), "{e}");
    let mut cfg = sh("true");
    cfg["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "pid"}]);
    cfg.as_object_mut().unwrap().remove("hostname");
    cfg["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    let e = stderr(&run_in(&mut sb, &b, &cfg));
    assert!(e.contains("linux.sysctl") && e.contains("net.ipv4.ip_forward"), "{e}");
    // Joining the host's network namespace by path is no way around it.
    cfg["linux"]["namespaces"] =
        json!([{"type": "mount"}, {"type": "network", "path": format!("/proc/{}/ns/net", std::process::id())}]);
    let e = stderr(&run_in(&mut sb, &b, &cfg));
    assert!(e.contains("linux.sysctl") && e.contains("host's network namespace"), "{e}");
    sb.assert_clean();
}

#[test]
fn seccomp_profiles() {
    if skip_unless_root() {
        return;
    }
    let mut sb = Sandbox::new("seccomp");
    let b = sb.bundle("b", &config(&["true"]));
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            // kill(pid, SIGUSR1) is refused with EACCES; other signals pass.
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "args": [{"index": 1, "value": 10, "op": "SCMP_CMP_EQ"}]},
            // (not uname: busybox sh calls it at startup)
            {"names": ["sync"], "action": "SCMP_ACT_KILL_PROCESS"}
        ]
    });
    let script = "mkdir /x; echo mkdir=$?; kill -USR1 $$; echo usr1=$?; kill -0 $$; echo sig0=$?; sync; echo sync=$?";
    let mut cfg = sh(&format!("({script}) 2>&1"));
    cfg["linux"]["seccomp"] = profile.clone();
    let out = run_in_ok(&mut sb, &b, &cfg);
    assert!(out.contains("Operation not permitted"), "{out}");
    assert_eq!(kv(&out, "mkdir"), "1");
    assert!(out.contains("Permission denied"), "{out}");
    assert_eq!(kv(&out, "usr1"), "1");
    assert_eq!(kv(&out, "sig0"), "0");
    assert_eq!(kv(&out, "sync"), "159", "SCMP_ACT_KILL_PROCESS: killed by SIGSYS");

    // The program itself killed: run reports 128 + SIGSYS.
    let mut cfg = config(&["sync"]);
    cfg["linux"]["seccomp"] = profile.clone();
    assert_eq!(run_in(&mut sb, &b, &cfg).status.code(), Some(159));

    // Without no_new_privs, as a non-root user: the filter is still loaded (before caps drop).
    let mut cfg = sh("mkdir /tmp/x 2>&1; echo mkdir=$?; grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status");
    cfg["linux"]["seccomp"] = profile;
    cfg["process"]["noNewPrivileges"] = json!(false);
    cfg["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    cfg["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["mode=1777"]}));
    let out = run_in_ok(&mut sb, &b, &cfg);
    assert!(out.contains("Operation not permitted"), "{out}");
    assert_eq!(status_field(&out, "Seccomp"), "2");
    assert_eq!(status_field(&out, "NoNewPrivs"), "0");
    sb.assert_clean();
}

/// A hook that appends "NAME <state json>" to `log`; `sh` is the host's or the container's.
fn log_hook(name: &str, log: &Path) -> Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", format!("echo \"{name} $(cat)\" >> {}", log.display())], "env": ["PATH=/bin:/usr/bin"]})
}

#[test]
fn hooks_all_six_in_order() {
    if skip_unless_root() {
        return;
    }
    let mut sb = Sandbox::new("hooks");
    let id = sb.id("h");
    let logdir = sb.dir.join("log");
    std::fs::create_dir(&logdir).unwrap();
    let log = logdir.join("hooks");
    let mut cfg = sh("echo process >> /hooklog/hooks");
    cfg["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/hooklog", "type": "bind", "source": logdir, "options": ["bind"]}));
    // startContainer runs inside the container, after pivot_root: it sees the bind mount.
    cfg["hooks"] = json!({
        "prestart": [log_hook("prestart", &log)],
        "createRuntime": [log_hook("createRuntime", &log)],
        "createContainer": [log_hook("createContainer", &log)],
        "startContainer": [log_hook("startContainer", Path::new("/hooklog/hooks"))],
        "poststart": [log_hook("poststart", &log)],
        "poststop": [log_hook("poststop", &log)]
    });
    let b = sb.bundle("b", &cfg);
    sb.ok(&["create", "--bundle", b.to_str().unwrap(), &id]);
    let pid = sb.state(&id)["pid"].as_i64().unwrap();
    sb.ok(&["start", &id]);
    assert!(wait_for(5, || sb.state(&id)["status"] == "stopped"));
    sb.ok(&["delete", &id]);

    let text = std::fs::read_to_string(&log).unwrap();
    let entries: Vec<(String, Value)> = text
        .lines()
        .map(|l| {
            let (name, json) = l.split_once(' ').unwrap_or((l, "null"));
            (name.to_string(), serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {l}")))
        })
        .collect();
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(&names[..3], ["prestart", "createRuntime", "createContainer"], "{text}");
    // `start` runs poststart once init has exec'd the program, so after startContainer; the
    // program itself runs concurrently with poststart.
    let mut mid = names[3..6].to_vec();
    mid.sort();
    assert_eq!(mid, ["poststart", "process", "startContainer"], "{text}");
    let at = |name: &str| names.iter().position(|n| *n == name);
    assert!(at("startContainer") < at("process"), "{text}");
    assert!(at("startContainer") < at("poststart"), "poststart before the program started: {text}");
    assert_eq!(names[6..], ["poststop"], "{text}");
    let want = [
        ("prestart", "creating", pid),
        ("createRuntime", "creating", pid),
        ("createContainer", "creating", pid),
        ("startContainer", "created", pid),
        ("poststart", "running", pid),
        ("poststop", "stopped", 0),
    ];
    for (name, status, pid) in want {
        let st = &entries.iter().find(|(n, _)| n == name).unwrap().1;
        assert_eq!(st["status"], status, "{name}: {st}");
        assert_eq!(st["pid"], pid, "{name}: {st}");
        assert_eq!(st["id"], id.as_str(), "{name}: {st}");
        assert_eq!(st["bundle"], b.to_str().unwrap(), "{name}: {st}");
    }
    sb.assert_clean();
}

#[test]
fn failing_and_timed_out_hooks_leave_nothing() {
    if skip_unless_root() {
        return;
    }
    let mut sb = Sandbox::new("hookfail");
    let cases = [
        ("prestart", json!({"path": "/bin/sh", "args": ["sh", "-c", "echo broken >&2; exit 3"]}), "exit status: 3"),
        ("prestart", json!({"path": "/bin/sh", "args": ["sh", "-c", "exec sleep 10"], "timeout": 1}), "timed out after 1s"),
        ("createRuntime", json!({"path": "/bin/false"}), "hook createRuntime"),
        ("createContainer", json!({"path": "/bin/false"}), "hook createContainer"),
    ];
    let b = sb.bundle("b", &config(&["true"]));
    for (kind, hook, want) in cases {
        let id = sb.id("f");
        let mut cfg = config(&["true"]);
        cfg["hooks"] = json!({ kind: [hook] });
        std::fs::write(b.join("config.json"), cfg.to_string()).unwrap();
        let started = std::time::Instant::now();
        let e = sb.fails(&["create", "--bundle", b.to_str().unwrap(), &id]);
        assert!(e.contains(want) && e.contains(kind), "{kind}: want {want:?} in {e}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{kind}: took {:?}", started.elapsed());
        assert!(sb.fails(&["state", &id]).contains("does not exist"));
        sb.assert_clean();
    }
}

#[test]
fn annotations_in_state() {
    if skip_unless_root() {
        return;
    }
    let mut sb = Sandbox::new("annot");
    let id = sb.id("a");
    let mut cfg = config(&["true"]);
    cfg["annotations"] = json!({"org.example.one": "1", "org.example.two": "a b"});
    let b = sb.bundle("b", &cfg);
    sb.ok(&["create", "--bundle", b.to_str().unwrap(), &id]);
    let st = sb.state(&id);
    assert_eq!(st["annotations"], json!({"org.example.one": "1", "org.example.two": "a b"}));
    sb.ok(&["delete", &id]);
    sb.assert_clean();
}

#[test]
fn apparmor_and_selinux_accepted_with_warning() {
    if skip_unless_root() {
        return;
    }
    let mut sb = Sandbox::new("lsm");
    let mut cfg = sh("echo ran");
    cfg["process"]["apparmorProfile"] = json!("conductor-default");
    cfg["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0");
    cfg["linux"]["mountLabel"] = json!("system_u:object_r:container_file_t:s0");
    let o = run_config(&mut sb, &cfg);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "ran\n");
    let e = stderr(&o);
    assert!(e.contains("apparmorProfile") && e.contains("selinuxLabel") && e.contains("mountLabel"), "{e}");
    sb.assert_clean();
}

/// SCMP_ACT_NOTIFY: the listener fd reaches the agent at listenerPath with the container's
/// state, and the agent's answer is what the container's syscall returns.
#[test]
fn seccomp_notify_hands_the_listener_to_the_agent() {
    if skip_unless_root() {
        return;
    }
    use std::os::fd::AsFd;
    let mut sb = Sandbox::new("notify");
    let sock_path = sb.dir.join("agent.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    let agent = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let (fd, data) = conductor_sys::pty::recv_fd(&conn).unwrap();
        let hello: Value = serde_json::from_slice(&data).unwrap();
        let req = conductor_sys::seccomp::notify_receive(fd.as_fd()).unwrap();
        conductor_sys::seccomp::notify_respond(fd.as_fd(), req.id, conductor_sys::seccomp::NotifyResponse::Errno(libc::EACCES))
            .unwrap();
        hello
    });
    let mut cfg = sh("mkdir /x 2>&1; echo rc=$?");
    cfg["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock_path,
        "listenerMetadata": "meta-1",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    let out = run_ok(&mut sb, &cfg);
    assert!(out.contains("Permission denied") && out.contains("rc=1"), "{out}");
    let hello = agent.join().unwrap();
    assert_eq!(hello["fds"], json!(["seccompFd"]));
    assert_eq!(hello["metadata"], "meta-1");
    assert!(hello["state"]["id"].as_str().unwrap().starts_with('t'));
    sb.assert_clean();
}

/// /sys/fs/cgroup inside shows the container's own cgroup, with and without a cgroup namespace
/// (without one, a fresh cgroup mount would show the host's whole tree).
#[test]
fn cgroup_mount_shows_the_containers_own_cgroup() {
    if skip_unless_root() {
        return;
    }
    let mut sb = Sandbox::new("cgview");
    for cgroupns in [true, false] {
        let mut cfg = sh("cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max");
        cfg["linux"]["resources"]["memory"] = json!({"limit": 64 << 20});
        if !cgroupns {
            let ns: Vec<Value> =
                cfg["linux"]["namespaces"].as_array().unwrap().iter().filter(|n| n["type"] != "cgroup").cloned().collect();
            cfg["linux"]["namespaces"] = json!(ns);
        }
        let out = run_ok(&mut sb, &cfg);
        assert_eq!(out.trim(), (64u64 << 20).to_string(), "cgroupns={cgroupns}");
    }
    sb.assert_clean();
}

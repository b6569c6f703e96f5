//! Image + run options -> the OCI config.json the runtime executes, with the security baseline
//! of the design note: Docker's capability set, a Docker-equivalent seccomp profile,
//! no_new_privs, runc's masked and read-only paths, read-only sysfs.

use conductor_runtime::features::{MASKED, READONLY};
use serde_json::{json, Value};

use crate::options::RunOptions;

/// Docker's default capabilities.
pub const DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The annotation that asks the runtime to keep a minimal init as pid 1.
pub const INIT_ANNOTATION: &str = conductor_runtime::reaper::ANNOTATION;

/// The cgroup of a named container.
pub fn cgroup_path(name: &str) -> String {
    format!("/{}/{name}", conductor_cgroups::DEFAULT_PARENT)
}

pub struct Input<'a> {
    pub name: &'a str,
    pub image: &'a str,
    pub args: &'a [String],
    pub image_env: &'a [String],
    pub image_workdir: Option<&'a str>,
    pub opts: &'a RunOptions,
    /// Files of the container directory bind-mounted over /etc/{hosts,hostname,resolv.conf}.
    pub etc_files: &'a [(String, std::path::PathBuf)],
}

pub fn generate(i: &Input) -> Value {
    let o = i.opts;
    let mut env: Vec<String> = i.image_env.to_vec();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    }
    env.push(format!("HOSTNAME={}", o.hostname.as_deref().unwrap_or(i.name)));
    if o.tty {
        env.push("TERM=xterm".into());
    }
    for kv in &o.env {
        let key = kv.split('=').next().unwrap_or_default();
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    let (uid, gid) = o.user.map(|(u, g)| (u, g.unwrap_or(u))).unwrap_or((0, 0));
    let cwd = o.workdir.as_deref().or(i.image_workdir).filter(|w| !w.is_empty()).unwrap_or("/");
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
    ];
    for (dest, src) in i.etc_files {
        mounts.push(json!({"destination": dest, "type": "bind", "source": src, "options": ["rbind", "rprivate"]}));
    }
    for v in &o.volumes {
        let mode = if v.read_only { "ro" } else { "rw" };
        mounts
            .push(json!({"destination": v.container, "type": "bind", "source": v.host, "options": ["rbind", "rprivate", mode]}));
    }
    let mut resources = json!({"devices": [{"allow": false, "access": "rwm"}]});
    if let Some(c) = o.cpus {
        resources["cpu"] = json!({"quota": (c * 100_000.0).round() as i64, "period": 100_000});
    }
    if let Some(m) = o.memory {
        // No swap beyond the limit: an over-allocating process is OOM-killed, as users expect.
        resources["memory"] = json!({"limit": m, "swap": m});
    }
    if let Some(p) = o.pids_limit {
        resources["pids"] = json!({"limit": p});
    }
    let mut annotations = json!({"io.conductor.name": i.name, "io.conductor.image": i.image});
    if o.init {
        annotations[INIT_ANNOTATION] = json!("true");
    }
    let mut spec = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": o.tty,
            "user": {"uid": uid, "gid": gid},
            "args": i.args,
            "env": env,
            "cwd": cwd,
            "capabilities": {"bounding": DEFAULT_CAPS, "effective": DEFAULT_CAPS, "permitted": DEFAULT_CAPS},
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": o.read_only},
        "mounts": mounts,
        "annotations": annotations,
        "linux": {
            "cgroupsPath": cgroup_path(i.name),
            "resources": resources,
            "namespaces": namespaces(o),
            "maskedPaths": MASKED,
            "readonlyPaths": READONLY,
            "seccomp": crate::seccomp_profile::default_profile()
        }
    });
    // A hostname is only for a UTS namespace of the container's own.
    if !o.host_namespaces.iter().any(|n| n == "uts") {
        spec["hostname"] = json!(o.hostname.as_deref().unwrap_or(i.name));
    }
    spec
}

/// New namespaces, except those shared with the host (`--pid host`, ...).
fn namespaces(o: &RunOptions) -> Value {
    let all = ["pid", "network", "ipc", "uts", "mount", "cgroup"];
    let host = |n: &&str| o.host_namespaces.iter().any(|h| h == n);
    Value::Array(all.iter().filter(|n| !host(n)).map(|n| json!({"type": n})).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_config_is_a_valid_spec_with_the_baseline() {
        let opts = RunOptions {
            cpus: Some(0.5),
            memory: Some(64 << 20),
            pids_limit: Some(10),
            env: vec!["A=1".into()],
            ..Default::default()
        };
        let args = vec!["sh".to_string()];
        let v = generate(&Input {
            name: "web",
            image: "img",
            args: &args,
            image_env: &[],
            image_workdir: None,
            opts: &opts,
            etc_files: &[],
        });
        let spec = conductor_runtime::config::parse(v.to_string().as_bytes()).unwrap();
        let p = spec.process().as_ref().unwrap();
        assert_eq!(p.no_new_privileges(), Some(true));
        assert_eq!(spec.hostname().as_deref(), Some("web"));
        assert!(p.env().as_ref().unwrap().contains(&"A=1".to_string()));
        let r = spec.linux().as_ref().unwrap().resources().as_ref().unwrap();
        assert_eq!(r.cpu().as_ref().unwrap().quota(), Some(50_000));
        assert_eq!(r.pids().as_ref().unwrap().limit(), 10);
        assert_eq!(spec.linux().as_ref().unwrap().masked_paths().as_ref().unwrap().len(), 10);
        assert_eq!(p.capabilities().as_ref().unwrap().bounding().as_ref().unwrap().len(), 14);
        assert_eq!(spec.linux().as_ref().unwrap().namespaces().as_ref().unwrap().len(), 6);
    }

    #[test]
    fn host_namespaces_are_left_out() {
        let opts = RunOptions { host_namespaces: vec!["pid".into(), "uts".into()], ..Default::default() };
        let args = vec!["sh".to_string()];
        let v = generate(&Input {
            name: "a",
            image: "i",
            args: &args,
            image_env: &[],
            image_workdir: None,
            opts: &opts,
            etc_files: &[],
        });
        let kinds: Vec<&str> = v["linux"]["namespaces"].as_array().unwrap().iter().map(|n| n["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["network", "ipc", "mount", "cgroup"]);
        assert!(v.get("hostname").is_none(), "no hostname without a UTS namespace");
        conductor_runtime::config::parse(v.to_string().as_bytes()).unwrap();
    }
}

//! Loading and checking config.json before anything is created, so bad input fails early with
//! an error that names the field.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Error, Result};

/// A bundle's parsed config with its rootfs resolved to an absolute path.
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
    pub rootfs: PathBuf,
    /// config.json as read, kept in the state directory for later commands.
    pub raw: Vec<u8>,
}

pub fn load(bundle: &Path) -> Result<Bundle> {
    let dir = std::path::absolute(bundle).map_err(|e| Error::Invalid(format!("bundle {}: {e}", bundle.display())))?;
    let path = dir.join("config.json");
    let raw = std::fs::read(&path).map_err(|e| Error::Config { path: path.clone(), msg: e.to_string() })?;
    let spec = parse(&raw).and_then(|s| check_host(&s).map(|()| s)).map_err(|msg| Error::Config { path: path.clone(), msg })?;
    let root = spec.root().as_ref().ok_or_else(|| Error::Config { path: path.clone(), msg: "missing field `root`".into() })?;
    let rootfs = dir.join(root.path());
    if !rootfs.is_dir() {
        return Err(Error::Config { path, msg: format!("root.path: {} is not a directory", rootfs.display()) });
    }
    Ok(Bundle { dir, spec, rootfs, raw })
}

/// Parse and check a config; the error names the offending field.
pub fn parse(raw: &[u8]) -> std::result::Result<Spec, String> {
    let de = &mut serde_json::Deserializer::from_slice(raw);
    let spec: Spec = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path == "?" {
            inner.to_string()
        } else {
            format!("{path}: {inner}")
        }
    })?;
    check(&spec)?;
    Ok(spec)
}

fn check(spec: &Spec) -> std::result::Result<(), String> {
    if spec.version().is_empty() {
        return Err("missing field `ociVersion`".into());
    }
    if !spec.version().starts_with("1.") {
        return Err(format!("ociVersion: unsupported version {:?}", spec.version()));
    }
    if spec.root().is_none() {
        return Err("missing field `root`".into());
    }
    let process = spec.process().as_ref().ok_or("missing field `process`")?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err("process.args: must name a program".into());
    }
    if !process.cwd().is_absolute() {
        return Err(format!("process.cwd: {:?} is not an absolute path", process.cwd()));
    }
    if let Some(mounts) = spec.mounts() {
        let known = known_filesystems();
        for (i, m) in mounts.iter().enumerate() {
            if !m.destination().is_absolute() {
                return Err(format!("mounts[{i}].destination: {:?} is not absolute", m.destination()));
            }
            let bind = m.options().as_ref().is_some_and(|o| o.iter().any(|o| o == "bind" || o == "rbind"));
            match m.typ().as_deref() {
                None | Some("") | Some("none") | Some("bind") if bind || m.typ().as_deref() == Some("bind") => {}
                None | Some("") => return Err(format!("mounts[{i}].type: missing (and not a bind mount)")),
                Some(t) if !known.iter().any(|k| k == t) => {
                    return Err(format!("mounts[{i}].type: unknown filesystem type {t:?}"))
                }
                _ => {}
            }
        }
    }
    if let Some(linux) = spec.linux() {
        let mut seen = Vec::new();
        for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
            if seen.contains(&ns.typ()) {
                return Err(format!("linux.namespaces[{i}]: duplicate namespace {:?}", ns.typ()));
            }
            seen.push(ns.typ());
        }
        let has_userns = seen.contains(&LinuxNamespaceType::User);
        if !has_userns && (linux.uid_mappings().is_some() || linux.gid_mappings().is_some()) {
            let nonempty = |m: &Option<Vec<_>>| m.as_ref().is_some_and(|v: &Vec<_>| !v.is_empty());
            if nonempty(linux.uid_mappings()) || nonempty(linux.gid_mappings()) {
                return Err("linux.uidMappings: set without a user namespace".into());
            }
        }
        if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) && !seen.contains(&LinuxNamespaceType::Uts) {
            return Err("hostname: needs a new uts namespace".into());
        }
        if let Some(p) = linux.rootfs_propagation().as_deref().filter(|p| !p.is_empty()) {
            if crate::init::propagation(p).is_none() {
                return Err(format!("linux.rootfsPropagation: unknown value {p:?}"));
            }
        }
        for key in linux.sysctl().iter().flatten().map(|(k, _)| k) {
            check_sysctl(key, &seen)?;
        }
    }
    Ok(())
}

/// Only sysctls that belong to a namespace the container has of its own may be set (runc's
/// rule): anything else would change the host.
fn check_sysctl(key: &str, namespaces: &[LinuxNamespaceType]) -> std::result::Result<(), String> {
    let dotted = key.replace('/', ".");
    let bad = |why: &str| Err(format!("linux.sysctl: {key:?} {why}"));
    // An empty component also catches ".." in either spelling.
    if dotted.split('.').any(str::is_empty) {
        return bad("is not a valid name");
    }
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&dotted.as_str()) || dotted.starts_with("fs.mqueue.") {
        return if namespaces.contains(&LinuxNamespaceType::Ipc) { Ok(()) } else { bad("needs an ipc namespace") };
    }
    if dotted.starts_with("net.") {
        return if namespaces.contains(&LinuxNamespaceType::Network) { Ok(()) } else { bad("needs a network namespace") };
    }
    match dotted.as_str() {
        "kernel.domainname" if namespaces.contains(&LinuxNamespaceType::Uts) => Ok(()),
        "kernel.hostname" => bad("conflicts with the hostname field"),
        _ => bad("is not namespaced: it would change the host"),
    }
}

/// Checks against the machine, at create time only (a saved config is re-read later, when a
/// joined namespace may be gone): namespace paths exist, and net sysctls do not target the
/// host's network namespace through a joined path.
fn check_host(spec: &Spec) -> std::result::Result<(), String> {
    let Some(linux) = spec.linux() else { return Ok(()) };
    for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
        let Some(p) = ns.path().as_ref().filter(|p| !p.as_os_str().is_empty()) else { continue };
        if !p.exists() {
            return Err(format!("linux.namespaces[{i}].path: {} does not exist", p.display()));
        }
        let net_sysctl = linux.sysctl().iter().flatten().find(|(k, _)| k.starts_with("net.") || k.starts_with("net/"));
        if let (LinuxNamespaceType::Network, Some((k, _))) = (ns.typ(), net_sysctl) {
            if same_file(p, Path::new("/proc/self/ns/net")) {
                return Err(format!(
                    "linux.sysctl: {k:?} would change the host: linux.namespaces[{i}].path is the host's network namespace"
                ));
            }
        }
    }
    Ok(())
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Filesystem types this kernel can mount (/proc/filesystems), plus what needs no module.
fn known_filesystems() -> Vec<String> {
    let text = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    let mut v: Vec<String> = text.lines().filter_map(|l| l.split_whitespace().last()).map(String::from).collect();
    v.extend(["bind", "rbind", "none"].map(String::from));
    v
}

#[cfg(test)]
mod tests {
    use super::parse;

    fn base() -> serde_json::Value {
        serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}},
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}
        })
    }

    fn err(v: serde_json::Value) -> String {
        parse(v.to_string().as_bytes()).expect_err("should fail")
    }

    #[test]
    fn accepts_minimal() {
        parse(base().to_string().as_bytes()).unwrap();
    }

    #[test]
    fn errors_name_the_field() {
        assert!(parse(b"{not json").unwrap_err().contains("key must be a string"));
        let mut v = base();
        v["linux"]["namespaces"][1]["type"] = "bogus".into();
        let e = err(v);
        assert!(e.starts_with("linux.namespaces[1].type: unknown variant `bogus`"), "{e}");
        let mut v = base();
        v["mounts"][0]["type"] = "nosuchfs".into();
        assert!(err(v).starts_with("mounts[0].type: unknown filesystem type"));
        let mut v = base();
        v.as_object_mut().unwrap().remove("process");
        assert_eq!(err(v), "missing field `process`");
        let mut v = base();
        v["process"]["args"] = serde_json::json!([]);
        assert!(err(v).starts_with("process.args"));
        let mut v = base();
        v["process"]["cwd"] = "rel".into();
        assert!(err(v).starts_with("process.cwd"));
        let mut v = base();
        v["process"]["user"]["uid"] = "x".into();
        assert!(err(v).starts_with("process.user.uid: invalid type"));
        let mut v = base();
        v["hostname"] = "h".into();
        assert!(err(v).starts_with("hostname: needs a new uts"));
        let mut v = base();
        v["linux"]["rootfsPropagation"] = "sideways".into();
        assert!(err(v).starts_with("linux.rootfsPropagation: unknown value"));
    }

    #[test]
    fn sysctls_must_be_namespaced() {
        let with = |ns: &[&str], key: &str| {
            let mut v = base();
            v["linux"]["namespaces"] = ns.iter().map(|t| serde_json::json!({"type": t})).collect();
            v["linux"]["sysctl"] = serde_json::json!({ key: "1" });
            parse(v.to_string().as_bytes())
        };
        with(&["mount", "network"], "net.ipv4.ip_forward").unwrap();
        with(&["mount", "network"], "net/ipv4/conf/eth0.100/forwarding").unwrap();
        with(&["mount", "ipc"], "kernel.shm_rmid_forced").unwrap();
        with(&["mount", "ipc"], "fs.mqueue.msg_max").unwrap();
        with(&["mount", "uts"], "kernel.domainname").unwrap();
        assert!(with(&["mount"], "net.ipv4.ip_forward").unwrap_err().contains("needs a network namespace"));
        assert!(with(&["mount"], "kernel.sem").unwrap_err().contains("needs an ipc namespace"));
        assert!(with(&["mount", "uts"], "kernel.hostname").unwrap_err().contains("conflicts"));
        assert!(with(&["mount", "ipc", "network"], "kernel.pid_max")
            .unwrap_err()
            .starts_with("linux.sysctl: \"kernel.pid_max\" is not namespaced"));
        assert!(with(&["mount", "network"], "net..x").is_err());
    }
}

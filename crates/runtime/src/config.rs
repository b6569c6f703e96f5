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
    let spec = parse(&raw).map_err(|msg| Error::Config { path: path.clone(), msg })?;
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
        if path == "." || path == "?" { inner.to_string() } else { format!("{path}: {inner}") }
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
            if let Some(p) = ns.path() {
                if !p.exists() {
                    return Err(format!("linux.namespaces[{i}].path: {} does not exist", p.display()));
                }
            }
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
    }
    Ok(())
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
        parse(v.to_string().as_bytes()).err().expect("should fail")
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
    }
}

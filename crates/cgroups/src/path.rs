//! runc's rules for `linux.cgroupsPath`, reduced to one path per hierarchy:
//! - absolute (`/a/b`): below each hierarchy's mount;
//! - relative (`a/b`): below the cgroup the runtime itself is in (/proc/self/cgroup);
//! - systemd form (`slice:prefix:name`): accepted and mapped to the cgroupfs path systemd would
//!   use (`/<expanded slice>/<prefix>-<name>.scope`), since we never drive systemd;
//! - absent: `/conductor/<id>`.

use crate::error::{Error, Result};

const FIELD: &str = "linux.cgroupsPath";

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CgroupsPath {
    /// Below each hierarchy's mount: always starts with '/', never just "/".
    Absolute(String),
    /// Below the runtime's own cgroup: no leading '/'.
    Relative(String),
}

pub(crate) fn parse(input: Option<&str>, container_id: &str) -> Result<CgroupsPath> {
    match input {
        None | Some("") => default_path(container_id),
        Some(p) if p.contains('\0') => Err(Error::invalid(FIELD, "must not contain a NUL byte")),
        Some(p) if p.starts_with('/') => Ok(CgroupsPath::Absolute(format!("/{}", clean(p)?))),
        Some(p) if p.contains(':') => systemd_path(p, container_id),
        Some(p) => Ok(CgroupsPath::Relative(clean(p)?)),
    }
}

fn default_path(id: &str) -> Result<CgroupsPath> {
    if id.is_empty() || id == "." || id == ".." || id.contains('/') || id.contains('\0') {
        return Err(Error::invalid("container id", format!("{id:?} cannot name a cgroup")));
    }
    Ok(CgroupsPath::Absolute(format!("/{}/{id}", crate::DEFAULT_PARENT)))
}

/// Normalise `a//./b/` to `a/b`. ".." is refused rather than resolved: a config that climbs out
/// of its parent is a mistake or an attack, and runc's silent clamping hides both.
fn clean(p: &str) -> Result<String> {
    let mut parts = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(Error::invalid(FIELD, format!("{p:?} must not contain \"..\""))),
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Err(Error::invalid(FIELD, format!("{p:?} names no cgroup below the root")));
    }
    Ok(parts.join("/"))
}

fn systemd_path(p: &str, container_id: &str) -> Result<CgroupsPath> {
    let parts: Vec<&str> = p.split(':').collect();
    let [slice, prefix, name] = parts[..] else {
        return Err(Error::invalid(FIELD, format!("{p:?} is neither a path nor systemd's \"slice:prefix:name\"")));
    };
    let slice = if slice.is_empty() { "system.slice" } else { slice };
    let name = if name.is_empty() { container_id } else { name };
    if prefix.contains('/') || name.contains('/') {
        return Err(Error::invalid(FIELD, format!("{p:?}: prefix and name must not contain '/'")));
    }
    let unit = if name.ends_with(".slice") {
        name.to_string()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    let base = expand_slice(slice)?;
    let path = format!("{}/{unit}", base.trim_end_matches('/'));
    tracing::warn!(
        cgroups_path = p,
        path = %path,
        "cgroupsPath is in systemd form but conductor does not drive systemd; using the cgroupfs path systemd would use"
    );
    Ok(CgroupsPath::Absolute(path))
}

/// systemd nests slices by name: `a-b-c.slice` lives at `/a.slice/a-b.slice/a-b-c.slice`;
/// `-.slice` is the root.
fn expand_slice(slice: &str) -> Result<String> {
    let bad = |why: &str| Error::invalid(FIELD, format!("slice {slice:?} {why}"));
    let name = slice.strip_suffix(".slice").ok_or_else(|| bad("must end in \".slice\""))?;
    if name.contains('/') {
        return Err(bad("must not contain '/'"));
    }
    if name == "-" {
        return Ok("/".into());
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for component in name.split('-') {
        if component.is_empty() {
            return Err(bad("has an empty '-' component"));
        }
        path.push_str(&format!("/{prefix}{component}.slice"));
        prefix.push_str(component);
        prefix.push('-');
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use CgroupsPath::*;

    #[test]
    fn default_is_conductor_id() {
        assert_eq!(parse(None, "abc").unwrap(), Absolute("/conductor/abc".into()));
        assert_eq!(parse(Some(""), "abc").unwrap(), Absolute("/conductor/abc".into()));
        assert!(parse(None, "a/b").is_err());
        assert!(parse(None, "..").is_err());
    }

    #[test]
    fn absolute_and_relative_are_cleaned() {
        assert_eq!(parse(Some("/a//b/./c/"), "x").unwrap(), Absolute("/a/b/c".into()));
        assert_eq!(parse(Some("a/b"), "x").unwrap(), Relative("a/b".into()));
        assert_eq!(parse(Some("./a"), "x").unwrap(), Relative("a".into()));
    }

    #[test]
    fn dotdot_and_root_are_refused() {
        let e = parse(Some("/a/../../etc"), "x").unwrap_err();
        assert_eq!(e.to_string(), "linux.cgroupsPath: \"/a/../../etc\" must not contain \"..\"");
        assert!(parse(Some("../x"), "x").is_err());
        assert!(parse(Some("/"), "x").is_err());
    }

    #[test]
    fn systemd_form_maps_to_scope_path() {
        assert_eq!(parse(Some("machine.slice:libpod:abc"), "x").unwrap(), Absolute("/machine.slice/libpod-abc.scope".into()));
        assert_eq!(
            parse(Some("user-1000-app.slice:cri:id1"), "x").unwrap(),
            Absolute("/user.slice/user-1000.slice/user-1000-app.slice/cri-id1.scope".into())
        );
        assert_eq!(parse(Some(":pfx:"), "cid").unwrap(), Absolute("/system.slice/pfx-cid.scope".into()));
        assert_eq!(parse(Some("-.slice::n"), "x").unwrap(), Absolute("/n.scope".into()));
        assert_eq!(parse(Some("system.slice:p:sub.slice"), "x").unwrap(), Absolute("/system.slice/sub.slice".into()));
    }

    #[test]
    fn malformed_systemd_form_is_a_clear_error() {
        let e = parse(Some("a:b"), "x").unwrap_err();
        assert_eq!(e.to_string(), "linux.cgroupsPath: \"a:b\" is neither a path nor systemd's \"slice:prefix:name\"");
        assert!(parse(Some("a:b:c:d"), "x").is_err());
        let e = parse(Some("system:p:n"), "x").unwrap_err();
        assert_eq!(e.to_string(), "linux.cgroupsPath: slice \"system\" must end in \".slice\"");
        assert!(parse(Some("a--b.slice:p:n"), "x").is_err());
        assert!(parse(Some("-a.slice:p:n"), "x").is_err());
        assert!(parse(Some("system.slice:p/q:n"), "x").is_err());
    }
}

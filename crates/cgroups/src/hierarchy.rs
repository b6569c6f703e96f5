//! Which cgroup layout this host has, found from mountinfo at run time: cgroup v1 (possibly
//! "hybrid", with an extra cgroup2 mount that has no controllers) or pure cgroup v2.

use std::path::PathBuf;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::mountinfo::{self, MountEntry};

/// One mounted v1 hierarchy. Comounted controllers (e.g. `cpu,cpuacct`) share one mount; a
/// named hierarchy such as systemd's has the controller `name=systemd`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct V1Mount {
    pub controllers: Vec<String>,
    pub mountpoint: PathBuf,
    /// The cgroup that is mounted (not "/" when a sub-tree is bind-mounted, e.g. in a container).
    pub root: String,
}

/// A cgroup2 mount.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnifiedMount {
    pub mountpoint: PathBuf,
    pub root: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Hierarchy {
    /// cgroup v1; `unified` is the hybrid layout's cgroup2 mount (membership only, no controllers).
    V1 { mounts: Vec<V1Mount>, unified: Option<UnifiedMount> },
    /// Pure cgroup v2.
    V2 { mountpoint: PathBuf, root: String },
}

/// Super options of a v1 mount that are not controller names.
const NON_CONTROLLER_OPTS: &[&str] =
    &["rw", "ro", "noprefix", "clone_children", "xattr", "none", "cpuset_v2_mode", "favordynmods"];

impl Hierarchy {
    /// Classify from mountinfo text. Any v1 mount carrying a real controller means v1 (the
    /// controllers live there); otherwise a cgroup2 mount means pure v2.
    pub fn from_mountinfo(text: &str) -> Result<Hierarchy> {
        let entries = mountinfo::parse(text);
        let mounts = v1_mounts(&entries);
        let unified = unified_mount(&entries);
        let has_controllers = mounts.iter().any(|m| m.controllers.iter().any(|c| !c.starts_with("name=")));
        match (has_controllers, unified) {
            (true, unified) => Ok(Hierarchy::V1 { mounts, unified }),
            (false, Some(u)) => Ok(Hierarchy::V2 { mountpoint: u.mountpoint, root: u.root }),
            (false, None) => Err(Error::Unsupported("no cgroup filesystem is mounted".into())),
        }
    }

    pub fn is_v2(&self) -> bool {
        matches!(self, Hierarchy::V2 { .. })
    }

    /// The v1 mount that holds `controller`.
    pub fn v1_mount(&self, controller: &str) -> Option<&V1Mount> {
        match self {
            Hierarchy::V1 { mounts, .. } => mounts.iter().find(|m| m.controllers.iter().any(|c| c == controller)),
            Hierarchy::V2 { .. } => None,
        }
    }
}

/// One entry per v1 hierarchy. The same hierarchy can be mounted twice (bind mounts); the
/// mount of its real root wins, else the first seen.
fn v1_mounts(entries: &[MountEntry]) -> Vec<V1Mount> {
    let mut out: Vec<V1Mount> = Vec::new();
    for e in entries.iter().filter(|e| e.fstype == "cgroup") {
        let mut controllers: Vec<String> = e
            .super_opts
            .iter()
            .filter(|o| !NON_CONTROLLER_OPTS.contains(&o.as_str()))
            .filter(|o| !o.contains('=') || o.starts_with("name="))
            .cloned()
            .collect();
        controllers.sort();
        if controllers.is_empty() {
            continue;
        }
        let mount = V1Mount { controllers, mountpoint: e.mountpoint.clone(), root: e.root.clone() };
        match out.iter_mut().find(|m| m.controllers == mount.controllers) {
            Some(existing) if existing.root != "/" && mount.root == "/" => *existing = mount,
            Some(_) => {}
            None => out.push(mount),
        }
    }
    out
}

fn unified_mount(entries: &[MountEntry]) -> Option<UnifiedMount> {
    let all: Vec<&MountEntry> = entries.iter().filter(|e| e.fstype == "cgroup2").collect();
    let pick = all.iter().find(|e| e.root == "/").or(all.first())?;
    Some(UnifiedMount { mountpoint: pick.mountpoint.clone(), root: pick.root.clone() })
}

/// The host's layout, read once from /proc/self/mountinfo and cached for the process.
pub fn detect() -> Result<&'static Hierarchy> {
    static CACHE: OnceLock<std::result::Result<Hierarchy, String>> = OnceLock::new();
    let cached = CACHE.get_or_init(|| {
        let text = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| format!("read /proc/self/mountinfo: {e}"))?;
        Hierarchy::from_mountinfo(&text).map_err(|e| e.to_string())
    });
    cached.as_ref().map_err(|e| Error::Unsupported(e.clone()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
";

    pub(crate) const V2: &str = "\
22 1 0:21 / /sys rw - sysfs sysfs rw
30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    #[test]
    fn detects_hybrid() {
        let h = Hierarchy::from_mountinfo(HYBRID).unwrap();
        let Hierarchy::V1 { mounts, unified } = &h else { panic!("expected v1: {h:?}") };
        let names: Vec<String> = mounts.iter().map(|m| m.controllers.join(",")).collect();
        assert_eq!(names, vec!["cpu,cpuacct", "cpuset", "memory", "name=systemd"]);
        assert_eq!(unified.as_ref().unwrap().mountpoint, PathBuf::from("/sys/fs/cgroup/unified"));
        assert_eq!(h.v1_mount("cpuacct").unwrap().mountpoint, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
    }

    #[test]
    fn detects_pure_v1_without_unified() {
        let text: String = HYBRID.lines().filter(|l| !l.contains("cgroup2")).map(|l| format!("{l}\n")).collect();
        let h = Hierarchy::from_mountinfo(&text).unwrap();
        assert!(matches!(h, Hierarchy::V1 { unified: None, .. }));
    }

    #[test]
    fn detects_v2_even_with_a_named_v1_hierarchy() {
        let text = format!("{V2}50 30 0:40 / /run/systemd-compat rw - cgroup cgroup rw,name=systemd\n");
        let h = Hierarchy::from_mountinfo(&text).unwrap();
        assert_eq!(h, Hierarchy::V2 { mountpoint: "/sys/fs/cgroup".into(), root: "/".into() });
    }

    #[test]
    fn prefers_the_root_mount_of_a_hierarchy() {
        let text = "\
60 1 0:32 /docker/x /mnt/mem rw - cgroup cgroup rw,memory
61 1 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
";
        let h = Hierarchy::from_mountinfo(text).unwrap();
        assert_eq!(h.v1_mount("memory").unwrap().mountpoint, PathBuf::from("/sys/fs/cgroup/memory"));
    }

    #[test]
    fn no_cgroup_mount_is_an_error() {
        assert!(Hierarchy::from_mountinfo("22 1 0:21 / /sys rw - sysfs sysfs rw\n").is_err());
    }
}

//! Where one container's cgroup lives on disk: a directory per v1 hierarchy (plus the hybrid
//! cgroup2 one), or a single v2 directory. Resolved once from cgroupsPath, then persisted as is.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::hierarchy::Hierarchy;
use crate::path::{self, CgroupsPath};
use crate::proc_cgroup::{self, ProcCgroup};

/// A cgroup directory and the mount it lives under (needed to walk its ancestors).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dir {
    pub mountpoint: PathBuf,
    pub path: PathBuf,
}

/// The directory of a v1 hierarchy, with the controllers that hierarchy carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct V1Dir {
    pub controllers: Vec<String>,
    pub mountpoint: PathBuf,
    pub path: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "version", rename_all = "lowercase")]
pub enum Layout {
    V1 { dirs: Vec<V1Dir>, unified: Option<Dir> },
    V2 { dir: Dir },
}

impl Layout {
    pub(crate) fn resolve(h: &Hierarchy, own: &[ProcCgroup], cgroups_path: Option<&str>, id: &str) -> Result<Layout> {
        let cp = path::parse(cgroups_path, id)?;
        match h {
            Hierarchy::V2 { mountpoint, root } => {
                let path = place(mountpoint, root, proc_cgroup::unified_path(own), &cp)?;
                Ok(Layout::V2 { dir: Dir { mountpoint: mountpoint.clone(), path } })
            }
            Hierarchy::V1 { mounts, unified } => {
                let dirs = mounts
                    .iter()
                    .map(|m| {
                        let own_path = proc_cgroup::v1_path(own, &m.controllers);
                        let path = place(&m.mountpoint, &m.root, own_path, &cp)?;
                        Ok(V1Dir { controllers: m.controllers.clone(), mountpoint: m.mountpoint.clone(), path })
                    })
                    .collect::<Result<Vec<_>>>()?;
                let unified = match unified {
                    Some(u) => {
                        let path = place(&u.mountpoint, &u.root, proc_cgroup::unified_path(own), &cp)?;
                        Some(Dir { mountpoint: u.mountpoint.clone(), path })
                    }
                    None => None,
                };
                Ok(Layout::V1 { dirs, unified })
            }
        }
    }

    /// Every directory of this cgroup, in a stable order.
    pub(crate) fn all_dirs(&self) -> Vec<&Path> {
        match self {
            Layout::V1 { dirs, unified } => {
                dirs.iter().map(|d| d.path.as_path()).chain(unified.iter().map(|u| u.path.as_path())).collect()
            }
            Layout::V2 { dir } => vec![dir.path.as_path()],
        }
    }

    /// The v1 directory of the hierarchy carrying `controller`.
    pub(crate) fn v1_dir(&self, controller: &str) -> Option<&Path> {
        match self {
            Layout::V1 { dirs, .. } => {
                dirs.iter().find(|d| d.controllers.iter().any(|c| c == controller)).map(|d| d.path.as_path())
            }
            Layout::V2 { .. } => None,
        }
    }
}

/// The on-disk directory for `cp` in one hierarchy mounted at `mountpoint` (whose mounted
/// cgroup is `root`); `own` is the runtime's own cgroup in that hierarchy.
fn place(mountpoint: &Path, root: &str, own: Option<&str>, cp: &CgroupsPath) -> Result<PathBuf> {
    match cp {
        CgroupsPath::Absolute(p) => Ok(mountpoint.join(p.trim_start_matches('/'))),
        CgroupsPath::Relative(p) => {
            let own = own.ok_or_else(|| {
                Error::Unsupported(format!(
                    "cannot place relative cgroupsPath {p:?}: own cgroup for {} not in /proc/self/cgroup",
                    mountpoint.display()
                ))
            })?;
            Ok(mountpoint.join(below_root(own, root)?).join(p))
        }
    }
}

/// `own` relative to the mounted `root`; fails when the runtime sits outside the mounted
/// sub-tree (e.g. "/.." paths of a process outside its cgroup namespace).
fn below_root(own: &str, root: &str) -> Result<String> {
    let outside = || Error::Unsupported(format!("own cgroup {own:?} is outside the mounted cgroup {root:?}"));
    if own.split('/').any(|c| c == "..") {
        return Err(outside());
    }
    let root = root.trim_end_matches('/');
    let rest = if root.is_empty() {
        own
    } else if own == root {
        ""
    } else {
        own.strip_prefix(root).filter(|r| r.starts_with('/')).ok_or_else(outside)?
    };
    Ok(rest.trim_start_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hierarchy::tests::{HYBRID, V2};

    fn own_hybrid() -> Vec<ProcCgroup> {
        proc_cgroup::parse("9:name=systemd:/init.scope\n4:memory:/sandbox/job1\n2:cpu,cpuacct:/\n3:cpuset:/\n0::/init.scope\n")
            .unwrap()
    }

    fn dirs_of(l: &Layout) -> Vec<String> {
        l.all_dirs().iter().map(|p| p.display().to_string()).collect()
    }

    #[test]
    fn absolute_path_is_below_every_mount() {
        let h = Hierarchy::from_mountinfo(HYBRID).unwrap();
        let l = Layout::resolve(&h, &own_hybrid(), None, "c1").unwrap();
        assert_eq!(
            dirs_of(&l),
            vec![
                "/sys/fs/cgroup/cpu,cpuacct/conductor/c1",
                "/sys/fs/cgroup/cpuset/conductor/c1",
                "/sys/fs/cgroup/memory/conductor/c1",
                "/sys/fs/cgroup/systemd/conductor/c1",
                "/sys/fs/cgroup/unified/conductor/c1",
            ]
        );
        assert_eq!(l.v1_dir("cpuacct").unwrap(), Path::new("/sys/fs/cgroup/cpu,cpuacct/conductor/c1"));
    }

    #[test]
    fn relative_path_is_below_own_cgroup_per_hierarchy() {
        let h = Hierarchy::from_mountinfo(HYBRID).unwrap();
        let l = Layout::resolve(&h, &own_hybrid(), Some("t/1"), "c1").unwrap();
        assert_eq!(
            dirs_of(&l),
            vec![
                "/sys/fs/cgroup/cpu,cpuacct/t/1",
                "/sys/fs/cgroup/cpuset/t/1",
                "/sys/fs/cgroup/memory/sandbox/job1/t/1",
                "/sys/fs/cgroup/systemd/init.scope/t/1",
                "/sys/fs/cgroup/unified/init.scope/t/1",
            ]
        );
    }

    #[test]
    fn v2_relative_and_systemd() {
        let h = Hierarchy::from_mountinfo(V2).unwrap();
        let own = proc_cgroup::parse("0::/user.slice/user-0.slice/session-1.scope\n").unwrap();
        let l = Layout::resolve(&h, &own, Some("ctr"), "c1").unwrap();
        assert_eq!(dirs_of(&l), vec!["/sys/fs/cgroup/user.slice/user-0.slice/session-1.scope/ctr"]);
        let l = Layout::resolve(&h, &own, Some("machine.slice:libpod:c1"), "c1").unwrap();
        assert_eq!(dirs_of(&l), vec!["/sys/fs/cgroup/machine.slice/libpod-c1.scope"]);
    }

    #[test]
    fn mount_root_is_stripped_from_own_path() {
        assert_eq!(below_root("/docker/x/sub", "/docker/x").unwrap(), "sub");
        assert_eq!(below_root("/docker/x", "/docker/x").unwrap(), "");
        assert!(below_root("/docker/xy", "/docker/x").is_err());
        assert!(below_root("/../other", "/").is_err());
    }

    #[test]
    fn layout_round_trips_through_json() {
        let h = Hierarchy::from_mountinfo(HYBRID).unwrap();
        let l = Layout::resolve(&h, &own_hybrid(), None, "c1").unwrap();
        let json = serde_json::to_string(&l).unwrap();
        assert!(json.contains("\"version\":\"v1\""));
        assert_eq!(serde_json::from_str::<Layout>(&json).unwrap(), l);
    }
}

//! cgroup v1 specifics of making the directories: every hierarchy gets the same cgroup, and
//! cpuset directories start with empty cpus/mems, which would make joining them fail.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::fs;
use crate::layout::{Dir, V1Dir};

/// Every directory this call made is pushed to `made`, parents first (for the caller's undo).
pub(crate) fn create(dirs: &[V1Dir], unified: Option<&Dir>, made: &mut Vec<PathBuf>) -> Result<()> {
    for d in dirs {
        let is_cpuset = d.controllers.iter().any(|c| c == "cpuset");
        mkdir_p(&d.mountpoint, &d.path, made, |level| if is_cpuset { inherit_cpuset(level) } else { Ok(()) })?;
    }
    if let Some(u) = unified {
        mkdir_p(&u.mountpoint, &u.path, made, |_| Ok(()))?;
    }
    Ok(())
}

/// mkdir every level from the mount down to `path`, calling `each` on every level (new or
/// old) below the mount, parents first; the levels made now are pushed to `made`.
pub(crate) fn mkdir_p(
    mountpoint: &Path,
    path: &Path,
    made: &mut Vec<PathBuf>,
    mut each: impl FnMut(&Path) -> Result<()>,
) -> Result<()> {
    let rel = path.strip_prefix(mountpoint).unwrap_or(path);
    let mut cur = mountpoint.to_path_buf();
    for comp in rel.components() {
        cur.push(comp);
        if fs::mkdir(&cur)? {
            made.push(cur.clone());
        }
        each(&cur)?;
    }
    Ok(())
}

/// As runc does: a cpuset cgroup with empty cpus or mems cannot take tasks, so copy the
/// parent's values into any level that has none.
fn inherit_cpuset(dir: &Path) -> Result<()> {
    let parent = dir.parent().unwrap_or(dir);
    for file in ["cpuset.cpus", "cpuset.mems"] {
        if fs::read_trim(&dir.join(file))?.is_empty() {
            let value = fs::read_trim(&parent.join(file))?;
            fs::write(&dir.join(file), &value)?;
        }
    }
    Ok(())
}

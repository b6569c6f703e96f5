//! cgroup v2 specifics of making the directory: a controller's files only appear in a cgroup
//! when every ancestor enables that controller in its cgroup.subtree_control.

use std::collections::BTreeSet;
use std::path::Path;

use crate::error::Result;
use crate::fs;
use crate::layout::Dir;

/// Every directory this call made is pushed to `made`, parents first (for the caller's undo).
pub(crate) fn create(dir: &Dir, made: &mut Vec<std::path::PathBuf>) -> Result<()> {
    let rel = dir.path.strip_prefix(&dir.mountpoint).unwrap_or(&dir.path);
    let mut cur = dir.mountpoint.clone();
    for comp in rel.components() {
        enable_controllers(&cur);
        cur.push(comp);
        if fs::mkdir(&cur)? {
            made.push(cur.clone());
        }
    }
    Ok(())
}

pub(crate) fn controllers(dir: &Path, file: &str) -> BTreeSet<String> {
    fs::read(&dir.join(file)).map(|s| s.split_whitespace().map(str::to_string).collect()).unwrap_or_default()
}

/// Enable for children every controller `dir` has, like runc. Failure is not fatal: a cgroup
/// with processes of its own (e.g. the runtime's, for a relative cgroupsPath) cannot delegate
/// controllers, and the limits that need them will then fail with a clear message in apply.
fn enable_controllers(dir: &Path) {
    let available = controllers(dir, "cgroup.controllers");
    let enabled = controllers(dir, "cgroup.subtree_control");
    let missing: Vec<&String> = available.difference(&enabled).collect();
    if missing.is_empty() {
        return;
    }
    let file = dir.join("cgroup.subtree_control");
    let all = missing.iter().map(|c| format!("+{c}")).collect::<Vec<_>>().join(" ");
    if fs::write(&file, &all).is_ok() {
        return;
    }
    // One at a time, so one refusal (say cpu, with realtime tasks about) costs only itself.
    for c in missing {
        if let Err(e) = fs::write(&file, &format!("+{c}")) {
            tracing::warn!(controller = %c, error = %e, "cannot enable cgroup controller for children");
        }
    }
}

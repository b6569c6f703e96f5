//! Executing a plan: write each file; if the kernel refuses one, put back the earlier
//! single-value writes (in reverse) so a failed update does not leave half its limits behind.

use std::path::PathBuf;

use super::{Step, Write};
use crate::devices;
use crate::error::{Error, Result};
use crate::fs;
use crate::layout::Layout;

/// Writes done so far that can be undone: (file, value it had before).
type Undo = Vec<(PathBuf, String)>;

pub(crate) fn execute(layout: &Layout, steps: &[Step]) -> Result<()> {
    let mut undo = Undo::new();
    let mut deferred: Vec<(PathBuf, &Write)> = Vec::new();
    for step in steps {
        let result = match step {
            Step::Write(w) => write_step(layout, w, &mut undo, &mut deferred),
            Step::DeviceProgram(rules) => match layout {
                Layout::V2 { dir } => devices::attach_program(&dir.path, rules),
                Layout::V1 { .. } => Err(Error::Unsupported("device programs need cgroup v2".into())),
            },
        };
        if let Err(e) = result {
            rollback(undo);
            return Err(e);
        }
    }
    for (path, w) in deferred {
        if let Err(e) = fs::write(&path, &w.value) {
            rollback(undo);
            return Err(e);
        }
    }
    Ok(())
}

fn write_step<'a>(layout: &Layout, w: &'a Write, undo: &mut Undo, deferred: &mut Vec<(PathBuf, &'a Write)>) -> Result<()> {
    let path = file_path(layout, w)?;
    let before = if w.restorable { fs::read_trim(&path).ok() } else { None };
    match fs::write(&path, &w.value) {
        Ok(()) => {
            undo.extend(before.map(|b| (path, b)));
            Ok(())
        }
        Err(e) if w.retry_last_on_einval && e.raw_os_error() == Some(libc::EINVAL) => {
            undo.extend(before.map(|b| (path.clone(), b)));
            deferred.push((path, w));
            Ok(())
        }
        Err(e) => Err(e),
    }
}

fn file_path(layout: &Layout, w: &Write) -> Result<PathBuf> {
    match layout {
        Layout::V2 { dir } => Ok(dir.path.join(&w.file)),
        Layout::V1 { .. } => layout
            .v1_dir(&w.controller)
            .map(|d| d.join(&w.file))
            .ok_or_else(|| Error::Unsupported(format!("the {} controller is not mounted", w.controller))),
    }
}

fn rollback(undo: Undo) {
    for (path, value) in undo.into_iter().rev() {
        if let Err(e) = fs::write(&path, &value) {
            tracing::warn!(path = %path.display(), error = %e, "could not restore cgroup file after a failed update");
        }
    }
}

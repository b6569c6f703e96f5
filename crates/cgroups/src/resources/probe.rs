//! The live [`Probe`]: answers from the host's sysfs and the cgroup's own directories.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::Probe;
use crate::fs;
use crate::layout::Layout;
use crate::v2;

pub(crate) struct LiveProbe<'a> {
    layout: &'a Layout,
    /// v2: controllers available in the cgroup (its parent's subtree_control).
    v2_controllers: BTreeSet<String>,
}

impl<'a> LiveProbe<'a> {
    pub fn new(layout: &'a Layout) -> Self {
        let v2_controllers = match layout {
            Layout::V2 { dir } => v2::controllers(&dir.path, "cgroup.controllers"),
            Layout::V1 { .. } => BTreeSet::new(),
        };
        LiveProbe { layout, v2_controllers }
    }

    fn dir(&self, controller: &str) -> Option<&Path> {
        match self.layout {
            Layout::V1 { .. } => self.layout.v1_dir(controller),
            Layout::V2 { dir } => Some(&dir.path),
        }
    }

    fn file(&self, controller: &str, file: &str) -> Option<PathBuf> {
        self.dir(controller).map(|d| d.join(file))
    }
}

impl Probe for LiveProbe<'_> {
    fn is_v2(&self) -> bool {
        matches!(self.layout, Layout::V2 { .. })
    }

    fn has_controller(&self, controller: &str) -> bool {
        match self.layout {
            Layout::V1 { .. } => self.dir(controller).is_some_and(Path::is_dir),
            Layout::V2 { .. } => self.v2_controllers.contains(controller),
        }
    }

    fn exists(&self, controller: &str, file: &str) -> bool {
        self.file(controller, file).is_some_and(|f| f.exists())
    }

    fn read(&self, controller: &str, file: &str) -> Option<String> {
        fs::read_trim(&self.file(controller, file)?).ok()
    }

    fn online_cpus(&self) -> Option<String> {
        fs::read_trim(Path::new("/sys/devices/system/cpu/online")).ok()
    }

    fn online_mems(&self) -> Option<String> {
        // Kernels without NUMA have no node directory; their one node is 0.
        let node = Path::new("/sys/devices/system/node");
        if !node.exists() {
            return Some("0".into());
        }
        fs::read_trim(&node.join("online")).ok()
    }
}

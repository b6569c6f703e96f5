//! A container's cgroup, found through the layout the runtime saved in its state.json, and
//! the kernel's figures read from it in the same terms on cgroup v1 and v2.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// A container's cgroup as the runtime recorded it (state.json), read file by file.
pub struct Cg {
    pub v2: bool,
    layout: Value,
}

impl Cg {
    /// The cgroup of runtime container `id` under the runtime root `root`.
    pub fn of(root: &Path, id: &str) -> Cg {
        let p = root.join(id).join("state.json");
        let st: Value = serde_json::from_slice(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap();
        let layout = st["cgroup"]["layout"].clone();
        Cg { v2: layout["version"] == "v2", layout }
    }

    /// The cgroup of engine container `name`.
    pub fn of_engine(e: &super::engine::Engine, name: &str) -> Cg {
        Cg::of(&e.dir.join("run/runtime"), name)
    }

    /// The directory holding `controller`'s files (the one directory on v2).
    pub fn dir(&self, controller: &str) -> PathBuf {
        if self.v2 {
            return PathBuf::from(self.layout["dir"]["path"].as_str().unwrap());
        }
        let d = self.layout["dirs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["controllers"].as_array().unwrap().iter().any(|c| c == controller));
        PathBuf::from(d.unwrap_or_else(|| panic!("no {controller} hierarchy"))["path"].as_str().unwrap())
    }

    pub fn read(&self, controller: &str, file: &str) -> String {
        let p = self.dir(controller).join(file);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).trim().to_string()
    }

    pub fn keyed(&self, controller: &str, file: &str, key: &str) -> u64 {
        let text = self.read(controller, file);
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{file}: no {key}"))
    }

    /// Total CPU time in nanoseconds.
    pub fn cpu_ns(&self) -> u64 {
        if self.v2 {
            self.keyed("cpu", "cpu.stat", "usage_usec") * 1000
        } else {
            self.read("cpuacct", "cpuacct.usage").parse().unwrap()
        }
    }

    pub fn nr_throttled(&self) -> u64 {
        self.keyed("cpu", "cpu.stat", "nr_throttled")
    }

    /// The CFS quota in microseconds, None when unlimited.
    pub fn cpu_quota(&self) -> Option<i64> {
        let q = if self.v2 {
            self.read("cpu", "cpu.max").split_whitespace().next().unwrap().to_string()
        } else {
            self.read("cpu", "cpu.cfs_quota_us")
        };
        match q.as_str() {
            "max" | "-1" => None,
            n => Some(n.parse().unwrap()),
        }
    }

    /// The CFS period in microseconds.
    pub fn cpu_period(&self) -> u64 {
        if self.v2 {
            self.read("cpu", "cpu.max").split_whitespace().nth(1).unwrap().parse().unwrap()
        } else {
            self.read("cpu", "cpu.cfs_period_us").parse().unwrap()
        }
    }

    pub fn cpuset_cpus(&self) -> String {
        self.read("cpuset", "cpuset.cpus")
    }

    /// The memory+swap limit (v1's memsw; on v2 memory.max + memory.swap.max), None when
    /// unlimited or not accounted.
    pub fn memory_swap_limit(&self) -> Option<u64> {
        let swap = if self.v2 { "memory.swap.max" } else { "memory.memsw.limit_in_bytes" };
        if !self.dir("memory").join(swap).exists() {
            return None;
        }
        let n: u64 = self.read("memory", swap).parse().ok()?;
        let total = if self.v2 { n.checked_add(self.memory_limit())? } else { n };
        (total < i64::MAX as u64 - 4096 * 2).then_some(total)
    }

    pub fn memory_limit(&self) -> u64 {
        let f = if self.v2 { "memory.max" } else { "memory.limit_in_bytes" };
        self.read("memory", f).parse().unwrap_or(u64::MAX)
    }

    pub fn memory_usage(&self) -> u64 {
        let f = if self.v2 { "memory.current" } else { "memory.usage_in_bytes" };
        self.read("memory", f).parse().unwrap()
    }

    /// Usage as Docker counts it: without inactive page cache.
    pub fn memory_working_set(&self) -> u64 {
        let key = if self.v2 { "inactive_file" } else { "total_inactive_file" };
        self.memory_usage().saturating_sub(self.keyed("memory", "memory.stat", key))
    }

    pub fn pids_current(&self) -> u64 {
        self.read("pids", "pids.current").parse().unwrap()
    }

    pub fn pids_max(&self) -> String {
        self.read("pids", "pids.max")
    }

    /// Every limit `update` can touch, to compare before and after a refused change.
    pub fn limits(&self) -> (Option<i64>, u64, String) {
        (self.cpu_quota(), self.memory_limit(), self.pids_max())
    }
}

//! `linux.resources` -> a list of cgroup file writes. Planning is pure: it validates all input
//! against what a [`Probe`] reports about the host and the live cgroup, and either fails before
//! anything is written or yields the complete, ordered list of writes. Execution
//! ([`apply::execute`]) then writes them, undoing earlier single-value writes if the kernel
//! refuses a later one.

pub(crate) mod apply;
mod blkio;
mod cpu;
pub(crate) mod cpuset;
mod hugetlb;
mod memory;
mod network;
mod pids;
pub(crate) mod probe;
mod rdma;
mod unified;

use oci_spec::runtime::LinuxResources;

use crate::devices::{self, DeviceRule};
use crate::error::{Error, Result};

/// What planning may ask about the host and the cgroup being updated. `controller` is a v1
/// controller name (or v2 for v2 hosts) and selects the directory on v1; on v2 every file is in
/// the one directory.
pub(crate) trait Probe {
    fn is_v2(&self) -> bool;
    fn has_controller(&self, controller: &str) -> bool;
    fn exists(&self, controller: &str, file: &str) -> bool;
    /// A file's trimmed content, None when absent or unreadable.
    fn read(&self, controller: &str, file: &str) -> Option<String>;
    fn online_cpus(&self) -> Option<String>;
    fn online_mems(&self) -> Option<String>;
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Write {
    pub controller: String,
    pub file: String,
    pub value: String,
    /// A single-value file: reading it back gives a value that can be written to undo this.
    pub restorable: bool,
    /// v1 cpu.cfs_period_us: the kernel may refuse a new period until the new quota is in
    /// (old quota / new period can exceed the parent's limit); on EINVAL retry after the rest.
    pub retry_last_on_einval: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Write(Write),
    /// v2: replace the cgroup's eBPF device program with one enforcing these rules.
    DeviceProgram(Vec<DeviceRule>),
}

pub(crate) struct Planner<'a> {
    pub probe: &'a dyn Probe,
    pub steps: Vec<Step>,
}

impl Planner<'_> {
    pub fn v2(&self) -> bool {
        self.probe.is_v2()
    }

    fn push(&mut self, controller: &str, file: &str, value: String, restorable: bool) {
        self.steps.push(Step::Write(Write {
            controller: controller.into(),
            file: file.into(),
            value,
            restorable,
            retry_last_on_einval: false,
        }));
    }

    /// Plan a write to a single-value file.
    pub fn scalar(&mut self, controller: &str, file: &str, value: impl ToString) {
        self.push(controller, file, value.to_string(), true);
    }

    /// Plan a write to a file that holds a table (devices, io.max, ...): not undoable.
    pub fn entry(&mut self, controller: &str, file: &str, value: impl ToString) {
        self.push(controller, file, value.to_string(), false);
    }

    pub fn exists(&self, controller: &str, file: &str) -> bool {
        self.probe.exists(controller, file)
    }

    /// Fail with `field: the X controller is not available` unless the cgroup has it.
    pub fn require(&self, controller: &str, field: &str) -> Result<()> {
        if self.probe.has_controller(controller) {
            return Ok(());
        }
        let where_ = if self.v2() { "enabled for this cgroup" } else { "mounted" };
        Err(Error::invalid(field, format!("the {controller} controller is not {where_}")))
    }
}

/// Validate everything and return the writes, in order. Typed fields come first, then
/// `unified` (so its raw values win, as in runc), then devices (the step that cannot be undone).
pub(crate) fn plan(r: &LinuxResources, probe: &dyn Probe) -> Result<Vec<Step>> {
    let mut p = Planner { probe, steps: Vec::new() };
    if let Some(c) = r.cpu() {
        cpu::plan(&mut p, c)?;
        cpuset::plan(&mut p, c)?;
    }
    if let Some(m) = r.memory() {
        memory::plan(&mut p, m)?;
    }
    if let Some(pids) = r.pids() {
        pids::plan(&mut p, pids)?;
    }
    if let Some(b) = r.block_io() {
        blkio::plan(&mut p, b)?;
    }
    if let Some(h) = r.hugepage_limits() {
        hugetlb::plan(&mut p, h)?;
    }
    if let Some(n) = r.network() {
        network::plan(&mut p, n)?;
    }
    if let Some(rd) = r.rdma() {
        rdma::plan(&mut p, rd)?;
    }
    if let Some(u) = r.unified() {
        unified::plan(&mut p, u)?;
    }
    if let Some(d) = r.devices() {
        devices::plan(&mut p, d)?;
    }
    Ok(p.steps)
}

#[cfg(test)]
pub(crate) mod fake {
    //! A probe over an in-memory file table, for planning tests without a cgroup.

    use std::collections::BTreeMap;

    use super::Probe;

    pub struct FakeProbe {
        pub v2: bool,
        pub controllers: Vec<&'static str>,
        /// "controller/file" -> content
        pub files: BTreeMap<String, String>,
        pub cpus: &'static str,
        pub mems: &'static str,
    }

    impl FakeProbe {
        pub fn v1() -> Self {
            let mut p = FakeProbe {
                v2: false,
                controllers: vec![
                    "cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "devices", "freezer", "hugetlb", "net_cls",
                    "net_prio", "rdma",
                ],
                files: BTreeMap::new(),
                cpus: "0-3",
                mems: "0",
            };
            for f in [
                "cpu/cpu.shares",
                "cpu/cpu.cfs_quota_us",
                "cpu/cpu.cfs_period_us",
                "cpu/cpu.rt_period_us",
                "cpu/cpu.rt_runtime_us",
                "cpu/cpu.idle",
                "memory/memory.memsw.limit_in_bytes",
                "memory/memory.swappiness",
                "blkio/blkio.bfq.weight",
                "blkio/blkio.bfq.weight_device",
                "hugetlb/hugetlb.2MB.limit_in_bytes",
            ] {
                p.files.insert(f.into(), String::new());
            }
            p.set("memory/memory.limit_in_bytes", "9223372036854771712");
            p.set("memory/memory.usage_in_bytes", "1048576");
            p.set("memory/memory.use_hierarchy", "1");
            p
        }

        pub fn v2() -> Self {
            let mut p = FakeProbe {
                v2: true,
                controllers: vec!["cpu", "cpuset", "memory", "pids", "io", "hugetlb", "rdma"],
                files: BTreeMap::new(),
                cpus: "0-1",
                mems: "0",
            };
            for f in [
                "cpu.weight",
                "cpu.idle",
                "cpu.max.burst",
                "memory.swap.max",
                "memory.low",
                "io.weight",
                "hugetlb.2MB.max",
                "hugetlb.2MB.rsvd.max",
            ] {
                p.files.insert(format!("-/{f}"), String::new());
            }
            p.set("-/cpu.max", "max 100000");
            p.set("-/memory.current", "1048576");
            p.set("-/memory.max", "max");
            p
        }

        pub fn set(&mut self, key: &str, value: &str) {
            self.files.insert(key.into(), value.into());
        }

        fn key(&self, controller: &str, file: &str) -> String {
            if self.v2 {
                format!("-/{file}")
            } else {
                format!("{controller}/{file}")
            }
        }
    }

    impl Probe for FakeProbe {
        fn is_v2(&self) -> bool {
            self.v2
        }
        fn has_controller(&self, c: &str) -> bool {
            self.controllers.contains(&c)
        }
        fn exists(&self, c: &str, file: &str) -> bool {
            self.files.contains_key(&self.key(c, file)) && (self.v2 || self.has_controller(c))
        }
        fn read(&self, c: &str, file: &str) -> Option<String> {
            self.files.get(&self.key(c, file)).cloned()
        }
        fn online_cpus(&self) -> Option<String> {
            Some(self.cpus.into())
        }
        fn online_mems(&self) -> Option<String> {
            Some(self.mems.into())
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::fake::FakeProbe;
    use super::*;

    /// Plan from a JSON `linux.resources` object.
    pub fn plan_json(probe: &FakeProbe, json: &str) -> Result<Vec<Step>> {
        let r: LinuxResources = serde_json::from_str(json).expect("test JSON");
        plan(&r, probe)
    }

    /// The planned writes as "file=value" strings.
    pub fn writes(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .map(|s| match s {
                Step::Write(w) => format!("{}={}", w.file, w.value),
                Step::DeviceProgram(r) => format!("<bpf {} rules>", r.len()),
            })
            .collect()
    }

    pub fn err(probe: &FakeProbe, json: &str) -> String {
        plan_json(probe, json).expect_err("expected a validation error").to_string()
    }

    #[test]
    fn validation_error_means_no_writes_at_all() {
        // cpu is valid, memory is not: nothing may be planned.
        let e = err(&FakeProbe::v1(), r#"{"cpu":{"shares":512},"memory":{"swappiness":101}}"#);
        assert_eq!(e, "linux.resources.memory.swappiness: must be between 0 and 100, got 101");
    }

    #[test]
    fn unified_comes_after_typed_fields_and_devices_last() {
        let p = FakeProbe::v2();
        let steps =
            plan_json(&p, r#"{"devices":[{"allow":false,"access":"rwm"}],"unified":{"cpu.weight":"7"},"cpu":{"shares":1024}}"#)
                .unwrap();
        assert_eq!(writes(&steps), vec!["cpu.weight=100", "cpu.weight=7", "<bpf 1 rules>"]);
    }

    #[test]
    fn missing_controller_is_named() {
        let mut p = FakeProbe::v1();
        p.controllers.retain(|c| *c != "pids");
        assert_eq!(err(&p, r#"{"pids":{"limit":5}}"#), "linux.resources.pids: the pids controller is not mounted");
    }
}

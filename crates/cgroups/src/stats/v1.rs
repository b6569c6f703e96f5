//! Stats from v1 controller files.

use std::collections::BTreeMap;
use std::path::Path;

use super::{parse_dev, read_keyed, read_num, BlkioEntry, Hugetlb, MemoryEntry, Stats};
use crate::error::{Error, Result};
use crate::fs;
use crate::layout::Layout;

pub(crate) fn read(layout: &Layout) -> Result<Stats> {
    let mut s = Stats::default();
    if let Some(d) = layout.v1_dir("cpuacct") {
        cpuacct(d, &mut s);
    }
    if let Some(d) = layout.v1_dir("cpu") {
        let st = read_keyed(&d.join("cpu.stat"));
        s.cpu.throttling.periods = st.get("nr_periods").copied().unwrap_or(0);
        s.cpu.throttling.throttled_periods = st.get("nr_throttled").copied().unwrap_or(0);
        s.cpu.throttling.throttled_time = st.get("throttled_time").copied().unwrap_or(0);
    }
    if let Some(d) = layout.v1_dir("memory") {
        memory(d, &mut s);
    }
    if let Some(d) = layout.v1_dir("pids") {
        s.pids.current = read_num(&d.join("pids.current"), 0);
        s.pids.limit = read_num(&d.join("pids.max"), 0);
    }
    if let Some(d) = layout.v1_dir("blkio") {
        blkio(d, &mut s);
    }
    if let Some(d) = layout.v1_dir("hugetlb") {
        s.hugetlb = hugetlb(d);
    }
    Ok(s)
}

fn cpuacct(d: &Path, s: &mut Stats) {
    let u = &mut s.cpu.usage;
    u.total = read_num(&d.join("cpuacct.usage"), 0);
    u.percpu = read_list(&d.join("cpuacct.usage_percpu"));
    u.percpu_kernel = read_list(&d.join("cpuacct.usage_percpu_sys"));
    u.percpu_user = read_list(&d.join("cpuacct.usage_percpu_user"));
    // Nanosecond totals where the kernel has them; cpuacct.stat counts clock ticks.
    if d.join("cpuacct.usage_sys").exists() {
        u.kernel = read_num(&d.join("cpuacct.usage_sys"), 0);
        u.user = read_num(&d.join("cpuacct.usage_user"), 0);
    } else {
        let st = read_keyed(&d.join("cpuacct.stat"));
        let ns_per_tick = 1_000_000_000 / clock_ticks();
        u.kernel = st.get("system").copied().unwrap_or(0) * ns_per_tick;
        u.user = st.get("user").copied().unwrap_or(0) * ns_per_tick;
    }
}

fn clock_ticks() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as u64,
        _ => 100,
    }
}

fn read_list(path: &Path) -> Vec<u64> {
    fs::read(path).map(|s| s.split_whitespace().filter_map(|n| n.parse().ok()).collect()).unwrap_or_default()
}

fn memory(d: &Path, s: &mut Stats) {
    let entry = |prefix: &str| MemoryEntry {
        limit: read_num(&d.join(format!("{prefix}.limit_in_bytes")), 0),
        usage: read_num(&d.join(format!("{prefix}.usage_in_bytes")), 0),
        max: read_num(&d.join(format!("{prefix}.max_usage_in_bytes")), 0),
        failcnt: read_num(&d.join(format!("{prefix}.failcnt")), 0),
    };
    s.memory.usage = entry("memory");
    s.memory.swap = entry("memory.memsw");
    s.memory.kernel = entry("memory.kmem");
    s.memory.kernel_tcp = entry("memory.kmem.tcp");
    s.memory.raw = read_keyed(&d.join("memory.stat"));
    s.memory.cache = s.memory.raw.get("cache").copied().unwrap_or(0);
}

/// The CFQ files if present, else BFQ's, else the throttle layer's (always there), as runc.
fn blkio(d: &Path, s: &mut Stats) {
    let prefix = ["blkio.", "blkio.bfq.", "blkio.throttle."]
        .into_iter()
        .find(|p| d.join(format!("{p}io_serviced_recursive")).exists())
        .unwrap_or("blkio.throttle.");
    s.blkio.io_service_bytes_recursive = blkio_entries(&d.join(format!("{prefix}io_service_bytes_recursive")));
    s.blkio.io_serviced_recursive = blkio_entries(&d.join(format!("{prefix}io_serviced_recursive")));
}

/// "8:0 Read 4096" lines; the "Total" lines are dropped.
pub(crate) fn parse_blkio(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let [dev, op, value] = f[..] else { return None };
            let (major, minor) = parse_dev(dev)?;
            Some(BlkioEntry { major, minor, op: op.to_string(), value: value.parse().ok()? })
        })
        .collect()
}

fn blkio_entries(path: &Path) -> Vec<BlkioEntry> {
    fs::read(path).map(|s| parse_blkio(&s)).unwrap_or_default()
}

fn hugetlb(d: &Path) -> BTreeMap<String, Hugetlb> {
    let mut out = BTreeMap::new();
    for size in hugetlb_sizes(d, ".limit_in_bytes") {
        let f = |suffix: &str| d.join(format!("hugetlb.{size}.{suffix}"));
        let h = Hugetlb {
            usage: read_num(&f("usage_in_bytes"), 0),
            max: read_num(&f("max_usage_in_bytes"), 0),
            failcnt: read_num(&f("failcnt"), 0),
        };
        out.insert(size, h);
    }
    out
}

/// Page sizes with a `hugetlb.<size><suffix>` file in `d` (the reservation files excluded).
pub(crate) fn hugetlb_sizes(d: &Path, suffix: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(d) else {
        return Vec::new();
    };
    let mut sizes: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_prefix("hugetlb.")?.strip_suffix(suffix).map(str::to_string))
        .filter(|s| !s.contains('.'))
        .collect();
    sizes.sort();
    sizes
}

pub(crate) fn oom_kill_count(layout: &Layout) -> Result<u64> {
    let d = layout.v1_dir("memory").ok_or_else(|| Error::Unsupported("the memory controller is not mounted".into()))?;
    let file = d.join("memory.oom_control");
    let st = super::parse_flat_keyed(&fs::read(&file)?);
    st.get("oom_kill")
        .copied()
        .ok_or_else(|| Error::parse(file.display().to_string(), "no oom_kill line (kernel older than 4.13?)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blkio_lines() {
        let e = parse_blkio("8:0 Read 4096\n8:0 Write 0\n8:16 Sync 7\nTotal 4103\n");
        assert_eq!(e.len(), 3);
        assert_eq!(e[0], BlkioEntry { major: 8, minor: 0, op: "Read".into(), value: 4096 });
        assert_eq!(e[2].minor, 16);
    }
}

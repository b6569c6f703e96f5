//! Stats from a v2 directory, converted to runc's (v1-shaped) figures the way runc does.

use std::collections::BTreeMap;
use std::path::Path;

use super::{parse_dev, parse_flat_keyed, read_keyed, read_num, BlkioEntry, Hugetlb, Stats};
use crate::error::{Error, Result};
use crate::fs;

pub(crate) fn read(dir: &Path) -> Result<Stats> {
    let mut s = Stats::default();
    cpu(dir, &mut s);
    memory(dir, &mut s);
    s.pids.current = read_num(&dir.join("pids.current"), 0);
    s.pids.limit = read_num(&dir.join("pids.max"), 0);
    if let Ok(text) = fs::read(&dir.join("io.stat")) {
        let (bytes, ios) = parse_io_stat(&text);
        s.blkio.io_service_bytes_recursive = bytes;
        s.blkio.io_serviced_recursive = ios;
    }
    s.hugetlb = hugetlb(dir);
    Ok(s)
}

fn cpu(dir: &Path, s: &mut Stats) {
    let st = read_keyed(&dir.join("cpu.stat"));
    let us = |k: &str| st.get(k).copied().unwrap_or(0) * 1000;
    s.cpu.usage.total = us("usage_usec");
    s.cpu.usage.user = us("user_usec");
    s.cpu.usage.kernel = us("system_usec");
    s.cpu.throttling.periods = st.get("nr_periods").copied().unwrap_or(0);
    s.cpu.throttling.throttled_periods = st.get("nr_throttled").copied().unwrap_or(0);
    s.cpu.throttling.throttled_time = us("throttled_usec");
}

fn memory(dir: &Path, s: &mut Stats) {
    let m = &mut s.memory;
    m.usage.usage = read_num(&dir.join("memory.current"), 0);
    m.usage.limit = read_num(&dir.join("memory.max"), u64::MAX);
    m.usage.max = read_num(&dir.join("memory.peak"), 0);
    m.usage.failcnt = read_keyed(&dir.join("memory.events")).get("max").copied().unwrap_or(0);
    // v1 reported memory+swap; runc keeps that meaning on v2, so add the two.
    if dir.join("memory.swap.current").exists() {
        m.swap.usage = read_num(&dir.join("memory.swap.current"), 0).saturating_add(m.usage.usage);
        m.swap.limit = read_num(&dir.join("memory.swap.max"), u64::MAX).saturating_add(m.usage.limit);
        m.swap.max = read_num(&dir.join("memory.swap.peak"), 0);
        m.swap.failcnt = read_keyed(&dir.join("memory.swap.events")).get("fail").copied().unwrap_or(0);
    }
    m.raw = read_keyed(&dir.join("memory.stat"));
    m.cache = m.raw.get("file").copied().unwrap_or(0);
}

/// io.stat: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0" per device.
pub(crate) fn parse_io_stat(text: &str) -> (Vec<BlkioEntry>, Vec<BlkioEntry>) {
    let (mut bytes, mut ios) = (Vec::new(), Vec::new());
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some((major, minor)) = fields.next().and_then(parse_dev) else {
            continue;
        };
        for kv in fields {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse::<u64>() else {
                continue;
            };
            let (list, op) = match k {
                "rbytes" => (&mut bytes, "Read"),
                "wbytes" => (&mut bytes, "Write"),
                "rios" => (&mut ios, "Read"),
                "wios" => (&mut ios, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry { major, minor, op: op.into(), value });
        }
    }
    (bytes, ios)
}

fn hugetlb(dir: &Path) -> BTreeMap<String, Hugetlb> {
    let mut out = BTreeMap::new();
    for size in super::v1::hugetlb_sizes(dir, ".max") {
        let f = |suffix: &str| dir.join(format!("hugetlb.{size}.{suffix}"));
        let failcnt = fs::read(&f("events")).map(|t| parse_flat_keyed(&t)).unwrap_or_default().get("max").copied().unwrap_or(0);
        out.insert(size.clone(), Hugetlb { usage: read_num(&f("current"), 0), max: 0, failcnt });
    }
    out
}

pub(crate) fn oom_kill_count(dir: &Path) -> Result<u64> {
    let file = dir.join("memory.events");
    let ev = parse_flat_keyed(&fs::read(&file)?);
    ev.get("oom_kill").copied().ok_or_else(|| Error::parse(file.display().to_string(), "no oom_kill line"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_stat() {
        let (b, i) =
            parse_io_stat("8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n253:1 rbytes=1 wbytes=0 rios=1 wios=0\n");
        assert_eq!(b.len(), 4);
        assert_eq!(b[1], BlkioEntry { major: 8, minor: 0, op: "Write".into(), value: 8192 });
        assert_eq!(i[0].value, 1);
        assert_eq!(i.len(), 4);
    }
}

//! linux.resources.blockIO: v1 blkio.* (CFQ files, else BFQ's), v2 io.weight / io.bfq.weight
//! and io.max. A throttle rate of 0 means "no limit" in both.

use oci_spec::runtime::{LinuxBlockIo, LinuxThrottleDevice};

use super::Planner;
use crate::convert::blkio_weight_to_io_weight;
use crate::error::{Error, Result};

const F: &str = "linux.resources.blockIO";

pub(super) fn plan(p: &mut Planner, b: &LinuxBlockIo) -> Result<()> {
    validate(b)?;
    let wanted = b.weight().is_some()
        || b.leaf_weight().is_some()
        || b.weight_device().as_ref().is_some_and(|v| !v.is_empty())
        || throttles(b).iter().any(|(_, _, list)| !list.is_empty());
    if !wanted {
        return Ok(());
    }
    if p.v2() {
        p.require("io", F)?;
        plan_v2(p, b)
    } else {
        p.require("blkio", F)?;
        plan_v1(p, b)
    }
}

fn validate(b: &LinuxBlockIo) -> Result<()> {
    let weight = |field: String, w: Option<u16>| match w {
        Some(w) if !(10..=1000).contains(&w) => Err(Error::invalid(field, format!("must be between 10 and 1000, got {w}"))),
        _ => Ok(()),
    };
    weight(format!("{F}.weight"), b.weight())?;
    weight(format!("{F}.leafWeight"), b.leaf_weight())?;
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        device(&format!("{F}.weightDevice[{i}]"), d.major(), d.minor())?;
        weight(format!("{F}.weightDevice[{i}].weight"), d.weight())?;
        weight(format!("{F}.weightDevice[{i}].leafWeight"), d.leaf_weight())?;
    }
    for (name, _, list) in throttles(b) {
        for (i, d) in list.iter().enumerate() {
            device(&format!("{F}.{name}[{i}]"), d.major(), d.minor())?;
        }
    }
    Ok(())
}

fn device(field: &str, major: i64, minor: i64) -> Result<()> {
    if major < 0 || minor < 0 || major > u32::MAX as i64 || minor > u32::MAX as i64 {
        return Err(Error::invalid(field, format!("bad device number {major}:{minor}")));
    }
    Ok(())
}

/// (spec name, v2 io.max key, devices)
fn throttles(b: &LinuxBlockIo) -> [(&'static str, &'static str, &[LinuxThrottleDevice]); 4] {
    fn list(v: &Option<Vec<LinuxThrottleDevice>>) -> &[LinuxThrottleDevice] {
        v.as_deref().unwrap_or(&[])
    }
    [
        ("throttleReadBpsDevice", "rbps", list(b.throttle_read_bps_device())),
        ("throttleWriteBpsDevice", "wbps", list(b.throttle_write_bps_device())),
        ("throttleReadIOPSDevice", "riops", list(b.throttle_read_iops_device())),
        ("throttleWriteIOPSDevice", "wiops", list(b.throttle_write_iops_device())),
    ]
}

fn plan_v1(p: &mut Planner, b: &LinuxBlockIo) -> Result<()> {
    // CFQ's blkio.weight is gone since Linux 5.0; BFQ offers the same under blkio.bfq.*.
    let bfq = !p.exists("blkio", "blkio.weight") && p.exists("blkio", "blkio.bfq.weight");
    let (weight_file, weight_device_file) =
        if bfq { ("blkio.bfq.weight", "blkio.bfq.weight_device") } else { ("blkio.weight", "blkio.weight_device") };
    let has_weights = b.weight().is_some() || b.weight_device().iter().flatten().any(|d| d.weight().is_some());
    if has_weights && !p.exists("blkio", weight_file) {
        return Err(Error::invalid(
            format!("{F}.weight"),
            "no blkio.weight or blkio.bfq.weight here (needs the CFQ or BFQ I/O scheduler)",
        ));
    }
    if let Some(w) = b.weight() {
        p.scalar("blkio", weight_file, w);
    }
    let leaf = p.exists("blkio", "blkio.leaf_weight");
    if let Some(w) = b.leaf_weight() {
        if leaf {
            p.scalar("blkio", "blkio.leaf_weight", w);
        } else {
            tracing::warn!("{F}.leafWeight ignored: this kernel has no blkio.leaf_weight (CFQ only)");
        }
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight() {
            p.entry("blkio", weight_device_file, format!("{}:{} {w}", d.major(), d.minor()));
        }
        if let Some(w) = d.leaf_weight() {
            if leaf {
                p.entry("blkio", "blkio.leaf_weight_device", format!("{}:{} {w}", d.major(), d.minor()));
            } else {
                tracing::warn!("{F}.weightDevice leafWeight ignored: this kernel has no blkio.leaf_weight_device");
            }
        }
    }
    let files = [
        "blkio.throttle.read_bps_device",
        "blkio.throttle.write_bps_device",
        "blkio.throttle.read_iops_device",
        "blkio.throttle.write_iops_device",
    ];
    for ((_, _, list), file) in throttles(b).into_iter().zip(files) {
        for d in list {
            p.entry("blkio", file, format!("{}:{} {}", d.major(), d.minor(), d.rate()));
        }
    }
    Ok(())
}

fn plan_v2(p: &mut Planner, b: &LinuxBlockIo) -> Result<()> {
    // io.bfq.weight speaks the spec's 1..1000 scale; io.weight needs converting to 1..10000.
    let bfq = p.exists("io", "io.bfq.weight");
    let has_weights = b.weight().is_some() || b.weight_device().iter().flatten().any(|d| d.weight().is_some());
    if has_weights && !bfq && !p.exists("io", "io.weight") {
        return Err(Error::invalid(
            format!("{F}.weight"),
            "no io.weight or io.bfq.weight here (needs an I/O scheduler with weights)",
        ));
    }
    if let Some(w) = b.weight() {
        if bfq {
            p.entry("io", "io.bfq.weight", w);
        } else {
            p.entry("io", "io.weight", format!("default {}", blkio_weight_to_io_weight(w)));
        }
    }
    if b.leaf_weight().is_some() || b.weight_device().iter().flatten().any(|d| d.leaf_weight().is_some()) {
        tracing::warn!("{F} leaf weights ignored: cgroup v2 has none");
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight() {
            if bfq {
                p.entry("io", "io.bfq.weight", format!("{}:{} {w}", d.major(), d.minor()));
            } else {
                p.entry("io", "io.weight", format!("{}:{} {}", d.major(), d.minor(), blkio_weight_to_io_weight(w)));
            }
        }
    }
    for (_, key, list) in throttles(b) {
        for d in list {
            let rate = if d.rate() == 0 { "max".to_string() } else { d.rate().to_string() };
            p.entry("io", "io.max", format!("{}:{} {key}={rate}", d.major(), d.minor()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::resources::fake::FakeProbe;
    use crate::resources::tests::{err, plan_json, writes};

    const SPEC: &str = r#"{"blockIO":{"weight":500,"leafWeight":300,
        "weightDevice":[{"major":8,"minor":0,"weight":200}],
        "throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576}],
        "throttleWriteIOPSDevice":[{"major":8,"minor":16,"rate":0}]}}"#;

    #[test]
    fn v1_uses_bfq_files_when_cfq_is_gone() {
        let steps = plan_json(&FakeProbe::v1(), SPEC).unwrap();
        assert_eq!(
            writes(&steps),
            vec![
                "blkio.bfq.weight=500",
                "blkio.bfq.weight_device=8:0 200",
                "blkio.throttle.read_bps_device=8:0 1048576",
                "blkio.throttle.write_iops_device=8:16 0",
            ]
        );
    }

    #[test]
    fn v2_io_weight_and_io_max() {
        let steps = plan_json(&FakeProbe::v2(), SPEC).unwrap();
        assert_eq!(
            writes(&steps),
            vec!["io.weight=default 4950", "io.weight=8:0 1920", "io.max=8:0 rbps=1048576", "io.max=8:16 wiops=max"]
        );
    }

    #[test]
    fn invalid_blkio() {
        let p = FakeProbe::v1();
        assert_eq!(err(&p, r#"{"blockIO":{"weight":5}}"#), "linux.resources.blockIO.weight: must be between 10 and 1000, got 5");
        assert_eq!(
            err(&p, r#"{"blockIO":{"throttleReadBpsDevice":[{"major":-1,"minor":0,"rate":1}]}}"#),
            "linux.resources.blockIO.throttleReadBpsDevice[0]: bad device number -1:0"
        );
    }
}

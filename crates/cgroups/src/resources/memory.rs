//! linux.resources.memory. The spec speaks v1: `swap` is the memory+swap total (v1 memsw);
//! v2's memory.swap.max is swap alone, so it gets `swap - limit`. 0 means "unset", as in runc.

use oci_spec::runtime::LinuxMemory;

use super::Planner;
use crate::error::{Error, Result};

const F: &str = "linux.resources.memory";

/// The byte values after validation: None = leave alone, Some(-1) = unlimited.
struct Values {
    limit: Option<i64>,
    reservation: Option<i64>,
    swap: Option<i64>,
}

pub(super) fn plan(p: &mut Planner, m: &LinuxMemory) -> Result<()> {
    let v = Values {
        limit: bytes(m.limit(), "limit")?,
        reservation: bytes(m.reservation(), "reservation")?,
        swap: bytes(m.swap(), "swap")?,
    };
    if let Some(s) = m.swappiness() {
        if s > 100 {
            return Err(Error::invalid(format!("{F}.swappiness"), format!("must be between 0 and 100, got {s}")));
        }
    }
    if m.kernel().is_some() {
        tracing::warn!("{F}.kernel ignored: kernel memory limits are deprecated and not enforced");
    }
    if m.kernel_tcp().is_some() {
        tracing::warn!("{F}.kernelTCP ignored: kernel memory limits are deprecated and not enforced");
    }
    let wanted = v.limit.is_some()
        || v.reservation.is_some()
        || v.swap.is_some()
        || m.swappiness().is_some()
        || m.disable_oom_killer() == Some(true)
        || m.use_hierarchy().is_some();
    if !wanted {
        return Ok(());
    }
    p.require("memory", F)?;
    check_usage(p, v.limit)?;
    if p.v2() {
        plan_v2(p, m, &v)
    } else {
        plan_v1(p, m, &v)
    }
}

fn bytes(value: Option<i64>, name: &str) -> Result<Option<i64>> {
    match value {
        None | Some(0) => Ok(None),
        Some(v) if v < -1 => Err(Error::invalid(format!("{F}.{name}"), format!("must be > 0 or -1, got {v}"))),
        Some(v) => Ok(Some(v)),
    }
}

/// A limit below what the cgroup already uses would make the kernel reclaim hard and then
/// refuse (EBUSY) or OOM-kill; say so up front instead.
fn check_usage(p: &Planner, limit: Option<i64>) -> Result<()> {
    let Some(limit) = limit.filter(|l| *l > 0) else {
        return Ok(());
    };
    let file = if p.v2() { "memory.current" } else { "memory.usage_in_bytes" };
    let usage = p.probe.read("memory", file).and_then(|s| s.parse::<u64>().ok());
    match usage {
        Some(usage) if (limit as u64) < usage => {
            Err(Error::invalid(format!("{F}.limit"), format!("{limit} is below the current usage of {usage} bytes")))
        }
        _ => Ok(()),
    }
}

fn plan_v1(p: &mut Planner, m: &LinuxMemory, v: &Values) -> Result<()> {
    let has_memsw = p.exists("memory", "memory.memsw.limit_in_bytes");
    let mut swap = v.swap;
    // runc: unlimited memory with swap unset means unlimited memory+swap too.
    if v.limit == Some(-1) && swap.is_none() && has_memsw {
        swap = Some(-1);
    }
    if swap.is_some() && !has_memsw {
        tracing::warn!("{F}.swap ignored: swap accounting is off in this kernel (no memory.memsw.limit_in_bytes)");
        swap = None;
    }
    let current_limit = p.probe.read("memory", "memory.limit_in_bytes").and_then(|s| s.parse::<u64>().ok());
    if let Some(s) = swap.filter(|s| *s > 0) {
        let effective = v.limit.map(|l| if l == -1 { u64::MAX } else { l as u64 }).or(current_limit);
        if let Some(l) = effective.filter(|l| (s as u64) < *l) {
            let l = if l >= i64::MAX as u64 - 4096 { "unlimited".to_string() } else { l.to_string() };
            return Err(Error::invalid(format!("{F}.swap"), format!("{s} is below the memory limit {l} (swap is memory+swap)")));
        }
    }
    plan_v1_limits(p, v.limit, swap, current_limit);
    if let Some(r) = v.reservation {
        p.scalar("memory", "memory.soft_limit_in_bytes", r);
    }
    if let Some(s) = m.swappiness() {
        p.scalar("memory", "memory.swappiness", s);
    }
    if m.disable_oom_killer() == Some(true) {
        p.entry("memory", "memory.oom_control", "1");
    }
    if let Some(h) = m.use_hierarchy() {
        let want = if h { "1" } else { "0" };
        // Newer kernels refuse even a no-op write of 0; only write a real change.
        if p.probe.read("memory", "memory.use_hierarchy").as_deref() != Some(want) {
            p.scalar("memory", "memory.use_hierarchy", want);
        }
    }
    Ok(())
}

/// The kernel keeps memsw >= memory at every moment, so the order depends on the direction:
/// growing the total goes memsw first, shrinking goes memory first.
fn plan_v1_limits(p: &mut Planner, limit: Option<i64>, swap: Option<i64>, current_limit: Option<u64>) {
    let swap_first = match (limit, swap) {
        (Some(_), Some(s)) => s == -1 || current_limit.is_some_and(|cur| cur < s as u64),
        _ => false,
    };
    if swap_first {
        if let Some(s) = swap {
            p.scalar("memory", "memory.memsw.limit_in_bytes", s);
        }
    }
    if let Some(l) = limit {
        p.scalar("memory", "memory.limit_in_bytes", l);
    }
    if !swap_first {
        if let Some(s) = swap {
            p.scalar("memory", "memory.memsw.limit_in_bytes", s);
        }
    }
}

fn plan_v2(p: &mut Planner, m: &LinuxMemory, v: &Values) -> Result<()> {
    let swap_max = v2_swap(v)?;
    if let Some(s) = swap_max {
        if p.exists("memory", "memory.swap.max") {
            p.scalar("memory", "memory.swap.max", max_or(s));
        } else {
            tracing::warn!("{F}.swap ignored: this kernel has no memory.swap.max");
        }
    }
    if let Some(l) = v.limit {
        p.scalar("memory", "memory.max", max_or(l));
    }
    if let Some(r) = v.reservation {
        p.scalar("memory", "memory.low", max_or(r));
    }
    if m.swappiness().is_some() {
        tracing::warn!("{F}.swappiness ignored: cgroup v2 has no per-cgroup swappiness");
    }
    if m.disable_oom_killer() == Some(true) {
        tracing::warn!("{F}.disableOOMKiller ignored: not supported on cgroup v2");
    }
    if m.use_hierarchy() == Some(false) {
        tracing::warn!("{F}.useHierarchy=false ignored: cgroup v2 is always hierarchical");
    }
    Ok(())
}

/// memory.swap.max from the spec's memory+swap total (the conversion runc and crun use).
fn v2_swap(v: &Values) -> Result<Option<i64>> {
    match (v.swap, v.limit) {
        (None, Some(-1)) => Ok(Some(-1)),
        (None, _) => Ok(None),
        (Some(-1), _) => Ok(Some(-1)),
        (Some(s), Some(l)) if l > 0 => {
            if s < l {
                return Err(Error::invalid(
                    format!("{F}.swap"),
                    format!("{s} is below the memory limit {l} (swap is memory+swap)"),
                ));
            }
            Ok(Some(s - l))
        }
        (Some(_), _) => Err(Error::invalid(format!("{F}.swap"), "needs a memory limit on cgroup v2 (swap.max = swap - limit)")),
    }
}

fn max_or(v: i64) -> String {
    if v == -1 {
        "max".into()
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use crate::resources::fake::FakeProbe;
    use crate::resources::tests::{err, plan_json, writes};

    #[test]
    fn v1_grow_writes_memsw_first_and_shrink_memory_first() {
        let mut p = FakeProbe::v1();
        p.set("memory/memory.limit_in_bytes", "104857600");
        let grow = plan_json(&p, r#"{"memory":{"limit":209715200,"swap":314572800}}"#).unwrap();
        assert_eq!(writes(&grow), vec!["memory.memsw.limit_in_bytes=314572800", "memory.limit_in_bytes=209715200"]);
        let shrink = plan_json(&p, r#"{"memory":{"limit":10485760,"swap":20971520}}"#).unwrap();
        assert_eq!(writes(&shrink), vec!["memory.limit_in_bytes=10485760", "memory.memsw.limit_in_bytes=20971520"]);
    }

    #[test]
    fn v1_unlimited_memory_means_unlimited_swap() {
        let steps = plan_json(&FakeProbe::v1(), r#"{"memory":{"limit":-1}}"#).unwrap();
        assert_eq!(writes(&steps), vec!["memory.memsw.limit_in_bytes=-1", "memory.limit_in_bytes=-1"]);
    }

    #[test]
    fn v1_other_fields() {
        let steps = plan_json(
            &FakeProbe::v1(),
            r#"{"memory":{"reservation":1048576,"swappiness":0,"disableOOMKiller":true,"useHierarchy":true,"kernel":5,"kernelTCP":5}}"#,
        )
        .unwrap();
        assert_eq!(writes(&steps), vec!["memory.soft_limit_in_bytes=1048576", "memory.swappiness=0", "memory.oom_control=1"]);
    }

    #[test]
    fn v1_swap_without_accounting_is_skipped() {
        let mut p = FakeProbe::v1();
        p.files.remove("memory/memory.memsw.limit_in_bytes");
        let steps = plan_json(&p, r#"{"memory":{"limit":20971520,"swap":41943040}}"#).unwrap();
        assert_eq!(writes(&steps), vec!["memory.limit_in_bytes=20971520"]);
    }

    #[test]
    fn v2_swap_is_total_minus_limit() {
        let p = FakeProbe::v2();
        let steps = plan_json(&p, r#"{"memory":{"limit":20971520,"swap":31457280,"reservation":-1}}"#).unwrap();
        assert_eq!(writes(&steps), vec!["memory.swap.max=10485760", "memory.max=20971520", "memory.low=max"]);
        let steps = plan_json(&p, r#"{"memory":{"limit":-1}}"#).unwrap();
        assert_eq!(writes(&steps), vec!["memory.swap.max=max", "memory.max=max"]);
        assert_eq!(
            err(&p, r#"{"memory":{"swap":31457280}}"#),
            "linux.resources.memory.swap: needs a memory limit on cgroup v2 (swap.max = swap - limit)"
        );
    }

    #[test]
    fn invalid_memory_values() {
        let p = FakeProbe::v1();
        assert_eq!(
            err(&p, r#"{"memory":{"swappiness":101}}"#),
            "linux.resources.memory.swappiness: must be between 0 and 100, got 101"
        );
        assert_eq!(err(&p, r#"{"memory":{"limit":-2}}"#), "linux.resources.memory.limit: must be > 0 or -1, got -2");
        assert_eq!(
            err(&p, r#"{"memory":{"limit":20971520,"swap":10485760}}"#),
            "linux.resources.memory.swap: 10485760 is below the memory limit 20971520 (swap is memory+swap)"
        );
        // usage in the fake probe is 1 MiB
        assert_eq!(
            err(&p, r#"{"memory":{"limit":4096}}"#),
            "linux.resources.memory.limit: 4096 is below the current usage of 1048576 bytes"
        );
        assert_eq!(
            err(&FakeProbe::v2(), r#"{"memory":{"limit":4096}}"#),
            "linux.resources.memory.limit: 4096 is below the current usage of 1048576 bytes"
        );
    }
}

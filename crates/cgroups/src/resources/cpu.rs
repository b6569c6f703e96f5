//! linux.resources.cpu: shares/weight, CFS quota and period, burst, idle, realtime (v1 only).

use oci_spec::runtime::LinuxCpu;

use super::{Planner, Step};
use crate::convert::shares_to_weight;
use crate::error::{Error, Result};

const F: &str = "linux.resources.cpu";

pub(super) fn plan(p: &mut Planner, cpu: &LinuxCpu) -> Result<()> {
    validate(cpu, p.v2())?;
    let wanted = cpu.shares().is_some_and(|s| s != 0)
        || cpu.quota().is_some()
        || cpu.period().is_some()
        || cpu.idle().is_some()
        || cpu.burst().is_some()
        || cpu.realtime_runtime().is_some_and(|r| r != 0)
        || cpu.realtime_period().is_some_and(|r| r != 0);
    if !wanted {
        return Ok(());
    }
    p.require("cpu", F)?;
    if p.v2() {
        plan_v2(p, cpu);
    } else {
        plan_v1(p, cpu);
    }
    Ok(())
}

fn validate(cpu: &LinuxCpu, v2: bool) -> Result<()> {
    if let Some(q) = cpu.quota() {
        if q == 0 || q < -1 {
            return Err(Error::invalid(format!("{F}.quota"), format!("must be > 0 or -1, got {q}")));
        }
        if (1..1000).contains(&q) {
            return Err(Error::invalid(
                format!("{F}.quota"),
                format!("must be at least 1000 (1 ms, the kernel's minimum) or -1, got {q}"),
            ));
        }
    }
    if let Some(period) = cpu.period() {
        if !(1000..=1_000_000).contains(&period) {
            return Err(Error::invalid(format!("{F}.period"), format!("must be between 1000 and 1000000 (us), got {period}")));
        }
    }
    if let Some(s) = cpu.shares() {
        if s != 0 && !(2..=262_144).contains(&s) {
            return Err(Error::invalid(format!("{F}.shares"), format!("must be between 2 and 262144, got {s}")));
        }
    }
    if let Some(i) = cpu.idle() {
        if i != 0 && i != 1 {
            return Err(Error::invalid(format!("{F}.idle"), format!("must be 0 or 1, got {i}")));
        }
    }
    validate_realtime(cpu, v2)
}

fn validate_realtime(cpu: &LinuxCpu, v2: bool) -> Result<()> {
    let runtime = cpu.realtime_runtime().filter(|r| *r != 0);
    let period = cpu.realtime_period().filter(|p| *p != 0);
    if v2 && (runtime.is_some() || period.is_some()) {
        let field = if runtime.is_some() { "realtimeRuntime" } else { "realtimePeriod" };
        return Err(Error::invalid(format!("{F}.{field}"), "realtime CPU limits exist only on cgroup v1"));
    }
    if let Some(r) = runtime {
        if r < -1 {
            return Err(Error::invalid(format!("{F}.realtimeRuntime"), format!("must be >= 0 or -1, got {r}")));
        }
        if let Some(p) = period {
            if r > 0 && r as u64 > p {
                return Err(Error::invalid(format!("{F}.realtimeRuntime"), format!("{r} exceeds realtimePeriod {p}")));
            }
        }
    }
    Ok(())
}

fn plan_v1(p: &mut Planner, cpu: &LinuxCpu) {
    plan_idle(p, cpu);
    if let Some(s) = cpu.shares().filter(|s| *s != 0) {
        if cpu.idle() == Some(1) {
            tracing::warn!("{F}.shares ignored: an idle cgroup has no share");
        } else {
            p.scalar("cpu", "cpu.shares", s);
        }
    }
    if let Some(period) = cpu.period() {
        p.scalar("cpu", "cpu.cfs_period_us", period);
        if cpu.quota().is_some() {
            if let Some(Step::Write(w)) = p.steps.last_mut() {
                w.retry_last_on_einval = true;
            }
        }
    }
    if let Some(q) = cpu.quota() {
        p.scalar("cpu", "cpu.cfs_quota_us", q);
    }
    plan_burst(p, cpu, "cpu.cfs_burst_us");
    // The period first: a runtime is only valid within the period in force.
    if let Some(period) = cpu.realtime_period().filter(|p| *p != 0) {
        p.scalar("cpu", "cpu.rt_period_us", period);
    }
    if let Some(r) = cpu.realtime_runtime().filter(|r| *r != 0) {
        p.scalar("cpu", "cpu.rt_runtime_us", r);
    }
}

fn plan_v2(p: &mut Planner, cpu: &LinuxCpu) {
    plan_idle(p, cpu);
    if let Some(s) = cpu.shares().filter(|s| *s != 0) {
        if cpu.idle() == Some(1) {
            tracing::warn!("{F}.shares ignored: an idle cgroup has no weight");
        } else {
            p.scalar("cpu", "cpu.weight", shares_to_weight(s));
        }
    }
    if cpu.quota().is_some() || cpu.period().is_some() {
        let quota = match cpu.quota() {
            Some(-1) => "max".to_string(),
            Some(q) => q.to_string(),
            // Only the period changes: keep the quota in force (cpu.max takes both).
            None => p
                .probe
                .read("cpu", "cpu.max")
                .and_then(|s| s.split_whitespace().next().map(str::to_string))
                .unwrap_or_else(|| "max".into()),
        };
        let value = match cpu.period() {
            Some(period) => format!("{quota} {period}"),
            None => quota,
        };
        p.scalar("cpu", "cpu.max", value);
    }
    plan_burst(p, cpu, "cpu.max.burst");
}

fn plan_idle(p: &mut Planner, cpu: &LinuxCpu) {
    if let Some(i) = cpu.idle() {
        if p.exists("cpu", "cpu.idle") {
            p.scalar("cpu", "cpu.idle", i);
        } else {
            tracing::warn!("{F}.idle ignored: this kernel has no cpu.idle (needs Linux 5.15)");
        }
    }
}

fn plan_burst(p: &mut Planner, cpu: &LinuxCpu, file: &str) {
    if let Some(b) = cpu.burst() {
        if p.exists("cpu", file) {
            p.scalar("cpu", file, b);
        } else {
            tracing::warn!("{F}.burst ignored: this kernel has no {file}");
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::resources::fake::FakeProbe;
    use crate::resources::tests::{err, plan_json, writes};
    use crate::resources::Step;

    #[test]
    fn v1_quota_period_shares() {
        let steps = plan_json(&FakeProbe::v1(), r#"{"cpu":{"shares":512,"quota":50000,"period":100000}}"#).unwrap();
        assert_eq!(writes(&steps), vec!["cpu.shares=512", "cpu.cfs_period_us=100000", "cpu.cfs_quota_us=50000"]);
        let Step::Write(period) = &steps[1] else { panic!() };
        assert!(period.retry_last_on_einval);
    }

    #[test]
    fn v1_unlimited_quota_and_realtime() {
        let steps =
            plan_json(&FakeProbe::v1(), r#"{"cpu":{"quota":-1,"realtimePeriod":1000000,"realtimeRuntime":950000}}"#).unwrap();
        assert_eq!(writes(&steps), vec!["cpu.cfs_quota_us=-1", "cpu.rt_period_us=1000000", "cpu.rt_runtime_us=950000"]);
    }

    #[test]
    fn v2_weight_and_max() {
        let p = FakeProbe::v2();
        let steps = plan_json(&p, r#"{"cpu":{"shares":1024,"quota":50000,"period":100000,"burst":1000}}"#).unwrap();
        assert_eq!(writes(&steps), vec!["cpu.weight=100", "cpu.max=50000 100000", "cpu.max.burst=1000"]);
        let steps = plan_json(&p, r#"{"cpu":{"quota":-1}}"#).unwrap();
        assert_eq!(writes(&steps), vec!["cpu.max=max"]);
    }

    #[test]
    fn v2_period_alone_keeps_quota() {
        let mut p = FakeProbe::v2();
        p.set("-/cpu.max", "20000 100000");
        let steps = plan_json(&p, r#"{"cpu":{"period":50000}}"#).unwrap();
        assert_eq!(writes(&steps), vec!["cpu.max=20000 50000"]);
    }

    #[test]
    fn idle_skips_shares_and_missing_burst_file_is_skipped() {
        let steps = plan_json(&FakeProbe::v1(), r#"{"cpu":{"idle":1,"shares":512,"burst":5}}"#).unwrap();
        assert_eq!(writes(&steps), vec!["cpu.idle=1"]);
    }

    #[test]
    fn invalid_values_name_the_field() {
        let p = FakeProbe::v1();
        assert_eq!(err(&p, r#"{"cpu":{"quota":0}}"#), "linux.resources.cpu.quota: must be > 0 or -1, got 0");
        assert_eq!(err(&p, r#"{"cpu":{"quota":-5}}"#), "linux.resources.cpu.quota: must be > 0 or -1, got -5");
        assert!(err(&p, r#"{"cpu":{"quota":999}}"#).starts_with("linux.resources.cpu.quota: must be at least 1000"));
        assert_eq!(
            err(&p, r#"{"cpu":{"period":999}}"#),
            "linux.resources.cpu.period: must be between 1000 and 1000000 (us), got 999"
        );
        assert!(err(&p, r#"{"cpu":{"period":1000001}}"#).starts_with("linux.resources.cpu.period:"));
        assert_eq!(err(&p, r#"{"cpu":{"shares":1}}"#), "linux.resources.cpu.shares: must be between 2 and 262144, got 1");
        assert_eq!(err(&p, r#"{"cpu":{"idle":2}}"#), "linux.resources.cpu.idle: must be 0 or 1, got 2");
        assert!(err(&p, r#"{"cpu":{"realtimePeriod":1000,"realtimeRuntime":2000}}"#)
            .starts_with("linux.resources.cpu.realtimeRuntime:"));
        assert_eq!(
            err(&FakeProbe::v2(), r#"{"cpu":{"realtimeRuntime":1000}}"#),
            "linux.resources.cpu.realtimeRuntime: realtime CPU limits exist only on cgroup v1"
        );
    }
}

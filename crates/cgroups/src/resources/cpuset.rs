//! linux.resources.cpu.cpus / .mems: cpuset lists, checked against what is online, since the
//! kernel's EINVAL for an offline CPU says nothing about which one.

use std::collections::BTreeSet;

use oci_spec::runtime::LinuxCpu;

use super::Planner;
use crate::error::{Error, Result};

pub(super) fn plan(p: &mut Planner, cpu: &LinuxCpu) -> Result<()> {
    let cpus = cpu.cpus().as_deref().filter(|s| !s.trim().is_empty());
    let mems = cpu.mems().as_deref().filter(|s| !s.trim().is_empty());
    if let Some(v) = cpus {
        check(v, "cpus", "CPUs", p.probe.online_cpus())?;
    }
    if let Some(v) = mems {
        check(v, "mems", "memory nodes", p.probe.online_mems())?;
    }
    for (name, value) in [("cpus", cpus), ("mems", mems)] {
        if let Some(v) = value {
            p.require("cpuset", &format!("linux.resources.cpu.{name}"))?;
            p.scalar("cpuset", &format!("cpuset.{name}"), v.trim());
        }
    }
    Ok(())
}

fn check(value: &str, name: &str, what: &str, online: Option<String>) -> Result<()> {
    let field = format!("linux.resources.cpu.{name}");
    let want = parse_list(value).map_err(|e| Error::invalid(&field, e))?;
    let Some(online) = online else { return Ok(()) };
    let have = parse_list(&online).map_err(|e| Error::parse(what, e))?;
    let missing: BTreeSet<u32> = want.difference(&have).copied().collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::invalid(field, format!("{value:?} names {what} {} that are not online (online: {online})", format_list(&missing))))
}

/// Parse the kernel's list format: "0-3,5,7-8".
pub(crate) fn parse_list(s: &str) -> std::result::Result<BTreeSet<u32>, String> {
    let mut out = BTreeSet::new();
    for part in s.trim().split(',').map(str::trim) {
        let bad = || format!("{s:?} is not a list like \"0-3,5\"");
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<u32>().map_err(|_| bad())?, b.parse::<u32>().map_err(|_| bad())?),
            None => {
                let n = part.parse::<u32>().map_err(|_| bad())?;
                (n, n)
            }
        };
        if lo > hi || hi - lo > 65_536 {
            return Err(bad());
        }
        out.extend(lo..=hi);
    }
    Ok(out)
}

/// The inverse of [`parse_list`], folding runs into ranges.
pub(crate) fn format_list(set: &BTreeSet<u32>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut iter = set.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end = iter.next().unwrap_or(end);
        }
        parts.push(if start == end { start.to_string() } else { format!("{start}-{end}") });
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::fake::FakeProbe;
    use crate::resources::tests::{err, plan_json, writes};

    #[test]
    fn list_round_trip() {
        let s = parse_list("0-3, 5,7-8").unwrap();
        assert_eq!(s.len(), 7);
        assert_eq!(format_list(&s), "0-3,5,7-8");
        assert!(parse_list("3-1").is_err());
        assert!(parse_list("a").is_err());
        assert!(parse_list("1,,2").is_err());
    }

    #[test]
    fn online_cpus_are_accepted() {
        let steps = plan_json(&FakeProbe::v1(), r#"{"cpu":{"cpus":"0-1,3","mems":"0"}}"#).unwrap();
        assert_eq!(writes(&steps), vec!["cpuset.cpus=0-1,3", "cpuset.mems=0"]);
    }

    #[test]
    fn offline_cpus_and_nodes_are_refused() {
        let p = FakeProbe::v1();
        assert_eq!(
            err(&p, r#"{"cpu":{"cpus":"2-5"}}"#),
            "linux.resources.cpu.cpus: \"2-5\" names CPUs 4-5 that are not online (online: 0-3)"
        );
        assert_eq!(
            err(&p, r#"{"cpu":{"mems":"1"}}"#),
            "linux.resources.cpu.mems: \"1\" names memory nodes 1 that are not online (online: 0)"
        );
        assert!(err(&p, r#"{"cpu":{"cpus":"x"}}"#).starts_with("linux.resources.cpu.cpus: \"x\" is not a list"));
    }
}

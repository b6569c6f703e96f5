//! linux.resources.unified: raw cgroup v2 `file: value` pairs, written as they are, after the
//! typed fields so that they win. Keys must name files that exist in this cgroup.

use std::collections::HashMap;

use super::Planner;
use crate::error::{Error, Result};

/// Files that change the cgroup's membership or state rather than a limit.
const NOT_RESOURCES: &[&str] = &["cgroup.procs", "cgroup.threads", "cgroup.kill", "cgroup.freeze", "cgroup.subtree_control"];

pub(super) fn plan(p: &mut Planner, unified: &HashMap<String, String>) -> Result<()> {
    if unified.is_empty() {
        return Ok(());
    }
    if !p.v2() {
        return Err(Error::invalid("linux.resources.unified", "needs cgroup v2; this host uses cgroup v1"));
    }
    let mut keys: Vec<&String> = unified.keys().collect();
    keys.sort();
    for key in &keys {
        let field = format!("linux.resources.unified.{key}");
        if key.is_empty() || key.starts_with('.') || key.contains('/') || !key.contains('.') {
            return Err(Error::invalid(field, "is not a cgroup file name"));
        }
        if NOT_RESOURCES.contains(&key.as_str()) {
            return Err(Error::invalid(field, "is not a resource limit"));
        }
        let controller = key.split('.').next().unwrap_or_default();
        if !p.exists(controller, key) {
            let reason = if controller != "cgroup" && !p.probe.has_controller(controller) {
                format!("the {controller} controller is not enabled for this cgroup")
            } else {
                "no such file in this cgroup".to_string()
            };
            return Err(Error::invalid(field, reason));
        }
    }
    for key in keys {
        let controller = key.split('.').next().unwrap_or_default();
        p.entry(controller, key, &unified[key]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::resources::fake::FakeProbe;
    use crate::resources::tests::{err, plan_json, writes};

    #[test]
    fn known_keys_are_written_sorted() {
        let steps = plan_json(&FakeProbe::v2(), r#"{"unified":{"memory.max":"1G","cpu.weight":"7"}}"#).unwrap();
        assert_eq!(writes(&steps), vec!["cpu.weight=7", "memory.max=1G"]);
    }

    #[test]
    fn unknown_keys_and_v1_are_refused() {
        let p = FakeProbe::v2();
        assert_eq!(
            err(&p, r#"{"unified":{"memory.bogus":"1"}}"#),
            "linux.resources.unified.memory.bogus: no such file in this cgroup"
        );
        assert_eq!(
            err(&p, r#"{"unified":{"misc.max":"1"}}"#),
            "linux.resources.unified.misc.max: the misc controller is not enabled for this cgroup"
        );
        assert_eq!(err(&p, r#"{"unified":{"../x":"1"}}"#), "linux.resources.unified.../x: is not a cgroup file name");
        assert_eq!(
            err(&p, r#"{"unified":{"cgroup.procs":"1"}}"#),
            "linux.resources.unified.cgroup.procs: is not a resource limit"
        );
        assert_eq!(
            err(&FakeProbe::v1(), r#"{"unified":{"memory.max":"1G"}}"#),
            "linux.resources.unified: needs cgroup v2; this host uses cgroup v1"
        );
    }
}

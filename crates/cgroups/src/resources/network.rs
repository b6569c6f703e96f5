//! linux.resources.network: v1's net_cls.classid and net_prio.ifpriomap. cgroup v2 has no such
//! controllers (traffic is classified with BPF there), so asking for them is an error.

use oci_spec::runtime::LinuxNetwork;

use super::Planner;
use crate::error::{Error, Result};

const F: &str = "linux.resources.network";

pub(super) fn plan(p: &mut Planner, n: &LinuxNetwork) -> Result<()> {
    let priorities = n.priorities().as_deref().unwrap_or(&[]);
    if n.class_id().is_none() && priorities.is_empty() {
        return Ok(());
    }
    if p.v2() {
        return Err(Error::invalid(F, "net_cls and net_prio are cgroup v1 controllers; this host uses cgroup v2"));
    }
    for (i, prio) in priorities.iter().enumerate() {
        let name = prio.name();
        if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == '/') {
            return Err(Error::invalid(format!("{F}.priorities[{i}].name"), format!("{name:?} is not an interface name")));
        }
    }
    if let Some(id) = n.class_id() {
        p.require("net_cls", &format!("{F}.classID"))?;
        p.scalar("net_cls", "net_cls.classid", id);
    }
    if !priorities.is_empty() {
        p.require("net_prio", &format!("{F}.priorities"))?;
    }
    for prio in priorities {
        p.entry("net_prio", "net_prio.ifpriomap", format!("{} {}", prio.name(), prio.priority()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::resources::fake::FakeProbe;
    use crate::resources::tests::{err, plan_json, writes};

    #[test]
    fn classid_and_priorities() {
        let json = r#"{"network":{"classID":1048577,"priorities":[{"name":"eth0","priority":5}]}}"#;
        let steps = plan_json(&FakeProbe::v1(), json).unwrap();
        assert_eq!(writes(&steps), vec!["net_cls.classid=1048577", "net_prio.ifpriomap=eth0 5"]);
        assert!(err(&FakeProbe::v2(), json).starts_with("linux.resources.network: net_cls and net_prio are cgroup v1"));
        let mut p = FakeProbe::v1();
        p.controllers.retain(|c| *c != "net_cls");
        assert_eq!(err(&p, json), "linux.resources.network.classID: the net_cls controller is not mounted");
    }
}

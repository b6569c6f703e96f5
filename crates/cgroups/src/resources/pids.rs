//! linux.resources.pids: pids.max. As in runc, 0 and -1 both mean "no limit" (Docker sends 0).

use oci_spec::runtime::LinuxPids;

use super::Planner;
use crate::error::{Error, Result};

pub(super) fn plan(p: &mut Planner, pids: &LinuxPids) -> Result<()> {
    let limit = pids.limit();
    if limit < -1 {
        return Err(Error::invalid("linux.resources.pids.limit", format!("must be > 0, or 0 or -1 for no limit, got {limit}")));
    }
    p.require("pids", "linux.resources.pids")?;
    if limit > 0 {
        p.scalar("pids", "pids.max", limit);
    } else {
        p.scalar("pids", "pids.max", "max");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::resources::fake::FakeProbe;
    use crate::resources::tests::{err, plan_json, writes};

    #[test]
    fn limits() {
        for (json, want) in [
            (r#"{"pids":{"limit":5}}"#, "pids.max=5"),
            (r#"{"pids":{"limit":0}}"#, "pids.max=max"),
            (r#"{"pids":{"limit":-1}}"#, "pids.max=max"),
        ] {
            assert_eq!(writes(&plan_json(&FakeProbe::v2(), json).unwrap()), vec![want]);
        }
        assert_eq!(
            err(&FakeProbe::v1(), r#"{"pids":{"limit":-2}}"#),
            "linux.resources.pids.limit: must be > 0, or 0 or -1 for no limit, got -2"
        );
    }
}

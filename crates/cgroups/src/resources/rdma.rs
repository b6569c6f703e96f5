//! linux.resources.rdma: rdma.max, one line per device, same format on v1 and v2.

use std::collections::HashMap;

use oci_spec::runtime::LinuxRdma;

use super::Planner;
use crate::error::{Error, Result};

pub(super) fn plan(p: &mut Planner, rdma: &HashMap<String, LinuxRdma>) -> Result<()> {
    let mut devices: Vec<(&String, &LinuxRdma)> = rdma.iter().collect();
    devices.sort_by(|a, b| a.0.cmp(b.0));
    let limit = |v: Option<u32>| v.map_or_else(|| "max".to_string(), |n| n.to_string());
    let mut lines = Vec::new();
    for (dev, l) in devices {
        if dev.is_empty() || dev.contains(char::is_whitespace) {
            return Err(Error::invalid("linux.resources.rdma", format!("{dev:?} is not an RDMA device name")));
        }
        if l.hca_handles().is_none() && l.hca_objects().is_none() {
            continue;
        }
        lines.push(format!("{dev} hca_handle={} hca_object={}", limit(l.hca_handles()), limit(l.hca_objects())));
    }
    if !lines.is_empty() {
        p.require("rdma", "linux.resources.rdma")?;
    }
    for line in lines {
        p.entry("rdma", "rdma.max", line);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::resources::fake::FakeProbe;
    use crate::resources::tests::{plan_json, writes};

    #[test]
    fn rdma_lines() {
        let steps =
            plan_json(&FakeProbe::v2(), r#"{"rdma":{"mlx5_1":{"hcaHandles":3},"mlx4_0":{"hcaHandles":2,"hcaObjects":100}}}"#)
                .unwrap();
        assert_eq!(
            writes(&steps),
            vec!["rdma.max=mlx4_0 hca_handle=2 hca_object=100", "rdma.max=mlx5_1 hca_handle=3 hca_object=max"]
        );
    }
}

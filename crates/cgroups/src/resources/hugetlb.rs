//! linux.resources.hugepageLimits: v1 hugetlb.<size>.limit_in_bytes, v2 hugetlb.<size>.max,
//! plus the reservation variant (.rsvd.) where the kernel has it, so reserved-but-untouched
//! pages count too.

use oci_spec::runtime::LinuxHugepageLimit;

use super::Planner;
use crate::error::{Error, Result};

pub(super) fn plan(p: &mut Planner, limits: &[LinuxHugepageLimit]) -> Result<()> {
    if limits.is_empty() {
        return Ok(());
    }
    p.require("hugetlb", "linux.resources.hugepageLimits")?;
    let mut planned = Vec::new();
    for (i, l) in limits.iter().enumerate() {
        let field = format!("linux.resources.hugepageLimits[{i}]");
        let size = l.page_size();
        let (file, rsvd) = if p.v2() {
            (format!("hugetlb.{size}.max"), format!("hugetlb.{size}.rsvd.max"))
        } else {
            (format!("hugetlb.{size}.limit_in_bytes"), format!("hugetlb.{size}.rsvd.limit_in_bytes"))
        };
        if size.is_empty() || size.contains('/') || !p.exists("hugetlb", &file) {
            return Err(Error::invalid(format!("{field}.pageSize"), format!("{size:?} is not a huge page size this kernel has")));
        }
        let value = match l.limit() {
            -1 if p.v2() => "max".to_string(),
            v if v < -1 => return Err(Error::invalid(format!("{field}.limit"), format!("must be >= 0 or -1, got {v}"))),
            v => v.to_string(),
        };
        planned.push((file, rsvd, value));
    }
    for (file, rsvd, value) in planned {
        p.scalar("hugetlb", &file, &value);
        if p.exists("hugetlb", &rsvd) {
            p.scalar("hugetlb", &rsvd, &value);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::resources::fake::FakeProbe;
    use crate::resources::tests::{err, plan_json, writes};

    #[test]
    fn sizes_and_files() {
        let steps = plan_json(&FakeProbe::v1(), r#"{"hugepageLimits":[{"pageSize":"2MB","limit":4194304}]}"#).unwrap();
        assert_eq!(writes(&steps), vec!["hugetlb.2MB.limit_in_bytes=4194304"]);
        let steps = plan_json(&FakeProbe::v2(), r#"{"hugepageLimits":[{"pageSize":"2MB","limit":-1}]}"#).unwrap();
        assert_eq!(writes(&steps), vec!["hugetlb.2MB.max=max", "hugetlb.2MB.rsvd.max=max"]);
        assert_eq!(
            err(&FakeProbe::v1(), r#"{"hugepageLimits":[{"pageSize":"3MB","limit":1}]}"#),
            "linux.resources.hugepageLimits[0].pageSize: \"3MB\" is not a huge page size this kernel has"
        );
    }
}

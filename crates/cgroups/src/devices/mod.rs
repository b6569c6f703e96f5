//! linux.resources.devices. Semantics as runc on v1: deny everything, then apply the rules in
//! order. v1 writes them to devices.deny / devices.allow; v2 has no devices files, so the
//! same rules become an eBPF program attached to the cgroup ([`program`], [`attach`]).

mod attach;
pub mod program;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

pub use attach::attach_program;

use crate::error::{Error, Result};
use crate::resources::{Planner, Step};

/// Access bits, with the kernel's BPF_DEVCG_ACC_* values.
pub const ACC_MKNOD: u8 = 1;
pub const ACC_READ: u8 = 2;
pub const ACC_WRITE: u8 = 4;
pub const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    All,
    Char,
    Block,
}

/// One normalised rule; `None` major/minor is the wildcard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceRule {
    pub allow: bool,
    pub kind: DeviceKind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

impl DeviceRule {
    /// The line for v1 devices.allow / devices.deny.
    pub fn v1_line(&self) -> String {
        let kind = match self.kind {
            DeviceKind::All => return "a".into(),
            DeviceKind::Char => 'c',
            DeviceKind::Block => 'b',
        };
        let num = |n: Option<u32>| n.map_or_else(|| "*".to_string(), |n| n.to_string());
        format!("{kind} {}:{} {}", num(self.major), num(self.minor), access_string(self.access))
    }
}

fn access_string(bits: u8) -> String {
    [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')].iter().filter(|(b, _)| bits & b != 0).map(|(_, c)| *c).collect()
}

/// Validate and normalise the spec's rules, keeping their order.
///
/// The kernel reads a v1 rule of type `a` as "all devices, all access" whatever follows it,
/// so `a 1:3 r` would allow (or deny) everything. Such rules are split into the `c` and `b`
/// rules they mean. FIFO rules (`p`) are dropped: the device cgroup never sees FIFOs.
pub fn rules_from_oci(list: &[LinuxDeviceCgroup]) -> Result<Vec<DeviceRule>> {
    let mut out = Vec::new();
    for (i, d) in list.iter().enumerate() {
        let field = format!("linux.resources.devices[{i}]");
        let kind = match d.typ() {
            None | Some(LinuxDeviceType::A) => DeviceKind::All,
            Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => DeviceKind::Char,
            Some(LinuxDeviceType::B) => DeviceKind::Block,
            Some(LinuxDeviceType::P) => continue,
        };
        let rule = DeviceRule {
            allow: d.allow(),
            kind,
            major: number(&format!("{field}.major"), d.major())?,
            minor: number(&format!("{field}.minor"), d.minor())?,
            access: access(&format!("{field}.access"), d.access().as_deref())?,
        };
        let whole = rule.major.is_none() && rule.minor.is_none() && rule.access == ACC_ALL;
        if kind == DeviceKind::All && !whole {
            out.push(DeviceRule { kind: DeviceKind::Char, ..rule });
            out.push(DeviceRule { kind: DeviceKind::Block, ..rule });
        } else {
            out.push(rule);
        }
    }
    Ok(out)
}

/// -1 is runc's wildcard; OCI uses an absent number.
fn number(field: &str, n: Option<i64>) -> Result<Option<u32>> {
    match n {
        None | Some(-1) => Ok(None),
        Some(n) => u32::try_from(n).map(Some).map_err(|_| Error::invalid(field, format!("must be >= 0 or -1, got {n}"))),
    }
}

fn access(field: &str, s: Option<&str>) -> Result<u8> {
    let s = s.unwrap_or("");
    if s.is_empty() {
        return Ok(ACC_ALL);
    }
    s.chars().try_fold(0u8, |bits, c| match c {
        'r' => Ok(bits | ACC_READ),
        'w' => Ok(bits | ACC_WRITE),
        'm' => Ok(bits | ACC_MKNOD),
        _ => Err(Error::invalid(field, format!("{s:?} must be letters from \"rwm\""))),
    })
}

pub(crate) fn plan(p: &mut Planner, list: &[LinuxDeviceCgroup]) -> Result<()> {
    let rules = rules_from_oci(list)?;
    if p.v2() {
        p.steps.push(Step::DeviceProgram(rules));
        return Ok(());
    }
    p.require("devices", "linux.resources.devices")?;
    p.entry("devices", "devices.deny", "a");
    for r in rules {
        let file = if r.allow { "devices.allow" } else { "devices.deny" };
        p.entry("devices", file, r.v1_line());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::resources::fake::FakeProbe;
    use crate::resources::tests::{err, plan_json, writes};

    #[test]
    fn v1_denies_all_then_applies_rules_in_order() {
        let json = r#"{"devices":[
            {"allow":false,"access":"rwm"},
            {"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"},
            {"allow":true,"type":"c","major":136,"access":"rw"},
            {"allow":false,"type":"b","major":8,"minor":0,"access":"w"},
            {"allow":true,"type":"p","access":"rwm"}]}"#;
        let steps = plan_json(&FakeProbe::v1(), json).unwrap();
        assert_eq!(
            writes(&steps),
            vec![
                "devices.deny=a",
                "devices.deny=a",
                "devices.allow=c 1:3 rwm",
                "devices.allow=c 136:* rw",
                "devices.deny=b 8:0 w"
            ]
        );
    }

    #[test]
    fn partial_all_rules_are_split() {
        let json = r#"{"devices":[{"allow":true,"type":"a","major":1,"access":"r"},{"allow":true,"major":-1,"minor":-1}]}"#;
        let steps = plan_json(&FakeProbe::v1(), json).unwrap();
        assert_eq!(writes(&steps), vec!["devices.deny=a", "devices.allow=c 1:* r", "devices.allow=b 1:* r", "devices.allow=a"]);
    }

    #[test]
    fn bad_rules_name_the_entry() {
        let p = FakeProbe::v1();
        assert_eq!(
            err(&p, r#"{"devices":[{"allow":true,"access":"rwm"},{"allow":true,"type":"c","access":"rwx"}]}"#),
            "linux.resources.devices[1].access: \"rwx\" must be letters from \"rwm\""
        );
        assert_eq!(
            err(&p, r#"{"devices":[{"allow":true,"type":"c","major":-7}]}"#),
            "linux.resources.devices[0].major: must be >= 0 or -1, got -7"
        );
    }
}

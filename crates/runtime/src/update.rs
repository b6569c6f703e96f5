//! `update`: change the resources of a live container (runc's `update`). The request is merged
//! onto the resources in force (the config copy in the state directory), the sections that
//! change are validated by the cgroups crate before the first write and applied (a kernel
//! refusal midway restores what was written), and the merged result is saved back so later
//! commands (another update, `events`, the engine's `inspect`) see it.

use std::path::Path;

use oci_spec::runtime::LinuxResources;
use serde_json::{Map, Value};

use crate::error::{Context, Error, Result};
use crate::lifecycle::Container;
use crate::state::{self, Status};

/// The sections of `linux.resources`, in the order the cgroups crate applies them.
const SECTIONS: [&str; 8] = ["cpu", "memory", "pids", "blockIO", "hugepageLimits", "network", "rdma", "unified"];

/// Merge `r` onto the container's resources, apply what changed and persist the result, which
/// is returned. Fields absent from `r` keep their values; `devices` is ignored (as runc does:
/// the device rules are fixed at create).
pub fn update(root: &Path, id: &str, r: &LinuxResources) -> Result<LinuxResources> {
    let c = Container::open(root, id)?;
    match c.status() {
        Status::Created | Status::Running | Status::Paused => {}
        _ => return Err(c.wrong("update", "created, running or paused")),
    }
    let path = c.dir.file(state::CONFIG);
    let raw = std::fs::read(&path).ctx(|| format!("read {}", path.display()))?;
    let mut config: Value = serde_json::from_slice(&raw).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
    let current = config.pointer("/linux/resources").cloned().unwrap_or_else(|| Value::Object(Map::new()));
    let request = serde_json::to_value(r).expect("resources serialize");
    let merged = merge_resources(&current, &request);
    let resources: LinuxResources =
        serde_json::from_value(merged.clone()).map_err(|e| Error::Invalid(format!("linux.resources: {e}")))?;
    let changes = changed_sections(&current, &merged);
    if !changes.as_object().is_some_and(Map::is_empty) {
        let changes: LinuxResources =
            serde_json::from_value(changes).map_err(|e| Error::Invalid(format!("linux.resources: {e}")))?;
        c.st.cgroup.apply(&changes)?;
    }
    match config.get_mut("linux").and_then(Value::as_object_mut) {
        Some(linux) => {
            linux.insert("resources".into(), merged);
        }
        None => config["linux"] = serde_json::json!({ "resources": merged }),
    }
    state::write_atomic(&path, &serde_json::to_vec_pretty(&config).expect("config serializes"))?;
    Ok(resources)
}

/// Parse a `linux.resources` object (runc's `update --resources` file); the error names the
/// failing field (`linux.resources.cpu.quota: invalid type ...`).
pub fn parse_resources(raw: &[u8]) -> std::result::Result<LinuxResources, String> {
    let de = &mut serde_json::Deserializer::from_slice(raw);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path == "?" {
            format!("linux.resources: {inner}")
        } else {
            format!("linux.resources.{path}: {inner}")
        }
    })
}

/// `request` over `current`: objects merge field by field, anything else (numbers, strings,
/// arrays such as hugepageLimits) replaces; nulls and `devices` are skipped. As in runc, a
/// memory limit set to unlimited (-1) without a swap value makes memory+swap unlimited too.
pub fn merge_resources(current: &Value, request: &Value) -> Value {
    let mut out = current.clone();
    if !out.is_object() {
        out = Value::Object(Map::new());
    }
    let Some(req) = request.as_object() else { return out };
    for (k, v) in req {
        if k == "devices" || v.is_null() {
            continue;
        }
        merge_into(&mut out[k.as_str()], v);
    }
    let unlimited = request.pointer("/memory/limit").and_then(Value::as_i64) == Some(-1);
    if unlimited && request.pointer("/memory/swap").is_none() && out.pointer("/memory/swap").is_some() {
        out["memory"]["swap"] = Value::from(-1);
    }
    out
}

fn merge_into(dst: &mut Value, src: &Value) {
    match (dst.as_object_mut(), src.as_object()) {
        (Some(d), Some(s)) => {
            for (k, v) in s {
                if v.is_null() {
                    continue;
                }
                merge_into(d.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        _ => *dst = src.clone(),
    }
}

/// The sections of `merged` that differ from `current`: only those are written. Coupled values
/// travel together (a whole section at a time: memory limit with swap, quota with period), and
/// `unified` is rewritten whenever anything is, so its raw values keep winning.
fn changed_sections(current: &Value, merged: &Value) -> Value {
    let mut out = Map::new();
    for s in SECTIONS {
        let m = merged.get(s).filter(|v| !v.is_null());
        if let Some(m) = m {
            if current.get(s) != Some(m) {
                out.insert(s.to_string(), m.clone());
            }
        }
    }
    if !out.is_empty() {
        if let Some(u) = merged.get("unified").filter(|v| !v.is_null()) {
            out.insert("unified".into(), u.clone());
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn merge_keeps_what_is_not_asked_for() {
        let current = json!({
            "devices": [{"allow": false, "access": "rwm"}],
            "cpu": {"quota": 50000, "period": 100000, "shares": 512},
            "memory": {"limit": 33554432, "swap": 33554432},
            "pids": {"limit": 5}
        });
        let m = merge_resources(&current, &json!({"cpu": {"quota": 150000}, "pids": {"limit": 50}, "devices": []}));
        assert_eq!(m["cpu"], json!({"quota": 150000, "period": 100000, "shares": 512}));
        assert_eq!(m["memory"], current["memory"]);
        assert_eq!(m["pids"]["limit"], 50);
        assert_eq!(m["devices"], current["devices"], "devices are not updated");
        let changed = changed_sections(&current, &m);
        assert_eq!(changed, json!({"cpu": m["cpu"], "pids": {"limit": 50}}));
    }

    #[test]
    fn unlimited_memory_lifts_swap_unless_given() {
        let current = json!({"memory": {"limit": 1000, "swap": 2000}});
        let m = merge_resources(&current, &json!({"memory": {"limit": -1}}));
        assert_eq!(m["memory"], json!({"limit": -1, "swap": -1}));
        let m = merge_resources(&current, &json!({"memory": {"limit": -1, "swap": 5000}}));
        assert_eq!(m["memory"]["swap"], 5000);
        let m = merge_resources(&json!({}), &json!({"memory": {"limit": -1}}));
        assert_eq!(m["memory"], json!({"limit": -1}));
    }

    #[test]
    fn resource_files_name_the_bad_field() {
        let r = parse_resources(br#"{"cpu": {"quota": 5000}, "pids": {"limit": 3}}"#).unwrap();
        assert_eq!(r.cpu().as_ref().unwrap().quota(), Some(5000));
        let e = parse_resources(br#"{"cpu": {"quota": "x"}}"#).unwrap_err();
        assert!(e.starts_with("linux.resources.cpu.quota: invalid type"), "{e}");
        assert!(parse_resources(b"{").unwrap_err().starts_with("linux.resources: "));
    }

    #[test]
    fn arrays_replace_and_unified_rides_along() {
        let current =
            json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 1}], "unified": {"cpu.weight": "7"}, "pids": {"limit": 1}});
        let m = merge_resources(&current, &json!({"hugepageLimits": [{"pageSize": "1GB", "limit": 2}]}));
        assert_eq!(m["hugepageLimits"], json!([{"pageSize": "1GB", "limit": 2}]));
        let changed = changed_sections(&current, &m);
        assert_eq!(changed, json!({"hugepageLimits": m["hugepageLimits"], "unified": {"cpu.weight": "7"}}));
        assert_eq!(changed_sections(&current, &current), json!({}));
    }
}

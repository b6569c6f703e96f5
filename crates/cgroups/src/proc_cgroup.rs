//! Parsing of /proc/<pid>/cgroup: `hierarchy-id:controllers:path` per line; the v2 line is
//! `0::/path`, a named v1 hierarchy has `name=<name>` as its controller.

use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcCgroup {
    pub hierarchy_id: u32,
    /// Empty for the v2 (unified) line.
    pub controllers: Vec<String>,
    /// Path relative to the hierarchy root as seen from the reader's cgroup namespace.
    pub path: String,
}

pub fn parse(text: &str) -> Result<Vec<ProcCgroup>> {
    text.lines().filter(|l| !l.trim().is_empty()).map(parse_line).collect()
}

fn parse_line(line: &str) -> Result<ProcCgroup> {
    let bad = || Error::parse("/proc/self/cgroup", format!("malformed line {line:?}"));
    // The path may itself contain ':', so split at the first two colons only.
    let mut parts = line.splitn(3, ':');
    let id = parts.next().ok_or_else(bad)?.parse::<u32>().map_err(|_| bad())?;
    let controllers = parts.next().ok_or_else(bad)?;
    let path = parts.next().ok_or_else(bad)?;
    if !path.starts_with('/') {
        return Err(bad());
    }
    let controllers = controllers.split(',').filter(|c| !c.is_empty()).map(str::to_string).collect();
    Ok(ProcCgroup { hierarchy_id: id, controllers, path: path.to_string() })
}

/// The path of the v2 line, if any.
pub(crate) fn unified_path(entries: &[ProcCgroup]) -> Option<&str> {
    entries.iter().find(|e| e.hierarchy_id == 0 && e.controllers.is_empty()).map(|e| e.path.as_str())
}

/// The path of the v1 line that holds any of `controllers`.
pub(crate) fn v1_path<'a>(entries: &'a [ProcCgroup], controllers: &[String]) -> Option<&'a str> {
    entries.iter().find(|e| e.hierarchy_id != 0 && e.controllers.iter().any(|c| controllers.contains(c))).map(|e| e.path.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hybrid_sample() {
        let text = "9:name=systemd:/\n4:memory:/process_api/abc\n2:cpu,cpuacct:/user.slice\n0::/\n";
        let e = parse(text).unwrap();
        assert_eq!(e.len(), 4);
        assert_eq!(e[0].controllers, vec!["name=systemd"]);
        assert_eq!(v1_path(&e, &["cpuacct".into()]), Some("/user.slice"));
        assert_eq!(v1_path(&e, &["memory".into()]), Some("/process_api/abc"));
        assert_eq!(unified_path(&e), Some("/"));
    }

    #[test]
    fn parses_v2_sample_with_colon_in_path() {
        let e = parse("0::/user.slice/user-1000.slice/a:b.scope\n").unwrap();
        assert_eq!(unified_path(&e), Some("/user.slice/user-1000.slice/a:b.scope"));
        assert_eq!(v1_path(&e, &["cpu".into()]), None);
    }

    #[test]
    fn rejects_malformed_lines() {
        assert!(parse("x:cpu:/\n").is_err());
        assert!(parse("1:cpu\n").is_err());
        assert!(parse("1:cpu:relative\n").is_err());
    }
}

//! `run` options and their parsers: bad input fails here, before anything is created.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub host: PathBuf,
    pub container: PathBuf,
    pub read_only: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunOptions {
    pub env: Vec<String>,
    pub volumes: Vec<Volume>,
    pub workdir: Option<String>,
    pub hostname: Option<String>,
    pub user: Option<(u32, Option<u32>)>,
    /// CPU limit in CPUs (0.5 = half a core).
    pub cpus: Option<f64>,
    /// Memory limit in bytes.
    pub memory: Option<i64>,
    pub pids_limit: Option<i64>,
    pub read_only: bool,
    /// Run conductor's minimal init as pid 1 (forwards signals, reaps).
    pub init: bool,
    pub tty: bool,
    pub interactive: bool,
    pub detach: bool,
    /// Namespaces shared with the host instead of new ones (`--pid host`, `--uts host`, `--ipc host`).
    #[serde(default)]
    pub host_namespaces: Vec<String>,
    /// Connect the container to the host before its program starts (`--network`, `--internet`, `-p`).
    #[serde(default)]
    pub network: Option<crate::network::NetRequest>,
    /// Files and directories copied into the rootfs before the program starts (`cp` semantics).
    #[serde(default)]
    pub copy: Vec<crate::cp::CopySpec>,
    /// What the monitor does when the program exits.
    #[serde(default)]
    pub restart: crate::restart::RestartPolicy,
    /// Free-form key/value labels (Docker's `--label`); stacks record their service here.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
}

fn bad(opt: &str, v: &str, why: &str) -> Error {
    Error::Invalid(format!("invalid {opt} {v:?}: {why}"))
}

/// `-e K=V` (or `-e K`, taking K from our environment, as Docker does).
pub fn parse_env(v: &str) -> Result<String> {
    match v.split_once('=') {
        Some((k, _)) if valid_env_key(k) => Ok(v.to_string()),
        None if valid_env_key(v) => Ok(format!("{v}={}", std::env::var(v).unwrap_or_default())),
        _ => Err(bad("-e", v, "expected KEY=VALUE with KEY made of letters, digits and _")),
    }
}

fn valid_env_key(k: &str) -> bool {
    !k.is_empty() && !k.starts_with(|c: char| c.is_ascii_digit()) && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `-v HOST:CTR[:ro|:rw]`: both absolute; the host path must exist.
pub fn parse_volume(v: &str) -> Result<Volume> {
    let parts: Vec<&str> = v.split(':').collect();
    let (host, ctr, mode) = match parts.as_slice() {
        [h, c] => (*h, *c, "rw"),
        [h, c, m] => (*h, *c, *m),
        _ => return Err(bad("-v", v, "expected HOST:CONTAINER[:ro]")),
    };
    if !host.starts_with('/') || !ctr.starts_with('/') {
        return Err(bad("-v", v, "both paths must be absolute"));
    }
    if ctr.split('/').any(|c| c == "..") {
        return Err(bad("-v", v, "container path must not contain .."));
    }
    let read_only = match mode {
        "ro" => true,
        "rw" => false,
        _ => return Err(bad("-v", v, "mode must be ro or rw")),
    };
    if !std::path::Path::new(host).exists() {
        return Err(bad("-v", v, "host path does not exist"));
    }
    Ok(Volume { host: host.into(), container: ctr.into(), read_only })
}

/// `--cpus 0.5`: a positive number of CPUs, at most the machine's.
pub fn parse_cpus(v: &str) -> Result<f64> {
    let n: f64 = v.parse().map_err(|_| bad("--cpus", v, "not a number"))?;
    let max = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
    if n.is_nan() || n <= 0.0 || n > max || n * 100_000.0 < 1000.0 {
        return Err(bad("--cpus", v, &format!("must be between 0.01 and {max}")));
    }
    Ok(n)
}

/// `--memory 512m`: bytes with an optional b/k/m/g suffix; at least 6 MiB as Docker requires.
pub fn parse_memory(v: &str) -> Result<i64> {
    let s = v.trim().to_ascii_lowercase();
    let (num, mult) = match s.chars().last() {
        Some('b') => (&s[..s.len() - 1], 1),
        Some('k') => (&s[..s.len() - 1], 1 << 10),
        Some('m') => (&s[..s.len() - 1], 1 << 20),
        Some('g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s.as_str(), 1),
    };
    let n: i64 = num.parse().map_err(|_| bad("--memory", v, "expected a size such as 512m or 1g"))?;
    let bytes = n.checked_mul(mult).filter(|b| *b > 0).ok_or_else(|| bad("--memory", v, "out of range"))?;
    if bytes < 6 << 20 {
        return Err(bad("--memory", v, "minimum is 6m"));
    }
    Ok(bytes)
}

/// `--pids-limit N`: positive, or -1 for unlimited.
pub fn parse_pids(v: &str) -> Result<i64> {
    match v.parse::<i64>() {
        Ok(n) if n > 0 || n == -1 => Ok(n),
        _ => Err(bad("--pids-limit", v, "must be a positive number or -1")),
    }
}

/// `--pid host` and friends: only `host` is a value (a new namespace is the default).
pub fn parse_host_namespace(opt: &str, v: &str) -> Result<bool> {
    match v {
        "host" => Ok(true),
        "private" | "" => Ok(false),
        _ => Err(bad(opt, v, "expected host (share the host's) or private (the default)")),
    }
}

/// `--user UID[:GID]` (numeric).
pub fn parse_user(v: &str) -> Result<(u32, Option<u32>)> {
    let (u, g) = match v.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (v, None),
    };
    let uid = u.parse().map_err(|_| bad("--user", v, "expected numeric UID[:GID]"))?;
    let gid = g.map(|g| g.parse().map_err(|_| bad("--user", v, "expected numeric UID[:GID]"))).transpose()?;
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env() {
        assert_eq!(parse_env("A=b=c").unwrap(), "A=b=c");
        assert!(parse_env("=x").is_err());
        assert!(parse_env("1A=x").is_err());
        assert!(parse_env("A-B=x").is_err());
    }

    #[test]
    fn volumes() {
        let v = parse_volume("/tmp:/data:ro").unwrap();
        assert!(v.read_only);
        assert_eq!(v.container, PathBuf::from("/data"));
        for bad in ["/tmp", "tmp:/x", "/tmp:x", "/tmp:/x:rx", "/nonexistent-path:/x", "/tmp:/../x", "/a:/b:/c:/d"] {
            assert!(parse_volume(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_and_limits() {
        assert_eq!(parse_memory("512m").unwrap(), 512 << 20);
        assert_eq!(parse_memory("1G").unwrap(), 1 << 30);
        for bad in ["", "abc", "-5m", "1k", "12q"] {
            assert!(parse_memory(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_cpus("0.5").unwrap(), 0.5);
        for bad in ["0", "-1", "x", "1000", "0.001"] {
            assert!(parse_cpus(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_pids("-1").unwrap(), -1);
        assert!(parse_pids("0").is_err());
        assert_eq!(parse_user("1000:100").unwrap(), (1000, Some(100)));
        assert!(parse_user("bob").is_err());
    }
}

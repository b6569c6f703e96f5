//! A running container's resources: `update` (new limits, applied live and recorded so
//! `inspect` shows them), `pause`/`unpause` (the cgroup freezer) and `stats` (Docker's columns:
//! CPU %, memory usage / limit, memory %, pids), all read from and written to the container's
//! cgroup through the runtime.

use std::time::{Duration, Instant};

use conductor_runtime::oci_spec::runtime::LinuxResources;
use conductor_runtime::state::Status as RtStatus;
use serde::Serialize;
use serde_json::{json, Value};

use crate::container::Engine;
use crate::error::{Context, Error, Result};
use crate::record::{self, State, Status};

/// The CFS period the engine uses: `--cpus N` is a quota of N periods.
pub const CPU_PERIOD: i64 = 100_000;

/// How long `stats` watches the CPU counter for its CPU %.
pub const STATS_INTERVAL: Duration = Duration::from_millis(500);

/// New limits for `update`; None leaves a limit as it is.
#[derive(Debug, Clone, Default)]
pub struct ResourceUpdate {
    /// CPUs (0.5 = half a core), as parsed by `options::parse_cpus`.
    pub cpus: Option<f64>,
    /// Bytes, as parsed by `options::parse_memory`. The swap limit follows (no swap), as at `run`.
    pub memory: Option<i64>,
    /// Processes; -1 = unlimited.
    pub pids_limit: Option<i64>,
}

impl ResourceUpdate {
    pub fn is_empty(&self) -> bool {
        self.cpus.is_none() && self.memory.is_none() && self.pids_limit.is_none()
    }

    /// The `linux.resources` this update asks the runtime for.
    pub fn to_resources(&self) -> LinuxResources {
        let mut r = json!({});
        if let Some(c) = self.cpus {
            r["cpu"] = json!({"quota": cpu_quota(c), "period": CPU_PERIOD});
        }
        if let Some(m) = self.memory {
            r["memory"] = json!({"limit": m, "swap": m});
        }
        if let Some(p) = self.pids_limit {
            r["pids"] = json!({"limit": p});
        }
        serde_json::from_value(r).expect("valid resources")
    }
}

/// `--cpus` as a CFS quota in microseconds per [`CPU_PERIOD`].
pub fn cpu_quota(cpus: f64) -> i64 {
    (cpus * CPU_PERIOD as f64).round() as i64
}

/// One row of `stats`.
#[derive(Debug, Clone, Serialize)]
pub struct ContainerStats {
    pub name: String,
    /// CPU time used over the sampling interval, 100 = one full CPU.
    pub cpu_percent: f64,
    /// Bytes in use, without inactive page cache (Docker's figure: usage - inactive_file).
    pub memory_usage: u64,
    /// The cgroup's limit, or the machine's memory when there is none.
    pub memory_limit: u64,
    pub memory_percent: f64,
    pub pids: u64,
}

/// One reading of a container's counters; two make a [`ContainerStats`].
#[derive(Debug, Clone)]
pub struct StatsSample {
    pub name: String,
    pub at: Instant,
    /// Total CPU time in nanoseconds.
    pub cpu_ns: u64,
    pub memory_usage: u64,
    pub memory_limit: u64,
    pub pids: u64,
}

impl ContainerStats {
    /// The figures of `cur`, with the CPU % from the CPU time used since `prev`.
    pub fn between(prev: &StatsSample, cur: &StatsSample) -> ContainerStats {
        let wall = cur.at.saturating_duration_since(prev.at).as_nanos() as f64;
        let cpu = cur.cpu_ns.saturating_sub(prev.cpu_ns) as f64;
        let cpu_percent = if wall > 0.0 { cpu / wall * 100.0 } else { 0.0 };
        let memory_percent = if cur.memory_limit > 0 { cur.memory_usage as f64 / cur.memory_limit as f64 * 100.0 } else { 0.0 };
        ContainerStats {
            name: cur.name.clone(),
            cpu_percent,
            memory_usage: cur.memory_usage,
            memory_limit: cur.memory_limit,
            memory_percent,
            pids: cur.pids,
        }
    }
}

impl Engine {
    /// Change a running container's limits. Everything is checked (here and by the cgroups
    /// crate) before the first write; then the recorded options (container.json) and the
    /// bundle's config.json follow, so `inspect` shows what is in force.
    pub fn update(&self, cname: &str, u: &ResourceUpdate) -> Result<()> {
        if u.is_empty() {
            return Err(Error::Invalid("nothing to update: give --cpus, --memory or --pids-limit".into()));
        }
        let dir = self.existing(cname)?;
        let _lock = record::lock(&self.paths, cname)?;
        let st = dir.state()?;
        if !self.init_alive(&st) {
            return Err(Error::Invalid(format!("container {cname:?} is not running")));
        }
        let merged = conductor_runtime::update(&self.runtime_root(), cname, &u.to_resources())?;
        let mut c = dir.config()?;
        c.options.cpus = u.cpus.or(c.options.cpus);
        c.options.memory = u.memory.or(c.options.memory);
        c.options.pids_limit = u.pids_limit.or(c.options.pids_limit);
        dir.save_config(&c)?;
        let bundle = dir.path.join("config.json");
        let raw = std::fs::read(&bundle).ctx(|| format!("read {}", bundle.display()))?;
        let mut oci: Value = serde_json::from_slice(&raw).map_err(|e| Error::Invalid(format!("{}: {e}", bundle.display())))?;
        oci["linux"]["resources"] = serde_json::to_value(&merged).expect("resources serialize");
        record::write_json(&bundle, &oci)
    }

    /// Freeze every process of a running container.
    pub fn pause(&self, cname: &str) -> Result<()> {
        let dir = self.existing(cname)?;
        let _lock = record::lock(&self.paths, cname)?;
        match self.live_status(cname, &dir.state()?) {
            Status::Running => Ok(conductor_runtime::lifecycle::pause(&self.runtime_root(), cname)?),
            Status::Paused => Err(Error::Invalid(format!("container {cname:?} is already paused"))),
            _ => Err(Error::Invalid(format!("container {cname:?} is not running"))),
        }
    }

    /// Thaw a paused container.
    pub fn unpause(&self, cname: &str) -> Result<()> {
        let dir = self.existing(cname)?;
        let _lock = record::lock(&self.paths, cname)?;
        match self.live_status(cname, &dir.state()?) {
            Status::Paused => Ok(conductor_runtime::lifecycle::resume(&self.runtime_root(), cname)?),
            Status::Running => Err(Error::Invalid(format!("container {cname:?} is not paused"))),
            _ => Err(Error::Invalid(format!("container {cname:?} is not running"))),
        }
    }

    /// [`Engine::status`], with a frozen container reported as paused.
    pub fn live_status(&self, cname: &str, st: &State) -> Status {
        match self.status(st) {
            Status::Running if self.runtime_status(cname) == Some(RtStatus::Paused) => Status::Paused,
            s => s,
        }
    }

    fn runtime_status(&self, cname: &str) -> Option<RtStatus> {
        conductor_runtime::state(&self.runtime_root(), cname).ok().map(|s| s.status)
    }

    /// Stats of one container, its CPU % measured over [`STATS_INTERVAL`].
    pub fn stats(&self, cname: &str) -> Result<ContainerStats> {
        let mut v = self.stats_many(&[cname.to_string()], STATS_INTERVAL)?;
        Ok(v.remove(0))
    }

    /// Stats of several containers, all sampled twice `interval` apart (one wait for all).
    pub fn stats_many(&self, names: &[String], interval: Duration) -> Result<Vec<ContainerStats>> {
        let first = names.iter().map(|n| self.stats_sample(n)).collect::<Result<Vec<_>>>()?;
        std::thread::sleep(interval);
        first.iter().map(|p| Ok(ContainerStats::between(p, &self.stats_sample(&p.name)?))).collect()
    }

    /// Read a running (or paused) container's counters from its cgroup.
    pub fn stats_sample(&self, cname: &str) -> Result<StatsSample> {
        let dir = self.existing(cname)?;
        let st = dir.state()?;
        if !self.init_alive(&st) {
            return Err(Error::Invalid(format!("container {cname:?} is not running")));
        }
        let rt = conductor_runtime::state::Dir::open(&self.runtime_root(), cname)?.load()?;
        let at = Instant::now();
        let s = rt.cgroup.stats()?;
        let raw = &s.memory.raw;
        // v1 names the hierarchical figure total_inactive_file; v2 has only inactive_file.
        let inactive = raw.get("total_inactive_file").or_else(|| raw.get("inactive_file")).copied().unwrap_or(0);
        let usage = s.memory.usage.usage;
        let usage = if inactive < usage { usage - inactive } else { usage };
        let host = host_memory().unwrap_or(u64::MAX);
        let limit = match s.memory.usage.limit {
            0 => host,
            l => l.min(host),
        };
        Ok(StatsSample {
            name: cname.into(),
            at,
            cpu_ns: s.cpu.usage.total,
            memory_usage: usage,
            memory_limit: limit,
            pids: s.pids.current,
        })
    }

    /// Names of the containers that are running or paused (what `stats` shows by default).
    pub fn live_names(&self) -> Vec<String> {
        self.list(false).into_iter().map(|s| s.name).collect()
    }
}

/// MemTotal from /proc/meminfo, in bytes.
fn host_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_maps_to_runtime_resources() {
        let u = ResourceUpdate { cpus: Some(1.5), memory: Some(64 << 20), pids_limit: Some(-1) };
        let v = serde_json::to_value(u.to_resources()).unwrap();
        assert_eq!(
            v,
            json!({"cpu": {"quota": 150_000, "period": 100_000}, "memory": {"limit": 67108864, "swap": 67108864}, "pids": {"limit": -1}})
        );
        let only = ResourceUpdate { pids_limit: Some(7), ..Default::default() };
        assert_eq!(serde_json::to_value(only.to_resources()).unwrap(), json!({"pids": {"limit": 7}}));
        assert!(ResourceUpdate::default().is_empty());
        assert_eq!(cpu_quota(0.5), 50_000);
    }

    #[test]
    fn cpu_percent_is_relative_to_one_cpu() {
        let t0 = Instant::now();
        let s = |at: Instant, cpu_ns: u64| StatsSample {
            name: "c".into(),
            at,
            cpu_ns,
            memory_usage: 8 << 20,
            memory_limit: 32 << 20,
            pids: 3,
        };
        let st = ContainerStats::between(&s(t0, 1_000_000_000), &s(t0 + Duration::from_secs(2), 2_000_000_000));
        assert!((st.cpu_percent - 50.0).abs() < 1e-9);
        assert!((st.memory_percent - 25.0).abs() < 1e-9);
        let two = ContainerStats::between(&s(t0, 0), &s(t0 + Duration::from_secs(1), 2_000_000_000));
        assert!((two.cpu_percent - 200.0).abs() < 1e-9);
        let same = ContainerStats::between(&s(t0, 5), &s(t0, 5));
        assert_eq!(same.cpu_percent, 0.0);
    }
}

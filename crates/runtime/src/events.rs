//! `events`: runc's event stream, one JSON object per line. With `stats_only`, a single
//! `{"type":"stats","id":ID,"data":{...}}` and done (runc's `events --stats`); otherwise a stats
//! event every interval plus `{"type":"oom","id":ID}` whenever the kernel's OOM killer has struck
//! in the container's cgroup, until the container stops.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use conductor_cgroups::Stats;
use serde::Serialize;

use crate::error::{Context, Error, Result};
use crate::state::{Dir, Status};

/// How often the OOM counter is read between stats events (runc is woken by the kernel; a
/// short poll is close enough and needs no eventfd).
const OOM_POLL: Duration = Duration::from_millis(100);

#[derive(Debug, Serialize)]
pub struct Event<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Stats>,
}

/// Write events for container `id` to `out` (see the module docs). A zero interval is refused,
/// as is a stopped container.
pub fn events(root: &Path, id: &str, stats_only: bool, interval: Duration, out: &mut dyn Write) -> Result<()> {
    if interval.is_zero() {
        return Err(Error::Invalid("events: the interval must be greater than 0".into()));
    }
    let dir = Dir::open(root, id)?;
    let st = dir.load()?;
    let status = st.status(&dir);
    if status == Status::Stopped {
        return Err(Error::WrongState {
            id: id.into(),
            status: status.to_string(),
            op: "show events",
            needs: "a live container",
        });
    }
    let cg = &st.cgroup;
    let emit = |out: &mut dyn Write, kind, data| -> Result<()> {
        let mut line = serde_json::to_vec(&Event { kind, id, data }).expect("event serializes");
        line.push(b'\n');
        out.write_all(&line).and_then(|()| out.flush()).ctx(|| "write event".into())
    };
    if stats_only {
        return emit(out, "stats", Some(cg.stats()?));
    }
    let mut ooms = cg.oom_kill_count().unwrap_or(0);
    let mut next_stats = Instant::now() + interval;
    loop {
        let now = Instant::now();
        std::thread::sleep(OOM_POLL.min(next_stats.saturating_duration_since(now)));
        // The counter is read before the liveness check, so the kill that ended the container
        // is still reported.
        if let Ok(n) = cg.oom_kill_count() {
            for _ in ooms..n {
                emit(out, "oom", None)?;
            }
            ooms = ooms.max(n);
        }
        if !dir.path.exists() || st.status(&dir) == Status::Stopped {
            return Ok(());
        }
        if Instant::now() >= next_stats {
            match cg.stats() {
                Ok(s) => emit(out, "stats", Some(s))?,
                // The cgroup went away with the container: the next round ends the stream.
                Err(e) => tracing::warn!("stats of {id}: {e}"),
            }
            next_stats += interval;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_shapes_match_runc() {
        let oom = serde_json::to_value(Event { kind: "oom", id: "c1", data: None }).unwrap();
        assert_eq!(oom, serde_json::json!({"type": "oom", "id": "c1"}));
        let mut s = Stats::default();
        s.pids.current = 3;
        let st = serde_json::to_value(Event { kind: "stats", id: "c1", data: Some(s) }).unwrap();
        assert_eq!(st["type"], "stats");
        assert_eq!(st["data"]["pids"]["current"], 3);
        assert!(st["data"]["cpu"]["usage"].is_object());
    }
}

//! Freezing and thawing: v1 through freezer.state, v2 through cgroup.freeze, confirmed in
//! cgroup.events. Freezing is not instant (tasks in the kernel must reach a safe point), so
//! both wait for the kernel to report the final state.

use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fs;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FreezerState {
    Thawed,
    /// Asked to freeze, some tasks not stopped yet.
    Freezing,
    Frozen,
}

const TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) fn v1_state(dir: &Path) -> Result<FreezerState> {
    match fs::read_trim(&dir.join("freezer.state"))?.as_str() {
        "THAWED" => Ok(FreezerState::Thawed),
        "FREEZING" => Ok(FreezerState::Freezing),
        "FROZEN" => Ok(FreezerState::Frozen),
        other => Err(Error::parse(dir.join("freezer.state").display().to_string(), format!("unknown state {other:?}"))),
    }
}

pub(crate) fn v1_set(dir: &Path, frozen: bool) -> Result<()> {
    let (value, want) = if frozen { ("FROZEN", FreezerState::Frozen) } else { ("THAWED", FreezerState::Thawed) };
    let file = dir.join("freezer.state");
    fs::write(&file, value)?;
    let start = Instant::now();
    let mut delay = Duration::from_millis(1);
    loop {
        if v1_state(dir)? == want {
            return Ok(());
        }
        if start.elapsed() > TIMEOUT {
            if frozen {
                // Leave nothing half-frozen behind a failed freeze.
                let _ = fs::write(&file, "THAWED");
            }
            return Err(Error::Unsupported(format!("{}: timed out waiting for {value}", file.display())));
        }
        sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(50));
        // A task forked while freezing can escape the first request; asking again catches it.
        if frozen {
            fs::write(&file, value)?;
        }
    }
}

pub(crate) fn v2_state(dir: &Path) -> Result<FreezerState> {
    if fs::read_trim(&dir.join("cgroup.freeze"))? == "0" {
        return Ok(FreezerState::Thawed);
    }
    Ok(if v2_events_frozen(dir)? { FreezerState::Frozen } else { FreezerState::Freezing })
}

fn v2_events_frozen(dir: &Path) -> Result<bool> {
    let events = fs::read(&dir.join("cgroup.events"))?;
    Ok(events.lines().any(|l| l.trim() == "frozen 1"))
}

pub(crate) fn v2_set(dir: &Path, frozen: bool) -> Result<()> {
    fs::write(&dir.join("cgroup.freeze"), if frozen { "1" } else { "0" })?;
    let start = Instant::now();
    let mut delay = Duration::from_millis(1);
    while v2_events_frozen(dir)? != frozen {
        if start.elapsed() > TIMEOUT {
            if frozen {
                let _ = fs::write(&dir.join("cgroup.freeze"), "0");
            }
            return Err(Error::Unsupported(format!("{}: timed out waiting for frozen={}", dir.display(), u8::from(frozen))));
        }
        sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(50));
    }
    Ok(())
}

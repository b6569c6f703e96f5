//! Restart policies (Docker's `--restart no|on-failure[:N]|always[:N]`), carried out by the
//! container's monitor: when the program exits and the policy says so, the monitor re-creates
//! the container in place and starts it again. In place means the same rootfs (overlay upper
//! dir), `/etc` files and network address: the veth pair died with the old network namespace,
//! so it is made again from the recorded allocation, while the firewall elements (keyed by the
//! address) and the peers' hosts entries stay valid.
//!
//! `stop` must stop a container for good: it writes a `stopping` marker (under the name lock)
//! before it signals, and the monitor re-creates only under the name lock and only while the
//! marker is absent.

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::Flock;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::monitor::Launch;
use crate::paths::Paths;
use crate::record::{self, Dir};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartMode {
    #[default]
    No,
    OnFailure,
    Always,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartPolicy {
    pub mode: RestartMode,
    /// At most this many restarts; None: no limit.
    pub max: Option<u32>,
}

impl RestartPolicy {
    /// `no`, `on-failure`, `always`, each of the last two with an optional `:MAX`.
    pub fn parse(s: &str) -> Result<RestartPolicy> {
        let bad = |why: &str| Error::Invalid(format!("invalid restart policy {s:?}: {why}"));
        let (mode, max) = match s.split_once(':') {
            Some((m, n)) => (m, Some(n.parse::<u32>().map_err(|_| bad("the maximum must be a number"))?)),
            None => (s, None),
        };
        let mode = match mode {
            "no" if max.is_none() => RestartMode::No,
            "no" => return Err(bad("`no` takes no maximum")),
            "on-failure" => RestartMode::OnFailure,
            "always" => RestartMode::Always,
            _ => return Err(bad("expected no, on-failure[:MAX] or always[:MAX]")),
        };
        Ok(RestartPolicy { mode, max })
    }

    /// Whether a program that exited with `code` after `restarts` restarts goes again.
    pub fn should_restart(&self, code: i32, restarts: u32) -> bool {
        let wanted = match self.mode {
            RestartMode::No => false,
            RestartMode::OnFailure => code != 0,
            RestartMode::Always => true,
        };
        wanted && self.max.is_none_or(|m| restarts < m)
    }

    /// Docker's back-off: 100 ms, doubled each restart, at most 5 s (so a crash loop does not
    /// spin, and a stop never waits long).
    pub fn delay(restarts: u32) -> Duration {
        Duration::from_millis(100u64.saturating_mul(1 << restarts.min(6))).min(Duration::from_secs(5))
    }
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = match self.mode {
            RestartMode::No => "no",
            RestartMode::OnFailure => "on-failure",
            RestartMode::Always => "always",
        };
        match self.max {
            Some(n) => write!(f, "{m}:{n}"),
            None => f.write_str(m),
        }
    }
}

fn marker(dir: &Path) -> PathBuf {
    dir.join("stopping")
}

/// `stop` calls this under the name lock before it signals: no restart after this.
pub(crate) fn mark_stopping(dir: &Dir) -> Result<()> {
    let p = marker(&dir.path);
    std::fs::write(&p, b"").map_err(|err| Error::Io { what: format!("write {}", p.display()), err })
}

fn stopping(dir: &Dir) -> bool {
    marker(&dir.path).exists() || !dir.exists()
}

/// A re-creation the monitor is about to start: the launch to use, and the name lock, held
/// until the container runs (so `stop` waits for it, then stops the new one).
pub(crate) struct Relaunch {
    pub launch: Launch<'static>,
    _lock: Flock<File>,
}

/// Called by the monitor after the program exited with `code` and the exit was recorded: when
/// the policy asks for another run, wait the back-off, take the name lock, remove the old
/// runtime state and count the restart. None: the monitor is done.
pub(crate) fn prepare(l: &Launch<'_>, dir: &Dir, code: i32) -> Option<Relaunch> {
    let policy = dir.config().ok()?.options.restart;
    let restarts = dir.state().ok()?.restart_count;
    if !policy.should_restart(code, restarts) {
        return None;
    }
    let lock = wait_for_lock(l, dir, RestartPolicy::delay(restarts))?;
    if let Err(e) = conductor_runtime::delete(&l.runtime_root, &l.name, true) {
        tracing::warn!("restart {}: removing the old runtime state: {e}", l.name);
    }
    let mut st = dir.state().ok()?;
    st.restart_count += 1;
    st.exit_code = None;
    st.finished = None;
    dir.save_state(&st).ok()?;
    let hook_dir = dir.path.clone();
    let launch = Launch {
        runtime_root: l.runtime_root.clone(),
        name: l.name.clone(),
        dir: l.dir.clone(),
        tty: l.tty,
        interactive: false,
        detach: true,
        lock_fd: -1,
        on_created: Some(Box::new(move |pid| crate::network::reattach(&Dir { path: hook_dir.clone() }, pid))),
    };
    Some(Relaunch { launch, _lock: lock })
}

/// Sleep `delay`, then take the name lock without blocking a `stop` that holds it: give up as
/// soon as the container is being stopped (or gone).
fn wait_for_lock(l: &Launch<'_>, dir: &Dir, delay: Duration) -> Option<Flock<File>> {
    let paths = paths_of(l);
    let start = Instant::now();
    loop {
        if stopping(dir) {
            return None;
        }
        if start.elapsed() >= delay {
            if let Ok(Some(lock)) = record::try_lock(&paths, &l.name) {
                // Checked again under the lock: a stop may have just finished.
                return (!stopping(dir)).then_some(lock);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The engine's paths as the monitor knows them: `<data>/containers/<name>` and
/// `<run>/runtime`.
fn paths_of(l: &Launch<'_>) -> Paths {
    let data = l.dir.parent().and_then(Path::parent).unwrap_or(Path::new("/"));
    let run = l.runtime_root.parent().unwrap_or(Path::new("/"));
    Paths::new(data, run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_forms() {
        assert_eq!(RestartPolicy::parse("no").unwrap(), RestartPolicy::default());
        let p = RestartPolicy::parse("on-failure:3").unwrap();
        assert_eq!((p.mode, p.max), (RestartMode::OnFailure, Some(3)));
        assert_eq!(p.to_string(), "on-failure:3");
        assert_eq!(RestartPolicy::parse("always").unwrap().to_string(), "always");
        for bad in ["", "sometimes", "no:2", "always:x", "on-failure:-1"] {
            assert!(RestartPolicy::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn decisions() {
        let on_failure = RestartPolicy::parse("on-failure:2").unwrap();
        assert!(on_failure.should_restart(1, 0));
        assert!(on_failure.should_restart(137, 1));
        assert!(!on_failure.should_restart(1, 2), "the maximum is reached");
        assert!(!on_failure.should_restart(0, 0), "a clean exit is not a failure");
        assert!(RestartPolicy::parse("always").unwrap().should_restart(0, 1000));
        assert!(!RestartPolicy::default().should_restart(1, 0));
    }

    #[test]
    fn back_off_is_bounded() {
        assert_eq!(RestartPolicy::delay(0), Duration::from_millis(100));
        assert_eq!(RestartPolicy::delay(2), Duration::from_millis(400));
        assert_eq!(RestartPolicy::delay(40), Duration::from_secs(5));
    }
}

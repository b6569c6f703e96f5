//! `--explain`: every kernel-level step the libraries take, one line each on the terminal the
//! command was started from. The steps are the libraries' structured trace events with target
//! `conductor::explain` (clone3 flags, setns, mounts with type and flags, pivot_root,
//! sethostname, cgroup files written, rtnetlink changes, nft commands); nothing here prints on
//! its own.
//!
//! The output is a close-on-exec duplicate of stderr taken at start-up, so the processes that
//! this one forks (the monitor, the container's init before it execs the program) report into
//! the same place, while their own stdio is the container's. Each line is prefixed with the
//! process that took the step, because several take part in one command.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

static OUT: Mutex<Option<File>> = Mutex::new(None);

/// Start explaining to (a duplicate of) stderr; returns the layer to install.
pub fn to_stderr() -> std::io::Result<Explain> {
    // std duplicates with F_DUPFD_CLOEXEC: a program the container execs never inherits it.
    let fd: OwnedFd = std::io::stderr().as_fd().try_clone_to_owned()?;
    *OUT.lock().unwrap_or_else(|e| e.into_inner()) = Some(File::from(fd));
    Ok(Explain)
}

/// Stop explaining from this process (a detached container's monitor, which outlives the
/// command: it must not hold the terminal or a pipe open).
pub fn finish() {
    OUT.lock().unwrap_or_else(|e| e.into_inner()).take();
}

/// The tracing layer that writes explain events.
pub struct Explain;

impl<S: Subscriber> Layer<S> for Explain {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() != conductor_sys::EXPLAIN {
            return;
        }
        let mut f = Fields::default();
        event.record(&mut f);
        let line = format!("{}: {}\n", who(), f.render());
        if let Ok(mut out) = OUT.lock() {
            if let Some(o) = out.as_mut() {
                let _ = o.write_all(line.as_bytes());
            }
        }
    }
}

/// `conductor[1234]`, `conductor-mon[1240]`: the process taking the step.
/// (The name comes from prctl, not /proc: a process that joined a container's mount namespace
/// sees the container's /proc, where it may not exist.)
fn who() -> String {
    format!("{}[{}]", conductor_sys::process::name(), std::process::id())
}

/// An event's fields: its step (or message) first, the arguments after it.
#[derive(Default)]
struct Fields {
    step: String,
    args: Vec<(String, String)>,
}

impl Fields {
    fn render(&self) -> String {
        let mut s = self.step.clone();
        for (k, v) in &self.args {
            s += &format!(" {k}={v}");
        }
        s
    }

    fn put(&mut self, field: &Field, value: String) {
        if value == "None" {
            return;
        }
        match field.name() {
            "step" | "message" if self.step.is_empty() => self.step = value,
            name => self.args.push((name.to_string(), value)),
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, tidy(&format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.to_string());
    }
}

/// `CloneFlags(CLONE_NEWNS | CLONE_NEWPID)` -> `CLONE_NEWNS|CLONE_NEWPID`: bitflags as a C
/// programmer writes them.
fn tidy(debug: &str) -> String {
    let debug = debug.strip_prefix("Some(").and_then(|d| d.strip_suffix(')')).unwrap_or(debug);
    let inner = match (debug.find('('), debug.ends_with(')')) {
        (Some(i), true) if debug[..i].chars().all(|c| c.is_ascii_alphanumeric()) && debug[..i].ends_with("Flags") => {
            &debug[i + 1..debug.len() - 1]
        }
        _ => debug,
    };
    inner.replace(" | ", "|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_read_like_c() {
        assert_eq!(tidy("CloneFlags(CLONE_NEWNS | CLONE_NEWPID)"), "CLONE_NEWNS|CLONE_NEWPID");
        assert_eq!(tidy("MsFlags(MS_NOSUID | MS_NODEV | MS_NOEXEC)"), "MS_NOSUID|MS_NODEV|MS_NOEXEC");
        assert_eq!(tidy("\"/proc\""), "\"/proc\"");
        assert_eq!(tidy("Some(192.168.1.1)"), "192.168.1.1");
    }

    #[test]
    fn step_first_then_arguments() {
        let f = Fields { step: "mount".into(), args: vec![("fstype".into(), "proc".into()), ("target".into(), "/proc".into())] };
        assert_eq!(f.render(), "mount fstype=proc target=/proc");
    }
}

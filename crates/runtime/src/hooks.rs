//! OCI hooks: programs run at lifecycle points with the container state on stdin.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

use crate::error::{Error, Result};

/// Run `hooks` in order; the first failure stops the sequence.
pub fn run(kind: &'static str, hooks: Option<&Vec<Hook>>, state_json: &[u8]) -> Result<()> {
    for h in hooks.into_iter().flatten() {
        run_one(kind, h, state_json)?;
    }
    Ok(())
}

/// Run hooks whose failure is only worth a warning (poststart, poststop).
pub fn run_warn(kind: &'static str, hooks: Option<&Vec<Hook>>, state_json: &[u8]) {
    for h in hooks.into_iter().flatten() {
        if let Err(e) = run_one(kind, h, state_json) {
            tracing::warn!("{e}");
        }
    }
}

fn run_one(kind: &'static str, h: &Hook, state_json: &[u8]) -> Result<()> {
    let path = h.path().display().to_string();
    let fail = |msg: String| Error::Hook { kind, path: path.clone(), msg };
    tracing::debug!(target: conductor_sys::EXPLAIN, step = "hook", kind, path = %path);
    let args = h.args().clone().unwrap_or_default();
    let mut cmd = Command::new(h.path());
    if let Some((argv0, rest)) = args.split_first() {
        use std::os::unix::process::CommandExt;
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear();
    for kv in h.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    let mut child =
        cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().map_err(|e| fail(e.to_string()))?;
    // A hook may exit without reading its stdin; a broken pipe is not a failure.
    let _ = child.stdin.take().expect("piped").write_all(state_json);
    let deadline = h.timeout().filter(|t| *t > 0).map(|t| Instant::now() + Duration::from_secs(t as u64));
    loop {
        if let Some(st) = child.try_wait().map_err(|e| fail(e.to_string()))? {
            if st.success() {
                return Ok(());
            }
            let mut err = String::new();
            use std::io::Read;
            let _ = child.stderr.take().expect("piped").read_to_string(&mut err);
            return Err(fail(format!("{st}{}", if err.is_empty() { String::new() } else { format!(": {}", err.trim()) })));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail(format!("timed out after {}s", h.timeout().unwrap_or(0))));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::HookBuilder;

    fn hook(script: &str, timeout: Option<i64>) -> Hook {
        let mut b = HookBuilder::default().path("/bin/sh").args(vec!["sh".into(), "-c".into(), script.into()]);
        if let Some(t) = timeout {
            b = b.timeout(t);
        }
        b.build().unwrap()
    }

    #[test]
    fn state_on_stdin_and_failures() {
        let out = std::env::temp_dir().join(format!("cnd-hook-{}", std::process::id()));
        let h = hook(&format!("cat > {}", out.display()), None);
        run("prestart", Some(&vec![h]), b"{\"id\":\"x\"}").unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"{\"id\":\"x\"}");
        std::fs::remove_file(&out).unwrap();
        let e = run("prestart", Some(&vec![hook("echo nope >&2; exit 3", None)]), b"").unwrap_err().to_string();
        assert!(e.contains("exit status: 3") && e.contains("nope"), "{e}");
        let e = run("prestart", Some(&vec![hook("sleep 5", Some(1))]), b"").unwrap_err().to_string();
        assert!(e.contains("timed out after 1s"), "{e}");
    }
}

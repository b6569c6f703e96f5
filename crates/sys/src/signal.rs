//! Signal names and numbers as `kill` accepts them: "TERM", "SIGTERM", "15", "RTMIN+3".

/// Parse a signal given by name or number.
pub fn parse(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return (1..=libc::SIGRTMAX()).contains(&n).then_some(n);
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(off) = name.strip_prefix("RTMIN+") {
        let n = libc::SIGRTMIN() + off.parse::<i32>().ok()?;
        return (n <= libc::SIGRTMAX()).then_some(n);
    }
    if let Some(off) = name.strip_prefix("RTMAX-") {
        let n = libc::SIGRTMAX() - off.parse::<i32>().ok()?;
        return (n >= libc::SIGRTMIN()).then_some(n);
    }
    match name {
        "RTMIN" => return Some(libc::SIGRTMIN()),
        "RTMAX" => return Some(libc::SIGRTMAX()),
        _ => {}
    }
    format!("SIG{name}").parse::<nix::sys::signal::Signal>().ok().map(|s| s as i32)
}

extern "C" fn noop(_: libc::c_int) {}

/// Give `signals` a do-nothing handler. A pid namespace's init only receives signals it has a
/// handler for (SIG_DFL ones are dropped), even when it blocks them and reads a signalfd.
pub fn catch(signals: &[nix::sys::signal::Signal]) -> nix::Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet};
    let act = SigAction::new(SigHandler::Handler(noop), SaFlags::SA_RESTART, SigSet::empty());
    for s in signals {
        // SAFETY: the handler is async-signal-safe (it does nothing).
        unsafe { sigaction(*s, &act) }?;
    }
    Ok(())
}

/// Every signal that can be caught and forwarded (all but SIGKILL, SIGSTOP and SIGCHLD).
pub fn forwardable() -> Vec<nix::sys::signal::Signal> {
    use nix::sys::signal::Signal;
    Signal::iterator().filter(|s| !matches!(s, Signal::SIGKILL | Signal::SIGSTOP | Signal::SIGCHLD)).collect()
}

/// Default dispositions and an empty mask, as a new program should start: ignored signals
/// survive execve (Rust's runtime ignores SIGPIPE, which a container's shell must not inherit).
pub fn reset_for_exec() -> nix::Result<()> {
    use nix::sys::signal::{signal, SigHandler, SigSet, Signal};
    for s in Signal::iterator().filter(|s| !matches!(s, Signal::SIGKILL | Signal::SIGSTOP)) {
        // SAFETY: installing SIG_DFL runs no code of ours.
        unsafe { signal(s, SigHandler::SigDfl) }?;
    }
    SigSet::empty().thread_set_mask()
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("TERM"), Some(15));
        assert_eq!(parse("SIGKILL"), Some(9));
        assert_eq!(parse("hup"), Some(1));
        assert_eq!(parse("9"), Some(9));
        assert_eq!(parse("RTMIN+1"), Some(libc::SIGRTMIN() + 1));
        assert_eq!(parse("0"), None);
        assert_eq!(parse("SIGFOO"), None);
    }
}

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

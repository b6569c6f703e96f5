//! Image names: `[a-z0-9][a-z0-9_.-]{0,127}`, Docker-like and lower case. There are no tags: a
//! name is the whole reference (`debian-bookworm`, not `debian:bookworm`). A name is also the
//! image's directory name, so the rule keeps it a single, ordinary path component, and names
//! starting with '.' stay free for the store's own temporary and trash entries.

use crate::error::{Error, Result};

/// The longest name accepted.
pub const MAX_LEN: usize = 128;

/// Check `name` against the naming rule; the error says what is wrong with it.
pub fn validate(name: &str) -> Result<()> {
    match problem(name) {
        None => Ok(()),
        Some(reason) => Err(Error::InvalidName { name: name.to_string(), reason }),
    }
}

fn problem(name: &str) -> Option<String> {
    let Some(first) = name.chars().next() else {
        return Some("is empty".into());
    };
    if name.len() > MAX_LEN {
        return Some(format!("longer than {MAX_LEN} characters"));
    }
    if name.contains(':') {
        return Some("tags are not supported; use e.g. \"debian-bookworm\"".into());
    }
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return Some("must start with a lower-case letter or a digit".into());
    }
    let bad = name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(*c)));
    bad.map(|c| format!("{c:?} is not allowed (only a-z, 0-9, '_', '.', '-')"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(name: &str) -> String {
        validate(name).unwrap_err().to_string()
    }

    #[test]
    fn accepts_docker_like_names() {
        for n in ["a", "0", "debian", "my_image.v2-final", "9lives", &"x".repeat(MAX_LEN)] {
            validate(n).unwrap_or_else(|e| panic!("{n}: {e}"));
        }
    }

    #[test]
    fn rejects_with_a_reason_naming_the_input() {
        assert_eq!(validate("").unwrap_err().to_string(), "invalid image name \"\": is empty");
        assert!(reason("Debian").contains("\"Debian\""));
        assert!(reason("Debian").contains("lower-case"));
        assert!(reason("debIan").contains("'I' is not allowed"));
        assert!(reason("debian:12").contains("tags are not supported"));
        assert!(reason(".hidden").contains("must start"));
        assert!(reason("-x").contains("must start"));
        assert!(reason("_x").contains("must start"));
        assert!(reason("a/b").contains("'/' is not allowed"));
        assert!(reason("a b").contains("' ' is not allowed"));
        assert!(reason("..").contains("must start"));
        assert!(reason(&"x".repeat(MAX_LEN + 1)).contains("longer than 128"));
        assert!(reason("é").contains("must start"));
    }

    #[test]
    fn error_is_one_line() {
        assert_eq!(reason("a\nb").lines().count(), 1);
    }
}

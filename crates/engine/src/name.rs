//! Container names: what Docker accepts, so a name is always a safe path component.

use crate::error::{Error, Result};

pub fn validate(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if first_ok && rest_ok && name.len() <= 63 {
        Ok(())
    } else {
        Err(Error::Invalid(format!("invalid container name {name:?}: must match [a-zA-Z0-9][a-zA-Z0-9_.-]{{0,62}}")))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names() {
        for ok in ["a", "web-1", "A.b_c", &"x".repeat(63)] {
            super::validate(ok).unwrap();
        }
        for bad in ["", "-a", ".a", "a/b", "a b", "ä", &"x".repeat(64), ".."] {
            assert!(super::validate(bad).is_err(), "{bad:?}");
        }
    }
}

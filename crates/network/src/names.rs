//! Interface names of a container's veth pair: the seed's `<name>-outside` (host end) and
//! `<name>-inside` (container end).
//!
//! A Linux interface name has at most 15 bytes (IFNAMSIZ - 1). When the seed's names do not fit,
//! or the container name holds a character an interface name should not, both ends get a stable
//! short form: the first 4 characters of the name, 7 characters of a hash of the whole name
//! (35 bits), then `-out` / `-in`: `verylongcontainer` -> `veryry7vkbs-out` / `veryry7vkbs-in`.
//! The short suffixes cannot be confused with the seed's: no short form ever equals a seed
//! form, and two long names that share their first characters still differ in the hash. The
//! allocator records the names it hands out and picks a salted variant in the (1 in 3*10^10)
//! case of a hash collision, so two containers never share an interface name.

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The longest interface name the kernel accepts (IFNAMSIZ - 1).
pub const MAX_IFNAME: usize = 15;

const PREFIX_LEN: usize = 4;
const HASH_LEN: usize = 7;

/// The two ends of a container's veth pair.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct IfNames {
    /// The host end: `<name>-outside`.
    pub outside: String,
    /// The container end: `<name>-inside`.
    pub inside: String,
}

impl IfNames {
    /// The names for container `name`: the seed's when they fit, else the short form.
    pub fn for_container(name: &str) -> IfNames {
        IfNames::with_salt(name, 0)
    }

    /// Like [`IfNames::for_container`], with `salt` > 0 forcing a different short form (used by
    /// the allocator only on a hash collision).
    pub fn with_salt(name: &str, salt: u32) -> IfNames {
        let outside = format!("{name}-outside");
        let inside = format!("{name}-inside");
        if salt == 0 && outside.len() <= MAX_IFNAME && name.chars().all(ifname_char) && !name.is_empty() {
            return IfNames { outside, inside };
        }
        let base = short_base(name, salt);
        IfNames { outside: format!("{base}-out"), inside: format!("{base}-in") }
    }

    /// Whether these are the short forms (the container name did not fit).
    pub fn shortened(&self) -> bool {
        !self.outside.ends_with("-outside")
    }
}

/// Characters kept from a container name in an interface name.
fn ifname_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

fn short_base(name: &str, salt: u32) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    if salt > 0 {
        h.update(format!("#{salt}").as_bytes());
    }
    let digest = h.finalize();
    let bits = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    let prefix: String = name.chars().filter(|&c| ifname_char(c)).take(PREFIX_LEN).collect();
    let mut base = prefix;
    for i in 0..HASH_LEN {
        base.push(ALPHABET[((bits >> (59 - 5 * i)) & 31) as usize] as char);
    }
    base
}

/// Check that `name` is acceptable to the kernel as an interface name: 1 to 15 bytes, no `/`,
/// `:` or whitespace, not `.` or `..`.
pub fn validate(name: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::Invalid(format!("interface name {name:?} {why}")));
    if name.is_empty() || name.len() > MAX_IFNAME {
        return bad("must be 1 to 15 bytes long");
    }
    if name == "." || name == ".." {
        return bad("is reserved");
    }
    if name.chars().any(|c| c == '/' || c == ':' || c.is_whitespace() || c == '\0') {
        return bad("may not contain '/', ':', NUL or whitespace");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn seed_names_when_they_fit() {
        let n = IfNames::for_container("eg");
        assert_eq!(n.outside, "eg-outside");
        assert_eq!(n.inside, "eg-inside");
        assert!(!n.shortened());
        // 7 bytes is the longest name whose "-outside" fits.
        let n = IfNames::for_container("abcdefg");
        assert_eq!(n.outside, "abcdefg-outside");
        assert_eq!(n.outside.len(), 15);
    }

    #[test]
    fn long_names_are_shortened_stably() {
        let a = IfNames::for_container("abcdefgh");
        assert!(a.shortened());
        assert!(a.outside.starts_with("abcd") && a.outside.ends_with("-out"), "{a:?}");
        assert!(a.inside.starts_with("abcd") && a.inside.ends_with("-in"), "{a:?}");
        assert_eq!(a.outside.trim_end_matches("-out"), a.inside.trim_end_matches("-in"));
        assert_eq!(a, IfNames::for_container("abcdefgh"), "the same name gives the same interfaces");
        for n in [&a.outside, &a.inside] {
            assert!(n.len() <= MAX_IFNAME);
            validate(n).unwrap();
        }
        let long = IfNames::for_container(&"x".repeat(63));
        assert_eq!(long.outside.len(), MAX_IFNAME);
    }

    #[test]
    fn long_names_with_a_common_prefix_differ() {
        let mut seen = HashSet::new();
        for i in 0..20_000 {
            let n = IfNames::for_container(&format!("webserver-{i}"));
            assert!(seen.insert(n.outside.clone()), "collision on {}", n.outside);
            assert!(seen.insert(n.inside.clone()), "collision on {}", n.inside);
        }
    }

    #[test]
    fn short_and_seed_forms_never_meet() {
        // Every short form ends in -out/-in, every seed form in -outside/-inside; none of these
        // suffixes ends another, so a short form can never equal a seed form.
        let names: Vec<String> = ["a", "abcdefg", "abcdefgh", "eg", "in", "out", "x-out", "x-in", "webserver-1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut all = HashSet::new();
        for n in &names {
            let p = IfNames::for_container(n);
            assert!(all.insert(p.outside));
            assert!(all.insert(p.inside));
        }
    }

    #[test]
    fn salt_changes_only_the_hash() {
        let a = IfNames::for_container("eg");
        let b = IfNames::with_salt("eg", 1);
        assert!(b.shortened());
        assert_ne!(a, b);
        assert_ne!(IfNames::with_salt("longcontainer", 1), IfNames::for_container("longcontainer"));
        assert_eq!(IfNames::with_salt("longcontainer", 2), IfNames::with_salt("longcontainer", 2));
    }

    #[test]
    fn odd_characters_are_left_out() {
        let n = IfNames::for_container("a:b/c");
        assert!(n.shortened());
        validate(&n.outside).unwrap();
        assert!(n.outside.starts_with("abc"));
        let n = IfNames::for_container("");
        validate(&n.outside).unwrap();
    }

    #[test]
    fn the_short_form_is_fixed() {
        // Stored in allocation files and seen on hosts: it must not change between versions.
        let n = IfNames::for_container("verylongcontainer");
        assert_eq!((n.outside.as_str(), n.inside.as_str()), ("veryry7vkbs-out", "veryry7vkbs-in"));
    }

    #[test]
    fn validate_rules() {
        validate("eth0").unwrap();
        validate("abcdefghijklmno").unwrap();
        for bad in ["", "abcdefghijklmnop", ".", "..", "a/b", "a:b", "a b"] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
    }
}

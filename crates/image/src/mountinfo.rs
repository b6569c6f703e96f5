//! Which mounts lie under a directory, from /proc/self/mountinfo: a layer or build directory is
//! never deleted while something (debootstrap's /proc, a container rootfs) is mounted in it.

use std::path::{Path, PathBuf};

/// Mount points at or below `dir`, deepest first (the order to unmount them in).
pub fn mounts_under(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(under(&text, dir))
}

fn under(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .filter(|p| p.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

/// mountinfo writes space, tab, newline and backslash as octal escapes (`\040`).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b.get(i + 1..i + 4).and_then(|d| std::str::from_utf8(d).ok()).and_then(|d| u8::from_str_radix(d, 8).ok());
        match (b[i], oct) {
            (b'\\', Some(c)) => {
                out.push(c);
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_mounts_below_deepest_first() {
        let info = "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n\
                    30 22 0:5 / /srv/b\\040x rw - tmpfs t rw\n\
                    31 30 0:6 / /srv/b\\040x/proc rw - proc proc rw\n\
                    32 22 0:7 / /srv/bb rw - tmpfs t rw\n";
        let got = under(info, Path::new("/srv/b x"));
        assert_eq!(got, [PathBuf::from("/srv/b x/proc"), PathBuf::from("/srv/b x")]);
        assert!(under(info, Path::new("/srv/b")).is_empty(), "/srv/bb is not below /srv/b");
    }
}

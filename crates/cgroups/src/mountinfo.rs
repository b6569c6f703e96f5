//! Parsing of /proc/self/mountinfo, reduced to what cgroup detection needs.

use std::path::PathBuf;

/// One line of mountinfo: `id parent maj:min root mountpoint opts [optional...] - fstype source superopts`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MountEntry {
    /// The path inside the filesystem that is mounted (not "/" for a bind of a sub-tree).
    pub root: String,
    pub mountpoint: PathBuf,
    pub fstype: String,
    pub super_opts: Vec<String>,
}

/// Parse every well-formed line; malformed lines are skipped, as the kernel never writes them
/// and a test sample with junk should not make detection fail.
pub(crate) fn parse(text: &str) -> Vec<MountEntry> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<MountEntry> {
    let (left, right) = line.split_once(" - ")?;
    let fields: Vec<&str> = left.split(' ').collect();
    if fields.len() < 6 {
        return None;
    }
    let mut right = right.split(' ');
    let fstype = right.next()?.to_string();
    let _source = right.next()?;
    let super_opts = right.next().unwrap_or("").split(',').map(str::to_string).collect();
    Some(MountEntry { root: unescape(fields[3]), mountpoint: PathBuf::from(unescape(fields[4])), fstype, super_opts })
}

/// The kernel escapes space, tab, newline and backslash in paths as `\ooo` octal.
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() && bytes[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b)) {
            let v = bytes[i + 1..i + 4].iter().fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
            out.push(v as u8);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_optional_fields_and_escapes() {
        let text = "36 35 98:0 /mnt1 /mnt\\040two rw,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue\n\
                    junk line\n";
        let m = parse(text);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].root, "/mnt1");
        assert_eq!(m[0].mountpoint, PathBuf::from("/mnt two"));
        assert_eq!(m[0].fstype, "ext3");
        assert_eq!(m[0].super_opts, vec!["rw", "errors=continue"]);
    }
}

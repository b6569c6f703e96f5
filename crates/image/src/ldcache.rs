//! /etc/ld.so.cache, the loader's index of libraries by name (glibc's "glibc-ld.so.cache1.1"
//! format, alone or after the old "ld.so-1.7.0" table), read to resolve names as the host's
//! loader would, and written for an image whose libraries live outside the system directories.
//! Without a cache, the directories of /etc/ld.so.conf (and its includes) stand in for it, as
//! ldconfig would have indexed them.

use std::path::{Path, PathBuf};

const OLD_MAGIC: &[u8] = b"ld.so-1.7.0";
const NEW_MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
/// magic+version 20, nlibs 4, len_strings 4, flags 1, padding 3, extension_offset 4, unused 12.
const NEW_HEADER: usize = 48;
const NEW_ENTRY: usize = 24;
/// In an entry's hwcap: the entry belongs to a glibc-hwcaps subdirectory.
const HWCAP_EXTENSION: u64 = 1 << 62;
/// Header flags: little-endian data.
const LITTLE_ENDIAN: u8 = 2;
/// Entry flags: an ELF libc6 library (the low byte), plus the ABI (the high byte).
const FLAG_ELF_LIBC6: i32 = 0x0003;
const FLAG_X8664_LIB64: i32 = 0x0300;
const FLAG_AARCH64_LIB64: i32 = 0x0a00;

/// One library name the cache maps to a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub flags: i32,
    pub name: String,
    pub path: PathBuf,
    pub hwcap: u64,
}

/// The entries of a cache, in file order (which is the loader's preference order).
#[derive(Clone, Debug, Default)]
pub(crate) struct LdCache {
    pub entries: Vec<Entry>,
}

impl LdCache {
    /// Read `path`; None when it is missing or not in a format we know (the caller then falls
    /// back to the ld.so.conf directories).
    pub fn load(path: &Path) -> Option<LdCache> {
        let bytes = std::fs::read(path).ok()?;
        match parse(&bytes) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!("{}: {e}; using /etc/ld.so.conf instead", path.display());
                None
            }
        }
    }

    /// Paths for `name`, best first; glibc-hwcaps entries (CPU-specific builds) are left out,
    /// so the result is the baseline library every x86-64 machine can load.
    pub fn lookup<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Path> + 'a {
        self.entries.iter().filter(move |e| e.name == name && e.hwcap & HWCAP_EXTENSION == 0).map(|e| e.path.as_path())
    }
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, String> {
    b.get(at..at + 4).map(|s| u32::from_le_bytes(s.try_into().unwrap())).ok_or_else(|| format!("truncated at byte {at}"))
}

fn str_at(b: &[u8], at: usize) -> Result<String, String> {
    let s = b.get(at..).ok_or_else(|| format!("string offset {at} out of range"))?;
    let end = s.iter().position(|&c| c == 0).ok_or_else(|| format!("unterminated string at {at}"))?;
    String::from_utf8(s[..end].to_vec()).map_err(|_| format!("string at {at} is not UTF-8"))
}

/// Where the new-format table starts: at 0, or after the old format's table (12-byte entries).
fn new_start(b: &[u8]) -> Result<usize, String> {
    if b.starts_with(NEW_MAGIC) {
        return Ok(0);
    }
    if !b.starts_with(OLD_MAGIC) {
        return Err("not an ld.so.cache".into());
    }
    let n = u32_at(b, OLD_MAGIC.len() + 1)? as usize;
    let start = (OLD_MAGIC.len() + 1 + 4 + n * 12).next_multiple_of(8);
    match b.get(start..) {
        Some(rest) if rest.starts_with(NEW_MAGIC) => Ok(start),
        _ => Err("old format only (no glibc-ld.so.cache1.1 table)".into()),
    }
}

pub(crate) fn parse(b: &[u8]) -> Result<LdCache, String> {
    let base = new_start(b)?;
    let nlibs = u32_at(b, base + 20)? as usize;
    if b.get(base + 28).is_some_and(|f| *f & 3 == 3) {
        return Err("big-endian cache".into());
    }
    let mut entries = Vec::with_capacity(nlibs.min(1 << 16));
    for i in 0..nlibs {
        let at = base + NEW_HEADER + i * NEW_ENTRY;
        let hwcap = b.get(at + 16..at + 24).ok_or("truncated entry table")?;
        entries.push(Entry {
            flags: u32_at(b, at)? as i32,
            // Offsets count from the start of the new-format table.
            name: str_at(b, base + u32_at(b, at + 4)? as usize)?,
            path: PathBuf::from(str_at(b, base + u32_at(b, at + 8)? as usize)?),
            hwcap: u64::from_le_bytes(hwcap.try_into().unwrap()),
        });
    }
    Ok(LdCache { entries })
}

/// The entry flags ldconfig gives a library of this class and machine.
pub(crate) fn flags_for(arch: crate::elf::Arch) -> i32 {
    match (arch.is_64, arch.machine) {
        (true, goblin::elf::header::EM_X86_64) => FLAG_ELF_LIBC6 | FLAG_X8664_LIB64,
        (true, goblin::elf::header::EM_AARCH64) => FLAG_ELF_LIBC6 | FLAG_AARCH64_LIB64,
        _ => FLAG_ELF_LIBC6,
    }
}

/// A new-format cache holding `entries`. The loader binary-searches it, so entries are sorted
/// as ldconfig sorts them: descending by [`libcmp`].
pub(crate) fn write(entries: &[Entry]) -> Vec<u8> {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| libcmp(&b.name, &a.name));
    let strings_at = NEW_HEADER + sorted.len() * NEW_ENTRY;
    let mut strings = Vec::new();
    let mut table = Vec::new();
    let mut add = |s: &str| {
        let off = (strings_at + strings.len()) as u32;
        strings.extend_from_slice(s.as_bytes());
        strings.push(0);
        off
    };
    for e in &sorted {
        let (key, value) = (add(&e.name), add(&e.path.to_string_lossy()));
        table.extend_from_slice(&e.flags.to_le_bytes());
        table.extend_from_slice(&key.to_le_bytes());
        table.extend_from_slice(&value.to_le_bytes());
        table.extend_from_slice(&0u32.to_le_bytes());
        table.extend_from_slice(&e.hwcap.to_le_bytes());
    }
    let mut out = NEW_MAGIC.to_vec();
    out.extend_from_slice(&(sorted.len() as u32).to_le_bytes());
    out.extend_from_slice(&(strings.len() as u32).to_le_bytes());
    out.extend_from_slice(&[LITTLE_ENDIAN, 0, 0, 0]);
    out.extend_from_slice(&[0u8; 16]); // no extensions, unused
    out.extend(table);
    out.extend(strings);
    out
}

/// glibc's `_dl_cache_libcmp`: byte order, except that runs of digits compare as numbers
/// (libfoo.so.10 sorts after libfoo.so.9), and a digit sorts after a non-digit.
pub(crate) fn libcmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let number = |s: &[u8], k: &mut usize| {
        let mut v: u64 = 0;
        while *k < s.len() && s[*k].is_ascii_digit() {
            v = v.saturating_mul(10).saturating_add((s[*k] - b'0') as u64);
            *k += 1;
        }
        v
    };
    while i < a.len() {
        let (ca, cb) = (a[i], b.get(j).copied().unwrap_or(0));
        match (ca.is_ascii_digit(), cb.is_ascii_digit()) {
            (true, true) => match number(a, &mut i).cmp(&number(b, &mut j)) {
                Ordering::Equal => continue,
                o => return o,
            },
            (true, false) => return Ordering::Greater,
            (false, true) => return Ordering::Less,
            _ if ca != cb => return ca.cmp(&cb),
            _ => (i, j) = (i + 1, j + 1),
        }
    }
    if j < b.len() {
        Ordering::Less
    } else {
        Ordering::Equal
    }
}

/// The directories /etc/ld.so.conf names, `include` globs expanded (a `*` in the last path
/// component, as Debian's files use), in order, each once.
pub(crate) fn conf_dirs(conf: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    read_conf(conf, &mut out, 0);
    out
}

fn read_conf(conf: &Path, out: &mut Vec<PathBuf>, depth: u32) {
    let Ok(text) = std::fs::read_to_string(conf) else {
        return;
    };
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(pattern) = line.strip_prefix("include").filter(|r| r.starts_with([' ', '\t'])) {
            for file in glob(conf, pattern.trim()) {
                if depth < 8 {
                    read_conf(&file, out, depth + 1);
                }
            }
        } else if line.starts_with('/') {
            let dir = PathBuf::from(line);
            if !out.contains(&dir) {
                out.push(dir);
            }
        }
    }
}

/// Files matching `pattern` (relative to the including file's directory when not absolute),
/// sorted like glob(3).
fn glob(conf: &Path, pattern: &str) -> Vec<PathBuf> {
    let p = conf.parent().unwrap_or(Path::new("/")).join(pattern);
    let (Some(dir), Some(leaf)) = (p.parent(), p.file_name().and_then(|l| l.to_str())) else {
        return Vec::new();
    };
    let Some((pre, post)) = leaf.split_once('*') else {
        return if p.is_file() { vec![p.clone()] } else { Vec::new() };
    };
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = rd
        .flatten()
        .filter(|e| {
            e.file_name().to_str().is_some_and(|n| n.len() >= pre.len() + post.len() && n.starts_with(pre) && n.ends_with(post))
        })
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering::*;

    #[test]
    fn reads_the_host_cache() {
        let c = LdCache::load(Path::new("/etc/ld.so.cache")).expect("Debian 12 has a new-format cache");
        let libc: Vec<&Path> = c.lookup("libc.so.6").collect();
        assert_eq!(libc, [Path::new("/lib/x86_64-linux-gnu/libc.so.6")]);
        assert!(c.entries.len() > 10);
        assert!(c.lookup("libnonexistent.so.42").next().is_none());
    }

    #[test]
    fn libcmp_compares_numbers_as_numbers() {
        assert_eq!(libcmp("libfoo.so.10", "libfoo.so.9"), Greater);
        assert_eq!(libcmp("libfoo.so.1", "libfoo.so.1"), Equal);
        assert_eq!(libcmp("liba.so", "libb.so"), Less);
        assert_eq!(libcmp("libfoo.so", "libfoo.so.1"), Less);
        assert_eq!(libcmp("lib2", "libx"), Greater, "a digit sorts after a non-digit");
    }

    #[test]
    fn written_cache_reads_back_sorted_for_the_loader() {
        let e = |n: &str, p: &str| Entry { flags: 0x303, name: n.into(), path: p.into(), hwcap: 0 };
        let entries = [e("liba.so.1", "/opt/a/liba.so.1"), e("libz.so.9", "/opt/z/libz.so.9"), e("libz.so.10", "/x/libz.so.10")];
        let back = parse(&write(&entries)).unwrap();
        let names: Vec<&str> = back.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["libz.so.10", "libz.so.9", "liba.so.1"], "descending, as ldconfig writes it");
        assert_eq!(back.lookup("liba.so.1").collect::<Vec<_>>(), [Path::new("/opt/a/liba.so.1")]);
    }

    #[test]
    fn written_cache_is_what_ldconfig_reads() {
        let dir = std::env::temp_dir().join(format!("cnd-ldcache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("ld.so.cache");
        let entry = Entry { flags: 0x303, name: "libdemo.so.1".into(), path: "/opt/demo/libdemo.so.1".into(), hwcap: 0 };
        std::fs::write(&file, write(&[entry])).unwrap();
        // ldconfig is an independent reader of the format.
        let out = std::process::Command::new("/sbin/ldconfig").arg("-C").arg(&file).arg("-p").output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("1 libs found"), "{text}");
        assert!(text.contains("libdemo.so.1 (libc6,x86-64) => /opt/demo/libdemo.so.1"), "{text}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn conf_includes_are_expanded_in_order() {
        let dir = std::env::temp_dir().join(format!("cnd-ldconf-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("conf.d")).unwrap();
        std::fs::write(dir.join("ld.so.conf"), "# top\n/first\ninclude conf.d/*.conf\n/last # trailing\n").unwrap();
        std::fs::write(dir.join("conf.d/b.conf"), "/b\n/first\n").unwrap();
        std::fs::write(dir.join("conf.d/a.conf"), "/a\n").unwrap();
        std::fs::write(dir.join("conf.d/ignored.txt"), "/no\n").unwrap();
        let dirs = conf_dirs(&dir.join("ld.so.conf"));
        assert_eq!(dirs, ["/first", "/a", "/b", "/last"].map(PathBuf::from));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

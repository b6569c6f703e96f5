//! What the dynamic loader needs from an ELF file: class and machine, PT_INTERP, DT_NEEDED,
//! DT_RPATH, DT_RUNPATH, DF_1_NODEFLIB. Read with goblin; no code is ever run.

use std::io::Read;
use std::path::Path;

use goblin::elf::header::{EM_386, EM_AARCH64, EM_X86_64, ET_DYN, ET_EXEC};

/// The ELF class and machine: the loader only takes objects of its own kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Arch {
    pub is_64: bool,
    pub machine: u16,
}

impl Arch {
    /// Debian's multiarch triplet, for the system directories and `$LIB`.
    fn triplet(self) -> Option<&'static str> {
        match (self.is_64, self.machine) {
            (true, EM_X86_64) => Some("x86_64-linux-gnu"),
            (false, EM_386) => Some("i386-linux-gnu"),
            (true, EM_AARCH64) => Some("aarch64-linux-gnu"),
            _ => None,
        }
    }

    /// glibc's system search path on Debian, in order (what `ld.so --help` lists).
    pub fn default_dirs(self) -> Vec<String> {
        let mut dirs: Vec<String> =
            self.triplet().map(|t| vec![format!("/lib/{t}"), format!("/usr/lib/{t}")]).unwrap_or_default();
        dirs.extend(["/lib".to_string(), "/usr/lib".to_string()]);
        dirs
    }

    /// `$LIB`: Debian's glibc expands it to `lib/<triplet>` (checked with LD_PRELOAD).
    pub fn lib(self) -> String {
        self.triplet().map_or("lib".into(), |t| format!("lib/{t}"))
    }

    /// `$PLATFORM`: the kernel's base AT_PLATFORM. glibc up to 2.36 may report a CPU-specific
    /// name instead (x86_64 "haswell"), which this does not guess.
    pub fn platform(self) -> &'static str {
        match self.machine {
            EM_X86_64 => "x86_64",
            EM_386 => "i686",
            EM_AARCH64 => "aarch64",
            _ => "unknown",
        }
    }
}

/// The loader-relevant facts of an executable or shared object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ElfInfo {
    pub arch: Arch,
    /// PT_INTERP: the dynamic loader the kernel starts (executables only).
    pub interp: Option<String>,
    pub soname: Option<String>,
    /// DT_NEEDED, in order.
    pub needed: Vec<String>,
    /// DT_RPATH / DT_RUNPATH entries, split at ':'.
    pub rpath: Vec<String>,
    pub runpath: Vec<String>,
    /// DF_1_NODEFLIB: neither the cache nor the system directories are searched for its needs.
    pub nodeflib: bool,
}

impl ElfInfo {
    /// A static binary (no loader, nothing needed): it is its own closure.
    pub fn is_static(&self) -> bool {
        self.interp.is_none() && self.needed.is_empty()
    }
}

/// Why a file is not a loadable ELF object.
#[derive(Debug)]
pub(crate) enum NotLoadable {
    /// No ELF magic: a script, data, ...
    NotElf,
    /// ELF, but not an executable or shared object (a relocatable .o, a core dump).
    Kind(u16),
    Malformed(String),
    Io(std::io::Error),
}

impl std::fmt::Display for NotLoadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotLoadable::NotElf => write!(f, "not an ELF binary"),
            NotLoadable::Kind(t) => write!(f, "an ELF file but not an executable or shared library (e_type {t})"),
            NotLoadable::Malformed(e) => write!(f, "malformed ELF file: {e}"),
            NotLoadable::Io(e) => write!(f, "{e}"),
        }
    }
}

const MAGIC: &[u8; 4] = b"\x7fELF";
const DF_1_NODEFLIB: u64 = 0x800;

/// Whether `path` starts with the ELF magic (false for anything unreadable or short).
pub(crate) fn is_elf(path: &Path) -> bool {
    let mut head = [0u8; 4];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok() && &head == MAGIC
}

/// The class and machine from the ELF header alone (the loader's quick check of a candidate
/// file during a search), or None when `path` is not a little- or big-endian ELF file.
pub(crate) fn arch_of(path: &Path) -> Option<Arch> {
    let mut h = [0u8; 20];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut h)).ok()?;
    if &h[..4] != MAGIC {
        return None;
    }
    let machine = match h[5] {
        1 => u16::from_le_bytes([h[18], h[19]]),
        2 => u16::from_be_bytes([h[18], h[19]]),
        _ => return None,
    };
    Some(Arch { is_64: h[4] == 2, machine })
}

/// Parse the dynamic-loading facts of `path`.
pub(crate) fn read(path: &Path) -> Result<ElfInfo, NotLoadable> {
    if !is_elf(path) {
        return match std::fs::File::open(path) {
            Err(e) => Err(NotLoadable::Io(e)),
            Ok(_) => Err(NotLoadable::NotElf),
        };
    }
    let bytes = std::fs::read(path).map_err(NotLoadable::Io)?;
    parse(&bytes)
}

fn parse(bytes: &[u8]) -> Result<ElfInfo, NotLoadable> {
    let elf = goblin::elf::Elf::parse(bytes).map_err(|e| NotLoadable::Malformed(e.to_string()))?;
    if elf.header.e_type != ET_EXEC && elf.header.e_type != ET_DYN {
        return Err(NotLoadable::Kind(elf.header.e_type));
    }
    let split = |v: &[&str]| v.iter().flat_map(|s| s.split(':')).filter(|s| !s.is_empty()).map(String::from).collect();
    let flags_1 = elf.dynamic.as_ref().map_or(0, |d| d.info.flags_1);
    Ok(ElfInfo {
        arch: Arch { is_64: elf.is_64, machine: elf.header.e_machine },
        interp: elf.interpreter.map(String::from),
        soname: elf.soname.map(String::from),
        needed: elf.libraries.iter().map(|s| s.to_string()).collect(),
        rpath: split(&elf.rpaths),
        runpath: split(&elf.runpaths),
        nodeflib: flags_1 & DF_1_NODEFLIB != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const X86_64: Arch = Arch { is_64: true, machine: EM_X86_64 };

    #[test]
    fn reads_a_dynamic_system_binary() {
        let ls = read(Path::new("/bin/ls")).unwrap();
        assert_eq!(ls.arch, X86_64);
        assert_eq!(ls.interp.as_deref(), Some("/lib64/ld-linux-x86-64.so.2"));
        assert!(ls.needed.contains(&"libc.so.6".to_string()), "{:?}", ls.needed);
        assert!(ls.needed.contains(&"libselinux.so.1".to_string()), "{:?}", ls.needed);
        assert!(!ls.is_static());
        let libc = read(Path::new("/lib/x86_64-linux-gnu/libc.so.6")).unwrap();
        assert_eq!(libc.soname.as_deref(), Some("libc.so.6"));
        assert_eq!(libc.needed, ["ld-linux-x86-64.so.2"]);
        let pcre = read(Path::new("/lib/x86_64-linux-gnu/libpcre2-8.so.0")).unwrap();
        assert_eq!(pcre.interp, None, "a plain library has no PT_INTERP (libc.so.6, runnable, has one)");
    }

    #[test]
    fn a_static_binary_needs_nothing() {
        let bb = Path::new("/bin/busybox");
        assert!(bb.exists(), "install Debian's busybox-static");
        let info = read(bb).unwrap();
        assert!(info.is_static(), "{info:?}");
        assert_eq!(info.arch, X86_64);
    }

    #[test]
    fn tells_non_elf_files_apart() {
        assert!(matches!(read(Path::new("/etc/passwd")), Err(NotLoadable::NotElf)));
        assert!(matches!(read(Path::new("/nonexistent/x")), Err(NotLoadable::Io(_))));
        assert!(!is_elf(Path::new("/etc")));
        assert_eq!(arch_of(Path::new("/lib/x86_64-linux-gnu/libc.so.6")), Some(X86_64));
        assert_eq!(arch_of(Path::new("/etc/passwd")), None);
    }

    #[test]
    fn search_parameters_follow_debian() {
        assert_eq!(X86_64.default_dirs(), ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib"]);
        assert_eq!(X86_64.lib(), "lib/x86_64-linux-gnu");
        assert_eq!(X86_64.platform(), "x86_64");
        let riscv = Arch { is_64: true, machine: 243 };
        assert_eq!(riscv.default_dirs(), ["/lib", "/usr/lib"]);
    }
}

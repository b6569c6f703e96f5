//! OCI mount options -> mount(2) flags, propagation and data, as runc interprets them.

use nix::mount::MsFlags;

/// A mount entry's options, split the way mount(2) needs them.
#[derive(Debug, PartialEq)]
pub struct Options {
    /// Flags for the mount itself.
    pub flags: MsFlags,
    /// Flags cleared by "rw", "dev", ... (so a bind remount does not re-add them).
    pub cleared: MsFlags,
    /// MS_SHARED/MS_SLAVE/MS_PRIVATE/MS_UNBINDABLE (with MS_REC), applied in a second call.
    pub propagation: Vec<MsFlags>,
    /// Filesystem-specific options ("mode=755", "newinstance", ...).
    pub data: Vec<String>,
    pub bind: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { flags: MsFlags::empty(), cleared: MsFlags::empty(), propagation: Vec::new(), data: Vec::new(), bind: false }
    }
}

impl Options {
    pub fn parse(opts: &[String]) -> Result<Options, String> {
        let mut o = Options::default();
        for opt in opts {
            if let Some((set, flag)) = flag(opt) {
                if set {
                    o.flags |= flag;
                    o.cleared &= !flag;
                } else {
                    o.flags &= !flag;
                    o.cleared |= flag;
                }
            } else if let Some(p) = propagation(opt) {
                o.propagation.push(p);
            } else {
                match opt.as_str() {
                    "bind" => o.bind = true,
                    "rbind" => {
                        o.bind = true;
                        o.flags |= MsFlags::MS_REC;
                    }
                    // Options for other runtimes' features that change nothing here.
                    "tmpcopyup" | "defaults" | "rro" | "rrw" => {}
                    "idmap" | "ridmap" => return Err(format!("mount option {opt:?} (idmapped mounts) is not supported")),
                    _ => o.data.push(opt.clone()),
                }
            }
        }
        Ok(o)
    }

    pub fn data(&self) -> Option<String> {
        (!self.data.is_empty()).then(|| self.data.join(","))
    }
}

fn flag(opt: &str) -> Option<(bool, MsFlags)> {
    Some(match opt {
        "ro" => (true, MsFlags::MS_RDONLY),
        "rw" => (false, MsFlags::MS_RDONLY),
        "nosuid" => (true, MsFlags::MS_NOSUID),
        "suid" => (false, MsFlags::MS_NOSUID),
        "nodev" => (true, MsFlags::MS_NODEV),
        "dev" => (false, MsFlags::MS_NODEV),
        "noexec" => (true, MsFlags::MS_NOEXEC),
        "exec" => (false, MsFlags::MS_NOEXEC),
        "sync" => (true, MsFlags::MS_SYNCHRONOUS),
        "async" => (false, MsFlags::MS_SYNCHRONOUS),
        "dirsync" => (true, MsFlags::MS_DIRSYNC),
        "remount" => (true, MsFlags::MS_REMOUNT),
        "mand" => (true, MsFlags::MS_MANDLOCK),
        "nomand" => (false, MsFlags::MS_MANDLOCK),
        "noatime" => (true, MsFlags::MS_NOATIME),
        "atime" => (false, MsFlags::MS_NOATIME),
        "nodiratime" => (true, MsFlags::MS_NODIRATIME),
        "diratime" => (false, MsFlags::MS_NODIRATIME),
        "relatime" => (true, MsFlags::MS_RELATIME),
        "norelatime" => (false, MsFlags::MS_RELATIME),
        "strictatime" => (true, MsFlags::MS_STRICTATIME),
        "nostrictatime" => (false, MsFlags::MS_STRICTATIME),
        "lazytime" => (true, MsFlags::MS_LAZYTIME),
        "nolazytime" => (false, MsFlags::MS_LAZYTIME),
        "silent" => (true, MsFlags::MS_SILENT),
        "loud" => (false, MsFlags::MS_SILENT),
        "nosymfollow" => (true, MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW)),
        "symfollow" => (false, MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW)),
        _ => return None,
    })
}

/// A propagation option, also used for `linux.rootfsPropagation`.
pub fn propagation(opt: &str) -> Option<MsFlags> {
    Some(match opt {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Options {
        Options::parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn splits_flags_propagation_and_data() {
        let o = p(&["rbind", "ro", "nosuid", "rslave", "mode=755", "size=64k"]);
        assert!(o.bind);
        assert_eq!(o.flags, MsFlags::MS_REC | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID);
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
        assert_eq!(o.data().as_deref(), Some("mode=755,size=64k"));
        let o = p(&["ro", "rw", "nodev", "dev"]);
        assert_eq!(o.flags, MsFlags::empty());
        assert_eq!(o.cleared, MsFlags::MS_RDONLY | MsFlags::MS_NODEV);
        assert!(Options::parse(&["idmap".into()]).is_err());
    }
}

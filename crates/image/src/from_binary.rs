//! `from-binary`: an image holding one program, its shared-library closure (see `closure`),
//! any `--add` paths (with the closures of the ELF files among them), and nothing else.
//!
//! Files keep their host paths. Every symlink met on the way to a file is recreated as the same
//! symlink, directory links included, so on a merged-/usr Debian the image gets `lib64 ->
//! usr/lib64` and `lib -> usr/lib` rather than two copies, and `/lib64/ld-linux-x86-64.so.2`
//! resolves inside the image exactly as on the host. The image's command is the program's path.
//!
//! A container has no ld.so.cache of its own, so a library that the host's loader finds only
//! through its cache (one outside the system directories) would not load. For those the image
//! gets an `/etc/ld.so.cache` listing exactly them; images of ordinary programs get none.
//!
//! Everything is resolved before anything is written: a missing library, a non-ELF program
//! or a missing path fails with one line and leaves no trace in the store.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::ffi::OsString;
use std::fs::Metadata;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::closure::{self, Search, Via};
use crate::elf::{self, NotLoadable};
use crate::error::{Context, Error, Result};
use crate::image::{Image, ImageConfig};
use crate::ldcache;
use crate::progress::{Progress, Unit};
use crate::store::Store;

/// The loader follows at most this many symlinks in one path (the kernel's limit).
const MAX_LINKS: u32 = 40;

/// What goes into the layer.
#[derive(Debug, Default)]
struct Plan {
    /// Files (and the symlinks leading to them), copied with their symlink chains.
    paths: BTreeSet<PathBuf>,
    /// `--add` directories, copied whole (symlinks inside are copied as symlinks).
    trees: Vec<PathBuf>,
    /// Libraries only the host's ld.so.cache knows (name, path): the image's own cache.
    cached: Vec<ldcache::Entry>,
}

impl Store {
    /// Build image `name` from `program` (an ELF executable; its host path becomes the image's
    /// command) and its shared-library closure, plus each of `extra` (files or directories,
    /// with the closures of the ELF files among them).
    pub fn build_from_binary(&self, name: &str, program: &Path, extra: &[PathBuf], progress: &mut dyn Progress) -> Result<Image> {
        let res = self.build_from_binary_inner(name, program, extra, progress);
        progress.finish();
        res
    }

    fn build_from_binary_inner(
        &self,
        name: &str,
        program: &Path,
        extra: &[PathBuf],
        progress: &mut dyn Progress,
    ) -> Result<Image> {
        self.check_free(name, false)?;
        let program = absolute(program)?;
        check_program(&program)?;
        let search = Search::host();
        progress.stage("resolving libraries", None, Unit::Items);
        let mut plan = Plan::default();
        add_closure(&mut plan, &program, &search, progress)?;
        for p in extra {
            add_extra(&mut plan, &absolute(p)?, &search, progress)?;
        }

        let mut staging = self.stage(name)?;
        let layer = staging.layer(0);
        std::fs::create_dir(&layer).ctx(|| format!("create {}", layer.display()))?;
        write_layer(&plan, &layer, progress)?;
        let config = ImageConfig { cmd: vec![program.to_string_lossy().into_owned()], ..ImageConfig::default() };
        let mut source = format!("from-binary of {}", program.display());
        if !extra.is_empty() {
            source.push_str(&format!(" (+ {})", extra.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")));
        }
        self.commit(&mut staging, name, config, source, false)
    }
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).ctx(|| format!("resolve {}", p.display()))
}

/// The program must be an existing ELF executable (or shared object), not a directory.
fn check_program(p: &Path) -> Result<()> {
    let md = std::fs::metadata(p).map_err(|e| Error::Invalid(format!("{}: {}", p.display(), io_reason(&e))))?;
    if md.is_dir() {
        return Err(Error::Invalid(format!("{}: is a directory, not a program", p.display())));
    }
    match elf::read(p) {
        Ok(_) => Ok(()),
        Err(NotLoadable::NotElf) => Err(Error::Invalid(format!(
            "{}: not an ELF binary (a script needs its interpreter: build from that and --add the script)",
            p.display()
        ))),
        Err(e) => Err(Error::Invalid(format!("{}: {e}", p.display()))),
    }
}

/// "No such file or directory" without the "(os error 2)".
fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    s.split(" (os error").next().unwrap_or(&s).to_string()
}

/// The file and, when it is a loadable ELF object, its closure.
fn add_closure(plan: &mut Plan, file: &Path, search: &Search, progress: &mut dyn Progress) -> Result<()> {
    let objs = closure::resolve(file, search).map_err(Error::Invalid)?;
    if objs[0].info.is_static() {
        progress.message(&format!("{} is statically linked: it needs no libraries", file.display()));
    }
    for o in &objs {
        progress.advance(plan.paths.len() as u64 + 1, &o.path.to_string_lossy());
        plan.paths.insert(o.path.clone());
        if o.via == Via::Cache && !in_system_dirs(&o.path, o.info.arch) {
            let entry =
                ldcache::Entry { flags: ldcache::flags_for(o.info.arch), name: o.name.clone(), path: o.path.clone(), hwcap: 0 };
            if !plan.cached.contains(&entry) {
                plan.cached.push(entry);
            }
        }
    }
    Ok(())
}

fn in_system_dirs(lib: &Path, arch: elf::Arch) -> bool {
    arch.default_dirs().iter().any(|d| lib.parent() == Some(Path::new(d)))
}

/// An `--add` path: a file (with its closure when it is an executable or shared ELF object) or
/// a directory (with the closures of the ELF objects in it).
fn add_extra(plan: &mut Plan, path: &Path, search: &Search, progress: &mut dyn Progress) -> Result<()> {
    let md = std::fs::metadata(path).map_err(|e| Error::Invalid(format!("--add {}: {}", path.display(), io_reason(&e))))?;
    if md.is_dir() {
        for f in elf_files_under(path)? {
            add_closure(plan, &f, search, progress)?;
        }
        plan.trees.push(path.to_path_buf());
        return Ok(());
    }
    match elf::read(path) {
        Ok(_) => add_closure(plan, path, search, progress),
        Err(NotLoadable::Io(e)) => Err(Error::Invalid(format!("--add {}: {}", path.display(), io_reason(&e)))),
        Err(_) => {
            plan.paths.insert(path.to_path_buf());
            Ok(())
        }
    }
}

/// Regular ELF executables and shared objects under `dir` (symlinks not followed).
fn elf_files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).ctx(|| format!("read {}", d.display()))? {
            let entry = entry.ctx(|| format!("read {}", d.display()))?;
            let ft = entry.file_type().ctx(|| format!("stat {}", entry.path().display()))?;
            if ft.is_dir() {
                todo.push(entry.path());
            } else if ft.is_file() && elf::read(&entry.path()).is_ok() {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

fn write_layer(plan: &Plan, layer: &Path, progress: &mut dyn Progress) -> Result<()> {
    progress.stage("copying", Some((plan.paths.len() + plan.trees.len()) as u64), Unit::Items);
    let mut done = 0;
    for p in &plan.paths {
        copy_with_links(p, layer)?;
        done += 1;
        progress.advance(done, &p.to_string_lossy());
    }
    for t in &plan.trees {
        let real = copy_with_links(t, layer)?;
        copy_tree(&real, layer)?;
        done += 1;
        progress.advance(done, &t.to_string_lossy());
    }
    if !plan.cached.is_empty() {
        let etc = layer.join("etc");
        ensure_dir(&etc, 0o755)?;
        let cache = layer.join(closure::HOST_CACHE.trim_start_matches('/'));
        std::fs::write(&cache, ldcache::write(&plan.cached)).ctx(|| format!("write {}", cache.display()))?;
        progress.message(&format!("wrote /etc/ld.so.cache for {} libraries outside the system directories", plan.cached.len()));
    }
    Ok(())
}

/// The layer's copy of host path `p`.
fn in_layer(layer: &Path, p: &Path) -> PathBuf {
    layer.join(p.strip_prefix("/").unwrap_or(p))
}

/// Recreate host path `path` inside `layer`, walking it from `/` one component at a time as
/// the kernel does: a symlink is recreated as the same symlink and its target walked in turn,
/// a directory is created with the host's mode, and the final file is copied. Returns the
/// host's real (symlink-free) path of what `path` names.
fn copy_with_links(path: &Path, layer: &Path) -> Result<PathBuf> {
    let mut cur = PathBuf::from("/");
    let mut rest: VecDeque<OsString> = parts(path);
    let mut links = 0;
    while let Some(c) = rest.pop_front() {
        if c == ".." {
            cur.pop(); // `cur` holds no symlinks, so a lexical step up is the real one
            continue;
        }
        let next = cur.join(&c);
        let md = std::fs::symlink_metadata(&next).ctx(|| format!("stat {}", next.display()))?;
        let dst = in_layer(layer, &next);
        if md.file_type().is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                return Err(Error::Invalid(format!("{}: too many levels of symbolic links", path.display())));
            }
            let target = std::fs::read_link(&next).ctx(|| format!("read link {}", next.display()))?;
            ensure_symlink(&dst, &target)?;
            if target.is_absolute() {
                cur = PathBuf::from("/");
            }
            for (i, t) in parts(&target).into_iter().enumerate() {
                rest.insert(i, t);
            }
        } else if md.is_dir() {
            ensure_dir(&dst, md.mode())?;
            own_like(&dst, &md)?;
            cur = next;
        } else if rest.is_empty() {
            copy_file(&next, &dst, &md)?;
            cur = next;
        } else {
            return Err(Error::Invalid(format!("{}: {} is not a directory", path.display(), next.display())));
        }
    }
    Ok(cur)
}

/// The normal and `..` components of a path, as names to walk.
fn parts(p: &Path) -> VecDeque<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

fn ensure_symlink(dst: &Path, target: &Path) -> Result<()> {
    match std::fs::read_link(dst) {
        Ok(t) if t == target => Ok(()),
        Ok(t) => Err(Error::Invalid(format!("{}: two links to place ({} and {})", dst.display(), t.display(), target.display()))),
        Err(_) => std::os::unix::fs::symlink(target, dst).ctx(|| format!("create symlink {}", dst.display())),
    }
}

fn ensure_dir(dst: &Path, mode: u32) -> Result<()> {
    match std::fs::symlink_metadata(dst) {
        Ok(md) if md.is_dir() => return Ok(()),
        Ok(_) => return Err(Error::Invalid(format!("{}: a file is in the way of a directory", dst.display()))),
        Err(_) => {}
    }
    std::fs::create_dir(dst).ctx(|| format!("create {}", dst.display()))?;
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(mode & 0o7777)).ctx(|| format!("chmod {}", dst.display()))
}

/// Copy a regular file once (a path reached twice, e.g. through two links, is copied once).
fn copy_file(src: &Path, dst: &Path, md: &Metadata) -> Result<()> {
    if !md.is_file() {
        return Err(Error::Invalid(format!("{}: not a regular file, directory or symlink", src.display())));
    }
    if std::fs::symlink_metadata(dst).is_ok() {
        return Ok(());
    }
    std::fs::copy(src, dst).ctx(|| format!("copy {}", src.display()))?;
    own_like(dst, md)
}

/// Owner then mode (chown clears setuid bits), when we may give files away (as root).
fn own_like(dst: &Path, md: &Metadata) -> Result<()> {
    if nix::unistd::geteuid().is_root() {
        std::os::unix::fs::lchown(dst, Some(md.uid()), Some(md.gid())).ctx(|| format!("chown {}", dst.display()))?;
    }
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(md.mode() & 0o7777)).ctx(|| format!("chmod {}", dst.display()))
}

/// Copy the contents of host directory `dir` (symlink-free) into the layer; symlinks inside are
/// data and are copied as they are.
fn copy_tree(dir: &Path, layer: &Path) -> Result<()> {
    let mut seen = HashSet::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        if !seen.insert(d.clone()) {
            continue;
        }
        for entry in std::fs::read_dir(&d).ctx(|| format!("read {}", d.display()))? {
            let src = entry.ctx(|| format!("read {}", d.display()))?.path();
            let md = std::fs::symlink_metadata(&src).ctx(|| format!("stat {}", src.display()))?;
            let dst = in_layer(layer, &src);
            if md.file_type().is_symlink() {
                ensure_symlink(&dst, &std::fs::read_link(&src).ctx(|| format!("read link {}", src.display()))?)?;
            } else if md.is_dir() {
                ensure_dir(&dst, md.mode())?;
                own_like(&dst, &md)?;
                todo.push(src);
            } else {
                copy_file(&src, &dst, &md)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cnd-from-binary-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn symlink_chains_are_recreated_not_duplicated() {
        let layer = tmp("links");
        let real = copy_with_links(Path::new("/lib64/ld-linux-x86-64.so.2"), &layer).unwrap();
        assert_eq!(real, std::fs::canonicalize("/lib64/ld-linux-x86-64.so.2").unwrap());
        // Every link on the host path exists in the layer with the host's target.
        for link in ["/lib64", "/lib64/ld-linux-x86-64.so.2"] {
            let host =
                std::fs::canonicalize(Path::new(link).parent().unwrap()).unwrap().join(Path::new(link).file_name().unwrap());
            if let Ok(t) = std::fs::read_link(&host) {
                assert_eq!(std::fs::read_link(in_layer(&layer, &host)).unwrap(), t, "{link}");
            }
        }
        assert!(in_layer(&layer, &real).is_file());
        assert_eq!(std::fs::read(in_layer(&layer, &real)).unwrap(), std::fs::read(&real).unwrap());
        // A second path through the same links adds nothing and fails on nothing.
        copy_with_links(Path::new("/lib64/ld-linux-x86-64.so.2"), &layer).unwrap();
        std::fs::remove_dir_all(&layer).unwrap();
    }

    #[test]
    fn relative_and_dotdot_links_resolve_like_the_kernel() {
        let host = tmp("dotdot-host");
        let layer = tmp("dotdot-layer");
        std::fs::create_dir_all(host.join("real/dir")).unwrap();
        std::fs::write(host.join("real/dir/file"), "x").unwrap();
        std::os::unix::fs::symlink("real/dir", host.join("d")).unwrap();
        std::os::unix::fs::symlink("../dir/file", host.join("real/dir/up")).unwrap();
        let real = copy_with_links(&host.join("d/up"), &layer).unwrap();
        assert_eq!(real, host.join("real/dir/file"));
        assert_eq!(std::fs::read_link(in_layer(&layer, &host.join("d"))).unwrap(), Path::new("real/dir"));
        assert_eq!(std::fs::read_to_string(in_layer(&layer, &real)).unwrap(), "x");
        for d in [host, layer] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }

    #[test]
    fn program_errors_are_one_line() {
        let one = |p: &str| {
            let e = check_program(Path::new(p)).unwrap_err().to_string();
            assert_eq!(e.lines().count(), 1, "{e}");
            e
        };
        assert_eq!(one("/nonexistent/prog"), "/nonexistent/prog: No such file or directory");
        assert_eq!(one("/etc"), "/etc: is a directory, not a program");
        assert!(one("/etc/passwd").starts_with("/etc/passwd: not an ELF binary"));
        check_program(Path::new("/bin/ls")).unwrap();
    }
}

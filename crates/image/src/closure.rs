//! The shared-library closure of a program, resolved as glibc's loader would at run time:
//! PT_INTERP, then DT_NEEDED breadth first, each name searched in
//!
//! 1. DT_RPATH of the requesting object, then of its loaders up to the executable, but only
//!    when the requester has no DT_RUNPATH (and each object's RPATH only if it has no RUNPATH);
//! 2. (LD_LIBRARY_PATH: ignored, since a container does not get the builder's environment);
//! 3. DT_RUNPATH of the requesting object;
//! 4. /etc/ld.so.cache (or, without one, the /etc/ld.so.conf directories);
//! 5. the system directories (`Arch::default_dirs`).
//!
//! Steps 4 and 5 are skipped for an object marked DF_1_NODEFLIB. `$ORIGIN`, `$LIB` and
//! `$PLATFORM` are expanded in paths; a candidate of another ELF class or machine is passed
//! over, as the loader does. A name already loaded (by DT_NEEDED name or DT_SONAME) is not
//! searched again. Not modelled: the glibc-hwcaps and legacy hwcap subdirectories (CPU-specific
//! builds, absent on a stock Debian), and $PLATFORM's CPU-specific spellings.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use crate::elf::{self, Arch, ElfInfo};
use crate::ldcache::LdCache;

/// Where the host's loader looks first.
pub(crate) const HOST_CACHE: &str = "/etc/ld.so.cache";
const HOST_CONF: &str = "/etc/ld.so.conf";

/// How a library was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Via {
    Program,
    Interp,
    /// A DT_NEEDED containing '/', used as a path.
    Path,
    Rpath,
    Runpath,
    /// The host's ld.so.cache (or ld.so.conf): a container has no such index of its own unless
    /// the image gets one.
    Cache,
    Default,
}

/// One object of the closure.
#[derive(Clone, Debug)]
pub(crate) struct Object {
    /// The path the loader opens (symlinks not resolved: `$ORIGIN` is its directory).
    pub path: PathBuf,
    /// The DT_NEEDED name it satisfies (its file name for the program and the loader).
    pub name: String,
    pub via: Via,
    pub info: ElfInfo,
    /// Who loaded it (an index into the closure), for the RPATH chain.
    pub loader: Option<usize>,
    origin: PathBuf,
}

/// Where names are looked up besides RPATH/RUNPATH.
pub(crate) struct Search {
    cache: Option<LdCache>,
    conf_dirs: Vec<PathBuf>,
}

impl Search {
    /// The host's: its ld.so.cache, else its ld.so.conf directories.
    pub fn host() -> Search {
        match LdCache::load(Path::new(HOST_CACHE)) {
            Some(cache) => Search { cache: Some(cache), conf_dirs: Vec::new() },
            None => Search { cache: None, conf_dirs: crate::ldcache::conf_dirs(Path::new(HOST_CONF)) },
        }
    }

    /// Neither cache nor ld.so.conf: only RPATH/RUNPATH and the system directories.
    #[cfg(test)]
    pub fn none() -> Search {
        Search { cache: None, conf_dirs: Vec::new() }
    }

    fn indexed(&self, name: &str) -> Vec<PathBuf> {
        match &self.cache {
            Some(c) => c.lookup(name).map(Path::to_path_buf).collect(),
            None => self.conf_dirs.iter().map(|d| d.join(name)).collect(),
        }
    }
}

/// The program's closure, program first. An error is one line naming the library and who
/// needs it.
pub(crate) fn resolve(program: &Path, search: &Search) -> Result<Vec<Object>, String> {
    let info = elf::read(program).map_err(|e| format!("{}: {e}", program.display()))?;
    // The executable's $ORIGIN is the directory of its real path (the kernel's /proc/self/exe).
    let real = program.canonicalize().map_err(|e| format!("{}: {e}", program.display()))?;
    let origin = real.parent().unwrap_or(Path::new("/")).to_path_buf();
    let interp = info.interp.clone();
    let mut objs = vec![Object { path: program.into(), name: file_name(program), via: Via::Program, info, loader: None, origin }];
    let mut loaded: HashMap<String, usize> = HashMap::new();
    if let Some(interp) = interp {
        let obj = load(Path::new(&interp), file_name(Path::new(&interp)), Via::Interp, None, objs[0].info.arch)
            .map_err(|e| format!("{} (the dynamic loader of {}): {e}", interp, program.display()))?;
        remember(&mut loaded, &obj, 1);
        objs.push(obj);
    }
    let mut next = 0;
    while next < objs.len() {
        for name in objs[next].info.needed.clone() {
            if loaded.contains_key(&name) {
                continue;
            }
            let obj = find(&name, next, &objs, search)?;
            remember(&mut loaded, &obj, objs.len());
            objs.push(obj);
        }
        next += 1;
    }
    Ok(objs)
}

fn remember(loaded: &mut HashMap<String, usize>, obj: &Object, index: usize) {
    loaded.insert(obj.name.clone(), index);
    if let Some(s) = &obj.info.soname {
        loaded.insert(s.clone(), index);
    }
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Read a found object; its $ORIGIN is the directory it was found in.
fn load(path: &Path, name: String, via: Via, loader: Option<usize>, want: Arch) -> Result<Object, String> {
    let info = elf::read(path).map_err(|e| e.to_string())?;
    if info.arch != want {
        return Err(format!("wrong ELF class or machine ({:?}, want {:?})", info.arch, want));
    }
    let origin = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    Ok(Object { path: path.into(), name, via, info, loader, origin })
}

/// Search `name` for object `req` of `objs`.
fn find(name: &str, req: usize, objs: &[Object], search: &Search) -> Result<Object, String> {
    let who = objs[req].path.display();
    let want = objs[req].info.arch;
    for (cand, via) in candidates(name, req, objs, search) {
        if elf::arch_of(&cand) != Some(want) {
            continue; // missing, not ELF, or another class/machine: the loader moves on too
        }
        return load(&cand, name.to_string(), via, Some(req), want)
            .map_err(|e| format!("{} (needed by {who}): {e}", cand.display()));
    }
    Err(format!("library {name} (needed by {who}) not found in its RPATH/RUNPATH, the ld.so cache or the system directories"))
}

/// Every path the loader would try for `name` needed by `objs[req]`, in order.
pub(crate) fn candidates(name: &str, req: usize, objs: &[Object], search: &Search) -> Vec<(PathBuf, Via)> {
    let o = &objs[req];
    if name.contains('/') {
        return vec![(PathBuf::from(expand(name, &o.origin, o.info.arch)), Via::Path)];
    }
    let mut out = Vec::new();
    let in_dirs = |list: &[String], origin: &Path, via: Via, out: &mut Vec<(PathBuf, Via)>| {
        for d in list {
            out.push((Path::new(&expand(d, origin, o.info.arch)).join(name), via));
        }
    };
    if o.info.runpath.is_empty() {
        let mut at = Some(req);
        while let Some(i) = at {
            if objs[i].info.runpath.is_empty() {
                in_dirs(&objs[i].info.rpath, &objs[i].origin, Via::Rpath, &mut out);
            }
            at = objs[i].loader;
        }
    }
    in_dirs(&o.info.runpath, &o.origin, Via::Runpath, &mut out);
    if !o.info.nodeflib {
        out.extend(search.indexed(name).into_iter().map(|p| (p, Via::Cache)));
        out.extend(o.info.arch.default_dirs().iter().map(|d| (Path::new(d).join(name), Via::Default)));
    }
    out
}

/// Expand `$ORIGIN`, `$LIB`, `$PLATFORM` (and their `${...}` forms), then normalise the path
/// lexically (`$ORIGIN/../lib`), as the loader builds a plain string.
pub(crate) fn expand(path: &str, origin: &Path, arch: Arch) -> String {
    let origin = origin.to_string_lossy();
    let mut s = path.to_string();
    for (token, value) in [("ORIGIN", origin.as_ref()), ("LIB", &arch.lib()), ("PLATFORM", arch.platform())] {
        s = s.replace(&format!("${{{token}}}"), value).replace(&format!("${token}"), value);
    }
    normalise(Path::new(&s)).to_string_lossy().into_owned()
}

fn normalise(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use goblin::elf::header::EM_X86_64;

    const X86_64: Arch = Arch { is_64: true, machine: EM_X86_64 };

    fn obj(path: &str, rpath: &[&str], runpath: &[&str], loader: Option<usize>) -> Object {
        let info = ElfInfo {
            arch: X86_64,
            interp: None,
            soname: None,
            needed: Vec::new(),
            rpath: rpath.iter().map(|s| s.to_string()).collect(),
            runpath: runpath.iter().map(|s| s.to_string()).collect(),
            nodeflib: false,
        };
        let path = PathBuf::from(path);
        Object { origin: path.parent().unwrap().into(), name: file_name(&path), path, via: Via::Default, info, loader }
    }

    fn paths(c: Vec<(PathBuf, Via)>) -> Vec<String> {
        c.into_iter().map(|(p, v)| format!("{v:?} {}", p.display())).collect()
    }

    #[test]
    fn expands_origin_lib_and_platform() {
        let o = Path::new("/opt/app/bin");
        assert_eq!(expand("$ORIGIN/../lib", o, X86_64), "/opt/app/lib");
        assert_eq!(expand("${ORIGIN}/plugins/./x", o, X86_64), "/opt/app/bin/plugins/x");
        assert_eq!(expand("/usr/$LIB/app", o, X86_64), "/usr/lib/x86_64-linux-gnu/app");
        assert_eq!(expand("/opt/${PLATFORM}", o, X86_64), "/opt/x86_64");
        assert_eq!(expand("/plain", o, X86_64), "/plain");
    }

    #[test]
    fn rpath_chain_then_runpath_then_system() {
        // exe (RPATH /exe-rpath) -> liba (RPATH $ORIGIN/a) -> needs libx.
        let objs = [obj("/opt/bin/exe", &["/exe-rpath"], &[], None), obj("/opt/lib/liba.so", &["$ORIGIN/a"], &[], Some(0))];
        assert_eq!(
            paths(candidates("libx.so", 1, &objs, &Search::none())),
            [
                "Rpath /opt/lib/a/libx.so",
                "Rpath /exe-rpath/libx.so",
                "Default /lib/x86_64-linux-gnu/libx.so",
                "Default /usr/lib/x86_64-linux-gnu/libx.so",
                "Default /lib/libx.so",
                "Default /usr/lib/libx.so",
            ]
        );
    }

    #[test]
    fn runpath_disables_every_rpath() {
        let objs =
            [obj("/opt/bin/exe", &["/exe-rpath"], &[], None), obj("/opt/lib/liba.so", &["/ignored"], &["$ORIGIN"], Some(0))];
        let c = paths(candidates("libx.so", 1, &objs, &Search::none()));
        assert_eq!(c[0], "Runpath /opt/lib/libx.so");
        assert!(c[1].starts_with("Default "), "{c:?}");
        // A loader with RUNPATH lends its RPATH to nobody.
        let objs = [obj("/opt/bin/exe", &["/exe-rpath"], &["/exe-runpath"], None), obj("/opt/lib/liba.so", &[], &[], Some(0))];
        let c = paths(candidates("libx.so", 1, &objs, &Search::none()));
        assert!(c[0].starts_with("Default "), "{c:?}");
    }

    #[test]
    fn nodeflib_and_slashes() {
        let mut o = obj("/opt/bin/exe", &[], &["/rp"], None);
        o.info.nodeflib = true;
        let objs = [o];
        assert_eq!(paths(candidates("libx.so", 0, &objs, &Search::none())), ["Runpath /rp/libx.so"]);
        assert_eq!(paths(candidates("$ORIGIN/../libx.so", 0, &objs, &Search::none())), ["Path /opt/libx.so"]);
    }

    #[test]
    fn the_cache_comes_before_the_system_directories() {
        let objs = [obj("/bin/exe", &[], &[], None)];
        let c = candidates("libc.so.6", 0, &objs, &Search::host());
        assert_eq!(c[0], (PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"), Via::Cache));
        assert_eq!(c.last().unwrap().1, Via::Default);
    }

    #[test]
    fn closure_of_ls_is_the_loader_libc_and_friends() {
        let objs = resolve(Path::new("/bin/ls"), &Search::host()).unwrap();
        let names: Vec<&str> = objs.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names[..2], ["ls", "ld-linux-x86-64.so.2"]);
        assert!(
            names.contains(&"libc.so.6") && names.contains(&"libselinux.so.1") && names.contains(&"libpcre2-8.so.0"),
            "{names:?}"
        );
        assert_eq!(names.iter().filter(|n| n.starts_with("ld-linux")).count(), 1, "libc's need of the loader is the loader");
        assert_eq!(objs[1].path, Path::new("/lib64/ld-linux-x86-64.so.2"));
        let libc = objs.iter().find(|o| o.name == "libc.so.6").unwrap();
        assert_eq!((libc.path.as_path(), libc.via), (Path::new("/lib/x86_64-linux-gnu/libc.so.6"), Via::Cache));
    }

    #[test]
    fn a_static_binary_is_its_own_closure() {
        let objs = resolve(Path::new("/bin/busybox"), &Search::host()).unwrap();
        assert_eq!(objs.len(), 1);
    }

    /// A program with RUNPATH $ORIGIN/../lib and its library, built with the system compiler.
    fn origin_layout(dir: &Path) -> PathBuf {
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::create_dir_all(dir.join("lib")).unwrap();
        std::fs::write(dir.join("demo.c"), "int demo(void) { return 42; }\n").unwrap();
        std::fs::write(dir.join("main.c"), "int demo(void);\nint main(void) { return demo() == 42 ? 0 : 1; }\n").unwrap();
        let cc = |args: &[&str]| {
            let st = std::process::Command::new("cc").current_dir(dir).args(args).status().unwrap();
            assert!(st.success(), "cc {args:?}");
        };
        cc(&["-shared", "-fPIC", "-Wl,-soname,libdemo.so.1", "-o", "lib/libdemo.so.1", "demo.c"]);
        cc(&["-o", "bin/main", "main.c", "lib/libdemo.so.1", "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../lib"]);
        dir.join("bin/main")
    }

    #[test]
    fn origin_runpath_of_a_real_build() {
        let dir = std::env::temp_dir().join(format!("cnd-closure-origin-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let main = origin_layout(&dir);
        let objs = resolve(&main, &Search::host()).unwrap();
        let demo = objs.iter().find(|o| o.name == "libdemo.so.1").expect("libdemo resolved");
        assert_eq!((demo.path.clone(), demo.via), (dir.join("lib/libdemo.so.1"), Via::Runpath));
        assert_eq!(objs[0].info.runpath, ["$ORIGIN/../lib"]);

        std::fs::remove_file(dir.join("lib/libdemo.so.1")).unwrap();
        let err = resolve(&main, &Search::host()).unwrap_err();
        assert_eq!(
            err,
            format!(
                "library libdemo.so.1 (needed by {}) not found in its RPATH/RUNPATH, the ld.so cache or the system directories",
                main.display()
            )
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! from-binary images: exactly the program's closure (checked against `ldd`, an independent
//! oracle), runnable in a chroot of the layer (as root), static binaries alone, `--add`, the
//! in-image ld.so.cache, and one-line errors that leave nothing behind.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{root, Tmp};
use conductor_image::progress::Silent;
use conductor_image::Store;

fn store(t: &Tmp) -> Store {
    Store::open(&t.path().join("root")).unwrap()
}

/// The regular files and the symlinks (with targets) of a layer, as host paths.
fn contents(layer: &Path) -> (BTreeSet<PathBuf>, Vec<(PathBuf, PathBuf)>) {
    let (mut files, mut links) = (BTreeSet::new(), Vec::new());
    let mut todo = vec![layer.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let host = Path::new("/").join(p.strip_prefix(layer).unwrap());
            let md = std::fs::symlink_metadata(&p).unwrap();
            if md.file_type().is_symlink() {
                links.push((host, std::fs::read_link(&p).unwrap()));
            } else if md.is_dir() {
                todo.push(p);
            } else {
                files.insert(host);
            }
        }
    }
    (files, links)
}

/// What `ldd` says `program` loads (the vDSO, which is no file, left out).
fn ldd(program: &Path) -> Vec<PathBuf> {
    let out = Command::new("ldd").arg(program).output().unwrap();
    assert!(out.status.success(), "ldd {}", program.display());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = l.split_once("=> ").map_or(l, |(_, p)| p);
            path.starts_with('/').then(|| PathBuf::from(path.split(" (").next().unwrap()))
        })
        .collect()
}

/// The layer holds exactly `program`'s closure as `ldd` reports it (plus `generated` files):
/// one copy of each real file, and only symlinks that the host has too, with the same targets.
fn assert_exact_closure(layer: &Path, program: &Path, generated: &[&str]) {
    let closure: BTreeSet<PathBuf> =
        ldd(program).iter().chain([program.to_path_buf()].iter()).map(|p| p.canonicalize().unwrap()).collect();
    let (files, links) = contents(layer);
    let mut want = closure.clone();
    want.extend(generated.iter().map(PathBuf::from));
    assert_eq!(files, want, "regular files of the layer");
    for f in &closure {
        let same = std::fs::read(layer.join(f.strip_prefix("/").unwrap())).unwrap() == std::fs::read(f).unwrap();
        assert!(same, "{} is a copy of the host's", f.display());
    }
    for (link, target) in &links {
        assert_eq!(&std::fs::read_link(link).unwrap(), target, "{} mirrors the host", link.display());
    }
}

#[test]
fn ls_image_is_its_closure_and_runs_in_a_chroot() {
    let t = Tmp::new("fb-ls");
    let s = store(&t);
    let img = s.build_from_binary("ls", Path::new("/bin/ls"), &[], &mut Silent).unwrap();
    assert_eq!(img.config.cmd, ["/bin/ls"], "the host path is the command");
    assert!(img.source.contains("/bin/ls"));
    let layer = &img.layers()[0];
    assert_exact_closure(layer, Path::new("/bin/ls"), &[]);
    assert!(!layer.join("etc").exists(), "system libraries need no ld.so.cache");
    assert_eq!(std::fs::read_link(layer.join("lib64")).unwrap(), std::fs::read_link("/lib64").unwrap(), "merged-/usr link kept");
    assert_eq!(s.get("ls").unwrap().size, img.size);

    if !root("ls_image_is_its_closure_and_runs_in_a_chroot (chroot part)") {
        return;
    }
    let out = Command::new("chroot").arg(layer).args(["/bin/ls", "-a", "/"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed: BTreeSet<String> = String::from_utf8(out.stdout).unwrap().lines().map(String::from).collect();
    let mut top: BTreeSet<String> =
        std::fs::read_dir(layer).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    top.extend([".".into(), "..".into()]);
    assert_eq!(listed, top, "ls inside sees only the image");
}

#[test]
fn a_static_binary_is_alone() {
    let t = Tmp::new("fb-static");
    let img = store(&t).build_from_binary("bb", Path::new("/bin/busybox"), &[], &mut Silent).unwrap();
    let (files, _) = contents(&img.layers()[0]);
    assert_eq!(files, BTreeSet::from([Path::new("/bin/busybox").canonicalize().unwrap()]));
}

#[test]
fn added_files_and_directories_bring_their_own_closures() {
    let t = Tmp::new("fb-add");
    let dir = t.path().join("extra");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/script.sh"), "#!/bin/sh\necho hi\n").unwrap();
    std::fs::copy("/bin/true", dir.join("true")).unwrap();
    std::os::unix::fs::symlink("sub/script.sh", dir.join("link")).unwrap();
    let extra = [dir.clone(), PathBuf::from("/etc/hostname")];
    let img = store(&t).build_from_binary("busy", Path::new("/bin/busybox"), &extra, &mut Silent).unwrap();
    let layer = &img.layers()[0];
    let inside = |p: &Path| layer.join(p.strip_prefix("/").unwrap());
    assert_eq!(std::fs::read_to_string(inside(&dir.join("sub/script.sh"))).unwrap(), "#!/bin/sh\necho hi\n");
    assert_eq!(std::fs::read_link(inside(&dir.join("link"))).unwrap(), Path::new("sub/script.sh"));
    assert!(inside(Path::new("/etc/hostname")).is_file());
    let (files, _) = contents(layer);
    for lib in ldd(Path::new("/bin/true")) {
        assert!(files.contains(&lib.canonicalize().unwrap()), "{} for the added ELF file", lib.display());
    }
}

/// A program needing libfakeroot-0.so, which the host finds only through its ld.so.cache
/// (Debian's fakeroot lists its directory in /etc/ld.so.conf.d).
fn fakeroot_program(dir: &Path) -> Option<PathBuf> {
    let lib = Path::new("/usr/lib/x86_64-linux-gnu/libfakeroot/libfakeroot-0.so");
    if !lib.exists() {
        eprintln!("skipping the ld.so.cache case: {} missing (apt-get install fakeroot)", lib.display());
        return None;
    }
    std::fs::write(dir.join("main.c"), "int main(void) { return 0; }\n").unwrap();
    let prog = dir.join("needs-fakeroot");
    let st =
        Command::new("cc").arg("-o").arg(&prog).arg(dir.join("main.c")).args(["-Wl,--no-as-needed"]).arg(lib).status().unwrap();
    assert!(st.success());
    Some(prog)
}

#[test]
fn libraries_known_only_to_the_cache_get_an_image_cache() {
    let t = Tmp::new("fb-cache");
    let Some(prog) = fakeroot_program(t.path()) else { return };
    let img = store(&t).build_from_binary("fr", &prog, &[], &mut Silent).unwrap();
    let layer = &img.layers()[0];
    let cache = layer.join("etc/ld.so.cache");
    assert_exact_closure(layer, &prog, &["/etc/ld.so.cache"]);
    let out = Command::new("/sbin/ldconfig").arg("-C").arg(&cache).arg("-p").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("1 libs found"), "only the library outside the system directories:\n{text}");
    assert!(text.contains("libfakeroot-0.so (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libfakeroot/libfakeroot-0.so"), "{text}");

    if !root("libraries_known_only_to_the_cache_get_an_image_cache (chroot part)") {
        return;
    }
    let run = |layer: &Path| Command::new("chroot").arg(layer).arg(&prog).output().unwrap();
    let out = run(layer);
    assert!(out.status.success(), "runs with the image's cache: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_file(&cache).unwrap();
    let out = run(layer);
    assert!(String::from_utf8_lossy(&out.stderr).contains("libfakeroot-0.so"), "and not without it");
}

/// Nothing but finished images in the store directory.
fn entries(s: &Store) -> Vec<String> {
    std::fs::read_dir(s.dir()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect()
}

#[test]
fn errors_are_one_line_and_leave_nothing() {
    let t = Tmp::new("fb-err");
    let s = store(&t);
    let err = |program: &Path, extra: &[PathBuf]| {
        let e = s.build_from_binary("x", program, extra, &mut Silent).unwrap_err().to_string();
        assert_eq!(e.lines().count(), 1, "{e}");
        assert!(entries(&s).is_empty(), "{e}: left {:?}", entries(&s));
        e
    };
    assert_eq!(err(Path::new("/nonexistent/prog"), &[]), "/nonexistent/prog: No such file or directory");
    assert_eq!(err(Path::new("/etc"), &[]), "/etc: is a directory, not a program");
    assert!(err(Path::new("/etc/passwd"), &[]).starts_with("/etc/passwd: not an ELF binary"));
    assert_eq!(err(Path::new("/bin/ls"), &[PathBuf::from("/nope")]), "--add /nope: No such file or directory");

    // A library that went missing: named, with who needs it.
    let dir = t.path().join("build");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("demo.c"), "int demo(void) { return 42; }\n").unwrap();
    std::fs::write(dir.join("main.c"), "int demo(void);\nint main(void) { return demo() == 42 ? 0 : 1; }\n").unwrap();
    let cc = |args: &[&str]| assert!(Command::new("cc").current_dir(&dir).args(args).status().unwrap().success());
    cc(&["-shared", "-fPIC", "-Wl,-soname,libdemo.so.1", "-o", "libdemo.so.1", "demo.c"]);
    cc(&["-o", "main", "main.c", "libdemo.so.1"]);
    std::fs::remove_file(dir.join("libdemo.so.1")).unwrap();
    let e = err(&dir.join("main"), &[]);
    assert!(e.starts_with(&format!("library libdemo.so.1 (needed by {}) not found", dir.join("main").display())), "{e}");

    // Name rules and duplicates, as for every builder.
    assert!(s
        .build_from_binary("Bad", Path::new("/bin/ls"), &[], &mut Silent)
        .unwrap_err()
        .to_string()
        .contains("invalid image name"));
    s.build_from_binary("x", Path::new("/bin/busybox"), &[], &mut Silent).unwrap();
    let dup = s.build_from_binary("x", Path::new("/bin/ls"), &[], &mut Silent).unwrap_err();
    assert!(matches!(dup, conductor_image::Error::Exists(_)), "{dup}");
}

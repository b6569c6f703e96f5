//! A real debootstrap build (network to the apt-configured mirror, minutes the first time),
//! then the same build again from the cache with no network at all. Ignored unless
//! CONDUCTOR_DEBOOTSTRAP_TEST=1 (see build.rs). The cache is the default one under
//! /var/cache/conductor, so that runs after the first reuse its downloads.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::{Duration, Instant};

use common::{root, Tmp};
use conductor_image::{BuildOpts, Image, Progress, Store, Unit};

/// Prints like the CLI's plain-line progress and remembers the stages seen.
struct Recorder {
    lines: conductor_image::progress::Lines<std::io::Stderr>,
    stages: Vec<String>,
}

impl Progress for Recorder {
    fn stage(&mut self, name: &str, total: Option<u64>, unit: Unit) {
        self.stages.push(name.to_string());
        self.lines.stage(name, total, unit);
    }
    fn advance(&mut self, done: u64, item: &str) {
        self.lines.advance(done, item);
    }
    fn message(&mut self, line: &str) {
        self.lines.message(line);
    }
    fn finish(&mut self) {
        self.lines.finish();
    }
}

fn recorder() -> Recorder {
    Recorder { lines: conductor_image::progress::Lines::new(std::io::stderr()), stages: Vec::new() }
}

fn check_image(img: &Image) {
    let l = &img.layers()[0];
    let md = |p: &str| std::fs::symlink_metadata(l.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    assert!(md("usr/bin/bash").is_file());
    assert!(md("usr/bin/ps").is_file(), "the included package (procps) is there");
    assert!(md("usr/bin/apt-get").is_file());
    assert_eq!(md("tmp").permissions().mode() & 0o7777, 0o1777);
    assert_eq!(md("var/tmp").permissions().mode() & 0o7777, 0o1777);
    assert!(md("etc/resolv.conf").is_file());
    assert!(md("etc/hostname").is_file());
    let policy = md("usr/sbin/policy-rc.d");
    assert_eq!(policy.permissions().mode() & 0o777, 0o755);
    assert!(std::fs::read_to_string(l.join("usr/sbin/policy-rc.d")).unwrap().contains("exit 101"));
    let debs = std::fs::read_dir(l.join("var/cache/apt/archives")).unwrap();
    assert!(!debs.flatten().any(|e| e.path().extension().is_some_and(|x| x == "deb")), "no .debs left in the image");
    let sources = std::fs::read_to_string(l.join("etc/apt/sources.list")).unwrap();
    let mirror = conductor_image::apt_sources::default_mirror("bookworm").unwrap();
    assert!(sources.contains(&mirror), "apt in the image uses the host's mirror: {sources}");
    assert_eq!(img.config.cmd, ["/bin/bash"]);
    assert_eq!(img.config.env, [conductor_image::DEFAULT_PATH]);
    assert!(img.size > 100_000_000, "size {}", img.size);
    // Everything is owned by root except what Debian gives to others (e.g. _apt's dirs).
    assert_eq!(md("usr/bin/bash").uid(), 0);
}

#[test]
#[cfg_attr(not(conductor_debootstrap_test), ignore = "network and minutes: set CONDUCTOR_DEBOOTSTRAP_TEST=1")]
fn debootstrap_minbase_then_from_cache() {
    if !root("debootstrap_minbase_then_from_cache") {
        return;
    }
    let t = Tmp::new("debootstrap");
    let store = Store::open(&t.path().join("root")).unwrap();
    let opts = BuildOpts { variant: Some("minbase".into()), include: vec!["procps".into()], ..BuildOpts::default() };

    // A fresh debootstrap (downloads only what the .deb cache lacks), which renews the rootfs cache.
    let mut p = recorder();
    let start = Instant::now();
    let first = store.build_debootstrap("deb-first", &BuildOpts { refresh: true, ..opts.clone() }, &mut p).unwrap();
    let first_time = start.elapsed();
    for s in ["downloading", "extracting", "unpacking", "configuring"] {
        assert!(p.stages.iter().any(|x| x == s), "stage {s} missing from {:?}", p.stages);
    }
    check_image(&first);
    assert!(!first.source.contains("cached"), "{}", first.source);

    // The same build again, on a thread in a new network namespace: no network at all.
    let store2 = store.clone();
    let second = std::thread::spawn(move || -> (Image, Duration, Vec<String>) {
        conductor_sys::ns::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let mut p = recorder();
        let start = Instant::now();
        let img = store2.build_debootstrap("deb-second", &opts, &mut p).unwrap();
        (img, start.elapsed(), p.stages)
    });
    let (second, second_time, stages) = second.join().unwrap();
    assert_eq!(stages, ["unpacking"]);
    check_image(&second);
    assert!(second.source.contains("cached"), "{}", second.source);
    assert_eq!(second.size, first.size, "the cached rootfs is the same tree");

    eprintln!("debootstrap build: {first_time:.1?}; from the cache without network: {second_time:.1?}");
    assert!(second_time * 3 < first_time, "cached build {second_time:?} is not several times faster than {first_time:?}");

    store.remove("deb-first").unwrap();
    store.remove("deb-second").unwrap();
    assert!(store.list().unwrap().is_empty());
}

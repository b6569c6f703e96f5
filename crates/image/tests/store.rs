//! The image store as root: import (plain and gzip) keeps every kind of entry, failures leave
//! nothing, names are unique, remove is complete, and overlay mounts never touch the layer.

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use common::{busybox_rootfs, mounts_under, root, tarball, Tmp};
use conductor_image::progress::Silent;
use conductor_image::{mount_rootfs, unmount_rootfs, Error, ImageConfig, ImportOpts, Store};

/// A store, and a busybox tarball (`busybox.tar` or `busybox.tar.gz`) beside it.
fn setup(tag: &str, gzip: bool) -> (Tmp, Store, std::path::PathBuf) {
    let t = Tmp::new(tag);
    let rootfs = t.path().join("rootfs");
    busybox_rootfs(&rootfs);
    let tar = t.path().join(if gzip { "busybox.tar.gz" } else { "busybox.tar" });
    tarball(&rootfs, &tar, gzip);
    std::fs::remove_dir_all(&rootfs).unwrap();
    let store = Store::open(&t.path().join("root")).unwrap();
    (t, store, tar)
}

/// Nothing but finished images in the store directory: no temp or trash entries.
fn entries(store: &Store) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(store.dir()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    v.sort();
    v
}

fn check_busybox_layer(layer: &Path) {
    let md = |p: &str| std::fs::symlink_metadata(layer.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    let bb = md("bin/busybox");
    assert!(bb.is_file());
    assert_eq!(bb.mode() & 0o7777, 0o755);
    assert_eq!(bb.len(), std::fs::metadata("/bin/busybox").unwrap().len());
    assert_eq!((bb.uid(), bb.gid()), (0, 0));
    assert_eq!(std::fs::read_link(layer.join("bin/sh")).unwrap(), Path::new("busybox"));
    assert_eq!(std::fs::read_link(layer.join("etc/mtab")).unwrap(), Path::new("/proc/self/mounts"));
    assert_eq!(md("usr/bin/busybox-hard").ino(), bb.ino(), "hard link kept");
    let suid = md("usr/bin/suid");
    assert_eq!((suid.mode() & 0o7777, suid.uid(), suid.gid()), (0o4755, 1000, 1000), "setuid survives chown");
    assert_eq!(md("tmp").mode() & 0o7777, 0o1777);
    assert_eq!(md("root").mode() & 0o7777, 0o700);
    let null = md("dev/null");
    assert!(null.file_type().is_char_device());
    assert_eq!((nix::sys::stat::major(null.rdev()), nix::sys::stat::minor(null.rdev())), (1, 3));
    assert_eq!(null.mode() & 0o777, 0o666);
    let lp = md("dev/loop9");
    assert!(lp.file_type().is_block_device());
    assert_eq!(nix::sys::stat::minor(lp.rdev()), 9);
    assert!(md("dev/initctl").file_type().is_fifo());
}

#[test]
fn import_plain_and_gzip_keep_everything() {
    if !root("import_plain_and_gzip_keep_everything") {
        return;
    }
    for gzip in [false, true] {
        let (_t, store, tar) = setup("import", gzip);
        let img = store.import(&tar, "busybox", &mut Silent).unwrap();
        assert_eq!(img.name, "busybox");
        assert_eq!(img.layers().len(), 1);
        check_busybox_layer(&img.layers()[0]);
        assert_eq!(img.config, ImageConfig::default());
        assert!(img.source.contains(tar.to_str().unwrap()), "{}", img.source);

        // The size is the busybox binary (its hard link counted once) plus the small files.
        let bb = std::fs::metadata("/bin/busybox").unwrap().len();
        assert!(img.size >= bb && img.size < bb + 64 * 1024, "size {} for busybox {bb}", img.size);

        let list = store.list().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0], img.info());
        let again = store.get("busybox").unwrap();
        assert_eq!((again.size, again.created, again.layers()), (img.size, img.created, img.layers()));
        assert!(store.exists("busybox").unwrap());
        assert_eq!(entries(&store), ["busybox"]);
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(img.dir.join("image.json")).unwrap()).unwrap();
        assert_eq!(json["layers"], serde_json::json!(["layers/0"]));
        assert_eq!(json["config"]["cmd"], serde_json::json!(["/bin/sh"]));
    }
}

#[test]
fn a_failed_import_leaves_nothing() {
    if !root("a_failed_import_leaves_nothing") {
        return;
    }
    let (t, store, tar) = setup("badimport", true);
    // A gzip stream cut in half.
    let bytes = std::fs::read(&tar).unwrap();
    let cut = t.path().join("cut.tar.gz");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    // A tar whose last entry climbs out (raw header: tar::Builder would refuse the path).
    let mut plain = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut plain).unwrap();
    let evil = t.path().join("evil.tar");
    std::fs::write(&evil, with_entry(&plain, "../../escaped")).unwrap();
    let xz = t.path().join("rootfs.tar.xz");
    std::fs::write(&xz, b"\xfd7zXZ\x00rest").unwrap();

    for (bad, want) in [(&cut, "cut.tar.gz"), (&evil, "escape"), (&xz, "xz"), (&t.path().join("missing.tar"), "missing.tar")] {
        let err = store.import(bad, "bb", &mut Silent).unwrap_err();
        let msg = err.to_string();
        eprintln!("refused as expected: {msg}");
        assert!(matches!(err, Error::Archive { .. }), "{msg}");
        assert!(msg.contains(want) && msg.lines().count() == 1, "{msg}");
        assert!(store.list().unwrap().is_empty());
        assert!(entries(&store).is_empty(), "left {:?} after {msg}", entries(&store));
    }
    assert!(!t.path().join("escaped").exists() && !t.path().parent().unwrap().join("escaped").exists());
}

/// `tar` (a complete archive) with one more regular-file entry named `path`, written raw.
fn with_entry(tar: &[u8], path: &str) -> Vec<u8> {
    // Drop the end-of-archive blocks: find the last header by walking the archive.
    let mut ar = tar::Archive::new(tar);
    let mut end = 0u64;
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        end = e.raw_file_position() + e.size().div_ceil(512) * 512;
    }
    let mut out = tar[..end as usize].to_vec();
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
    h.set_mode(0o644);
    h.set_size(4);
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    let mut data = b"evil".to_vec();
    data.resize(512, 0);
    out.extend_from_slice(&data);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

#[test]
fn names_are_unique_unless_replaced() {
    if !root("names_are_unique_unless_replaced") {
        return;
    }
    let (_t, store, tar) = setup("dup", false);
    let first = store.import(&tar, "bb", &mut Silent).unwrap();
    let err = store.import(&tar, "bb", &mut Silent).unwrap_err();
    assert!(matches!(err, Error::Exists(_)), "{err}");
    assert_eq!(err.to_string(), "image \"bb\" already exists (remove it first, or replace it)");
    let err = store.import(&tar, "Bad/Name", &mut Silent).unwrap_err();
    assert!(err.to_string().starts_with("invalid image name \"Bad/Name\""), "{err}");

    let config = ImageConfig { cmd: vec!["/bin/echo".into(), "hi".into()], ..ImageConfig::default() };
    let opts = ImportOpts { replace: true, config: config.clone() };
    let second = store.import_with(&tar, "bb", &opts, &mut Silent).unwrap();
    assert_eq!(second.config, config);
    assert_eq!(store.get("bb").unwrap().config, config);
    assert!(second.created >= first.created);
    assert_eq!(entries(&store), ["bb"], "the replaced image is gone");
}

#[test]
fn remove_is_complete() {
    if !root("remove_is_complete") {
        return;
    }
    let (_t, store, tar) = setup("rm", true);
    store.import(&tar, "a", &mut Silent).unwrap();
    store.import(&tar, "b", &mut Silent).unwrap();
    store.remove("a").unwrap();
    assert!(!store.exists("a").unwrap());
    assert!(matches!(store.get("a"), Err(Error::NotFound(_))));
    assert_eq!(store.remove("a").unwrap_err().to_string(), "no such image: a");
    assert_eq!(entries(&store), ["b"]);
    let names: Vec<_> = store.list().unwrap().into_iter().map(|i| i.name).collect();
    assert_eq!(names, ["b"]);
}

#[test]
fn open_cleans_up_after_a_crash() {
    if !root("open_cleans_up_after_a_crash") {
        return;
    }
    let t = Tmp::new("crash");
    let images = t.path().join("root/images");
    for leftover in [".tmp-x-1-0/layers/0/etc", ".trash-y-1-0/layers/0/bin"] {
        std::fs::create_dir_all(images.join(leftover)).unwrap();
    }
    // One in use by a live process (held lock): kept.
    std::fs::create_dir_all(images.join(".tmp-z-1-0")).unwrap();
    let held =
        nix::fcntl::Flock::lock(std::fs::File::open(images.join(".tmp-z-1-0")).unwrap(), nix::fcntl::FlockArg::LockExclusive)
            .unwrap();
    let store = Store::open(&t.path().join("root")).unwrap();
    assert_eq!(entries(&store), [".tmp-z-1-0"]);
    drop(held);
    let store = Store::open(&t.path().join("root")).unwrap();
    assert!(entries(&store).is_empty());
}

#[test]
fn create_from_dir_moves_the_directory_in() {
    if !root("create_from_dir_moves_the_directory_in") {
        return;
    }
    let t = Tmp::new("fromdir");
    let store = Store::open(&t.path().join("root")).unwrap();
    let dir = t.path().join("prepared");
    busybox_rootfs(&dir);
    let config = ImageConfig { cmd: vec!["/bin/busybox".into(), "true".into()], ..ImageConfig::default() };
    let img = store.create_from_dir("prepared", &dir, config.clone()).unwrap();
    assert!(!dir.exists(), "moved, not copied");
    check_busybox_layer(&img.layers()[0]);
    assert_eq!(img.config, config);

    // A taken name: the directory stays where it was.
    busybox_rootfs(&dir);
    assert!(matches!(store.create_from_dir("prepared", &dir, config), Err(Error::Exists(_))));
    assert!(dir.join("bin/busybox").exists());
}

#[test]
fn overlay_rootfs_writes_go_to_the_upper_dir() {
    if !root("overlay_rootfs_writes_go_to_the_upper_dir") {
        return;
    }
    let (t, store, tar) = setup("overlay", true);
    let img = store.import(&tar, "bb", &mut Silent).unwrap();
    let lower = img.layers()[0].clone();
    let (upper, work, target) = (t.path().join("c/upper"), t.path().join("c/work"), t.path().join("c/rootfs"));
    mount_rootfs(&img, &upper, &work, &target).unwrap();
    assert_eq!(mounts_under(&target).len(), 1);

    assert!(target.join("bin/busybox").is_file(), "the image is visible");
    std::fs::write(target.join("etc/new"), "container").unwrap();
    std::fs::write(target.join("etc/passwd"), "changed\n").unwrap();
    std::fs::remove_file(target.join("bin/ls")).unwrap();
    assert_eq!(std::fs::read_to_string(upper.join("etc/new")).unwrap(), "container");
    assert!(!lower.join("etc/new").exists());
    assert_eq!(std::fs::read_to_string(lower.join("etc/passwd")).unwrap(), "root:x:0:0:root:/root:/bin/sh\n");
    assert!(std::fs::symlink_metadata(lower.join("bin/ls")).is_ok(), "deleting in the container keeps the layer");

    // A second container of the same image sees the untouched image.
    let (u2, w2, t2) = (t.path().join("c2/upper"), t.path().join("c2/work"), t.path().join("c2/rootfs"));
    mount_rootfs(&img, &u2, &w2, &t2).unwrap();
    assert!(!t2.join("etc/new").exists());
    assert!(t2.join("bin/ls").exists());

    unmount_rootfs(&target).unwrap();
    unmount_rootfs(&t2).unwrap();
    unmount_rootfs(&t2).unwrap(); // idempotent
    assert!(mounts_under(t.path()).is_empty());
    assert!(!target.join("bin").exists());
}

#[test]
fn remove_refuses_an_image_with_a_mount_inside() {
    if !root("remove_refuses_an_image_with_a_mount_inside") {
        return;
    }
    let (_t, store, tar) = setup("rmmounted", false);
    let img = store.import(&tar, "bb", &mut Silent).unwrap();
    let proc_dir = img.layers()[0].join("proc");
    conductor_sys::mount::mount(Some("tmpfs"), &proc_dir, Some("tmpfs"), nix::mount::MsFlags::empty(), None, &proc_dir).unwrap();
    let err = store.remove("bb").unwrap_err().to_string();
    assert!(err.contains("is mounted inside it"), "{err}");
    unmount_rootfs(&proc_dir).unwrap();
    store.remove("bb").unwrap();
}

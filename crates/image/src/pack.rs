//! Write a directory tree as a tar stream: the inverse of `import::unpack`, keeping what it
//! keeps (modes, numeric owners, symlinks, hard links, devices, fifos). Used for the
//! debootstrap rootfs cache.

use std::collections::HashMap;
use std::fs::Metadata;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header, HeaderMode};

/// Append everything below `root` (not `root` itself) to a tar stream on `out`; returns the
/// stream's writer. Sockets are skipped (they cannot be archived, and mean nothing in an image).
pub fn pack<W: Write>(root: &Path, out: W) -> std::io::Result<W> {
    let mut b = tar::Builder::new(out);
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel_dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(root.join(&rel_dir))?.collect::<std::io::Result<_>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let rel = rel_dir.join(e.file_name());
            let md = e.metadata()?;
            let mut h = Header::new_gnu();
            h.set_metadata_in_mode(&md, HeaderMode::Complete);
            let ft = md.file_type();
            if ft.is_dir() {
                h.set_size(0);
                b.append_data(&mut h, &rel, std::io::empty())?;
                stack.push(rel);
            } else if ft.is_symlink() {
                h.set_size(0);
                b.append_link(&mut h, &rel, std::fs::read_link(e.path())?)?;
            } else if ft.is_file() {
                append_file(&mut b, &mut links, &mut h, &md, root, &rel)?;
            } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
                h.set_entry_type(if ft.is_char_device() {
                    EntryType::Char
                } else if ft.is_block_device() {
                    EntryType::Block
                } else {
                    EntryType::Fifo
                });
                h.set_size(0);
                h.set_device_major(nix::sys::stat::major(md.rdev()) as u32)?;
                h.set_device_minor(nix::sys::stat::minor(md.rdev()) as u32)?;
                b.append_data(&mut h, &rel, std::io::empty())?;
            }
        }
    }
    b.into_inner()
}

/// A regular file, or a hard link to the first path of an inode already written.
fn append_file<W: Write>(
    b: &mut tar::Builder<W>,
    links: &mut HashMap<(u64, u64), PathBuf>,
    h: &mut Header,
    md: &Metadata,
    root: &Path,
    rel: &Path,
) -> std::io::Result<()> {
    if md.nlink() > 1 {
        let key = (md.dev(), md.ino());
        if let Some(first) = links.get(&key) {
            h.set_entry_type(EntryType::Link);
            h.set_size(0);
            return b.append_link(h, rel, first);
        }
        links.insert(key, rel.to_path_buf());
    }
    let f = std::fs::File::open(root.join(rel))?;
    b.append_data(h, rel, f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_unpack() {
        let d = std::env::temp_dir().join(format!("cnd-image-pack-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let src = d.join("src");
        std::fs::create_dir_all(src.join("a/b")).unwrap();
        std::fs::write(src.join("a/b/file"), "content").unwrap();
        std::fs::set_permissions(src.join("a/b/file"), std::os::unix::fs::PermissionsExt::from_mode(0o4711)).unwrap();
        std::fs::hard_link(src.join("a/b/file"), src.join("hard")).unwrap();
        std::os::unix::fs::symlink("/a/b/file", src.join("abs-link")).unwrap();
        std::fs::set_permissions(src.join("a"), std::os::unix::fs::PermissionsExt::from_mode(0o1777)).unwrap();
        let long = "x".repeat(150);
        std::fs::write(src.join(&long), "").unwrap();

        let tar = pack(&src, Vec::new()).unwrap();
        let dst = d.join("dst");
        crate::import::unpack(&tar[..], &dst, |_| {}).unwrap();

        let md = |p: &str| std::fs::symlink_metadata(dst.join(p)).unwrap();
        assert_eq!(std::fs::read(dst.join("a/b/file")).unwrap(), b"content");
        assert_eq!(md("a/b/file").mode() & 0o7777, 0o4711);
        assert_eq!(md("a").mode() & 0o7777, 0o1777);
        assert_eq!(md("hard").ino(), md("a/b/file").ino());
        assert_eq!(std::fs::read_link(dst.join("abs-link")).unwrap(), Path::new("/a/b/file"));
        assert!(dst.join(&long).is_file());
        std::fs::remove_dir_all(&d).unwrap();
    }
}

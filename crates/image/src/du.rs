//! Disk usage of a layer: what `images` shows as SIZE.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Apparent size of everything under `dir` (file bytes and symlink targets), each hard-linked
/// inode counted once, like `du -s --apparent-size`. Mount points below `dir` are not crossed.
pub fn apparent_size(dir: &Path) -> std::io::Result<u64> {
    let dev = std::fs::symlink_metadata(dir)?.dev();
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let md = entry.metadata()?;
            if md.is_dir() {
                if md.dev() == dev {
                    stack.push(entry.path());
                }
                continue;
            }
            if md.nlink() > 1 && !seen.insert((md.dev(), md.ino())) {
                continue;
            }
            total += md.len();
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_hard_links_once() {
        let dir = std::env::temp_dir().join(format!("cnd-image-du-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("a"), vec![0u8; 1000]).unwrap();
        std::fs::hard_link(dir.join("a"), dir.join("sub/b")).unwrap();
        std::fs::write(dir.join("sub/c"), vec![0u8; 24]).unwrap();
        std::os::unix::fs::symlink("a", dir.join("l")).unwrap();
        assert_eq!(apparent_size(&dir).unwrap(), 1000 + 24 + 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

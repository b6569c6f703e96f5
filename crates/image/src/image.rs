//! What an image is: an ordered list of layer directories plus the config a container starts
//! with, recorded in the image's `image.json`.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The PATH every image gets unless its builder says otherwise (Docker's default).
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How a container of the image starts, unless the user overrides it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageConfig {
    /// `KEY=value` pairs.
    pub env: Vec<String>,
    /// The command (argv) when none is given.
    pub cmd: Vec<String>,
    /// The working directory, absolute.
    pub workdir: String,
    /// `uid[:gid]`, or a user name from the image's /etc/passwd.
    pub user: String,
}

impl Default for ImageConfig {
    /// PATH set, `/bin/sh` (the one shell every rootfs has), `/`, root.
    fn default() -> Self {
        ImageConfig { env: vec![DEFAULT_PATH.into()], cmd: vec!["/bin/sh".into()], workdir: "/".into(), user: "0:0".into() }
    }
}

/// The on-disk record, `<image dir>/image.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub name: String,
    /// RFC 3339.
    pub created: String,
    /// Bytes in all layers (apparent file sizes, hard links counted once).
    pub size: u64,
    /// Layer directories relative to the image directory, bottom-most first.
    pub layers: Vec<String>,
    pub config: ImageConfig,
    /// How the image was made, for people (e.g. "import of /tmp/rootfs.tar.gz").
    pub source: String,
}

/// One image of the store.
#[derive(Clone, Debug)]
pub struct Image {
    pub name: String,
    /// The image's directory in the store.
    pub dir: PathBuf,
    pub created: DateTime<Utc>,
    pub size: u64,
    pub config: ImageConfig,
    pub source: String,
    layers: Vec<PathBuf>,
}

/// What `images` lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    pub name: String,
    pub size: u64,
    pub created: DateTime<Utc>,
}

impl Image {
    /// The layer directories, absolute, bottom-most first (an overlay mount lists them in the
    /// reverse order).
    pub fn layers(&self) -> &[PathBuf] {
        &self.layers
    }

    pub fn info(&self) -> ImageInfo {
        ImageInfo { name: self.name.clone(), size: self.size, created: self.created }
    }

    /// Load `<dir>/image.json`; `name` is the name the store knows the directory by.
    pub(crate) fn load(name: &str, dir: &Path) -> Result<Image> {
        let path = dir.join(crate::store::MANIFEST);
        let corrupt = |reason: String| Error::Corrupt { name: name.into(), path: path.clone(), reason };
        let bytes = std::fs::read(&path).map_err(|e| corrupt(e.to_string()))?;
        let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        let created = DateTime::parse_from_rfc3339(&m.created)
            .map_err(|e| corrupt(format!("created {:?}: {e}", m.created)))?
            .with_timezone(&Utc);
        let layers = m.layers.iter().map(|l| layer_path(dir, l)).collect::<std::result::Result<_, _>>().map_err(corrupt)?;
        Ok(Image { name: name.into(), dir: dir.into(), created, size: m.size, config: m.config, source: m.source, layers })
    }
}

/// A layer named in image.json must be a plain relative path inside the image directory, so a
/// tampered file cannot point a container's lowerdir anywhere on the host.
fn layer_path(dir: &Path, rel: &str) -> std::result::Result<PathBuf, String> {
    let p = Path::new(rel);
    let plain = p.components().all(|c| matches!(c, std::path::Component::Normal(_)));
    if rel.is_empty() || !plain {
        return Err(format!("layer {rel:?} is not a relative path inside the image"));
    }
    Ok(dir.join(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_stay_inside_the_image() {
        let dir = Path::new("/s/images/x");
        assert_eq!(layer_path(dir, "layers/0").unwrap(), dir.join("layers/0"));
        for bad in ["", "/etc", "../y/layers/0", "layers/../../y", "./layers"] {
            assert!(layer_path(dir, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn config_defaults_fill_missing_fields() {
        let c: ImageConfig = serde_json::from_str(r#"{"cmd": ["/bin/bash"]}"#).unwrap();
        assert_eq!(c.cmd, ["/bin/bash"]);
        assert_eq!(c.env, [DEFAULT_PATH]);
        assert_eq!(c.workdir, "/");
    }
}

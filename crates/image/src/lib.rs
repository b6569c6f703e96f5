//! The image layer: a store of images, each an ordered list of layer directories plus the
//! config a container starts with; builders that make them (import of a rootfs tarball,
//! debootstrap, a prepared directory); and the overlay mount plan that turns an image into a
//! container's rootfs without copying it.
//!
//! - [`Store`]: `open`, `list`, `get`, `exists`, `remove`, `import`, `build_debootstrap`,
//!   `build_from_binary` (a program and its shared-library closure), `create_from_dir`. Every change is atomic (rename into place); leftovers of a crash are
//!   cleaned by the next `open`.
//! - [`mount_rootfs`] / [`unmount_rootfs`]: overlayfs, emitting `conductor::explain` events.
//! - [`Progress`]: how builders report progress; the caller picks the rendering.
//!
//! There is no `unsafe` here: mounts and mknod go through conductor-sys.

#![forbid(unsafe_code)]

pub mod apt_sources;
mod atomic;
mod closure;
pub mod debootstrap;
mod du;
mod elf;
mod error;
mod from_binary;
mod image;
pub mod import;
mod ldcache;
mod mountinfo;
pub mod name;
mod overlay;
mod pack;
pub mod progress;
mod store;

pub use debootstrap::BuildOpts;
pub use error::{Error, Result};
pub use image::{Image, ImageConfig, ImageInfo, DEFAULT_PATH};
pub use import::ImportOpts;
pub use overlay::{mount_rootfs, unmount_rootfs};
pub use progress::{Progress, Unit};
pub use store::Store;

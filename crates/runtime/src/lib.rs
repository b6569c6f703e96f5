pub use nix;
pub use oci_spec;

pub mod seccomp;

//! Safe wrappers over the Linux primitives conductor needs. This is the only crate that holds
//! `unsafe` code; everything above it speaks in these types.

pub mod seccomp;

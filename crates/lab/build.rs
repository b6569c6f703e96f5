//! Builds `container_prog` from `c/container_prog.c` with the system C compiler, dynamically
//! linked against libc.
//!
//! Why C and a build script: the workspace links every Rust binary with `+crt-static`
//! (.cargo/config.toml, for start-up speed), and Cargo has no per-binary way to turn a target
//! feature off. A static binary has no shared-library closure, which is the point of the seed's
//! Task 2, so this one program is C (as the seed's is) built by `cc` (or `$CC`).
//!
//! The binary lands in `$OUT_DIR/container_prog`; its path is compiled into the crate as
//! `CONDUCTOR_CONTAINER_PROG` (see `conductor_lab::container_prog`). A copy is also placed next
//! to Cargo's own binaries (`target/<triple>/<profile>/container_prog`) for scripts; that copy
//! is a convenience, so failing to make it is only a warning.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let src = "c/container_prog.c";
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-env-changed=CC");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let bin = out.join("container_prog");
    compile(src, &bin);
    println!("cargo:rustc-env=CONDUCTOR_CONTAINER_PROG={}", bin.display());
    if let Err(e) = copy_beside_cargo_binaries(&out, &bin) {
        println!("cargo:warning=container_prog not copied next to the cargo binaries: {e}");
    }
}

fn compile(src: &str, bin: &Path) {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args(["-O2", "-Wall", "-Wextra", "-std=c11", "-D_GNU_SOURCE", "-o"])
        .arg(bin)
        .arg(src)
        .status()
        .unwrap_or_else(|e| panic!("container_prog: cannot run the C compiler {cc:?}: {e} (install gcc and libc6-dev)"));
    assert!(status.success(), "container_prog: {cc} {src} failed: {status}");
}

/// OUT_DIR is `<target>/<triple>/<profile>/build/<pkg>-<hash>/out`: three levels up is the
/// directory holding the workspace's binaries. Written through a temp name and renamed, so a
/// concurrent build never sees a half-written file.
fn copy_beside_cargo_binaries(out: &Path, bin: &Path) -> std::io::Result<()> {
    let dir = out.ancestors().nth(3).ok_or_else(|| std::io::Error::other("OUT_DIR has an unexpected shape"))?;
    let tmp = dir.join(format!(".container_prog.tmp-{}", std::process::id()));
    std::fs::copy(bin, &tmp)?;
    std::fs::rename(&tmp, dir.join("container_prog"))
}

//! Container images built from the busybox rootfs, for clients that take images rather than
//! bundles: a plain rootfs tar (`podman import`) and an OCI image layout archive (`ctr images
//! import`). Built with tar, gzip and sha256sum, which every Debian has.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

/// A tar of a busybox rootfs, owned by root whoever built it.
pub fn busybox_tar(dir: &Path) -> PathBuf {
    let rootfs = dir.join("image-rootfs");
    let _ = std::fs::remove_dir_all(&rootfs);
    super::busybox_rootfs(&rootfs);
    let out = dir.join("busybox.tar");
    sh(Command::new("tar").args(["--numeric-owner", "--owner=0", "--group=0", "-C"]).arg(&rootfs).arg("-cf").arg(&out).arg("."));
    std::fs::remove_dir_all(&rootfs).unwrap();
    out
}

/// An OCI image layout archive holding one image, `reference` (e.g. docker.io/library/bb:latest):
/// one gzipped layer (the busybox rootfs), its config and manifest, each under its sha256.
pub fn busybox_oci_archive(dir: &Path, reference: &str) -> PathBuf {
    let layout = dir.join("oci-layout");
    let _ = std::fs::remove_dir_all(&layout);
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    let tar = busybox_tar(dir);
    let diff_id = sha256(&tar);
    let gz = dir.join("layer.tar.gz");
    sh(Command::new("sh").arg("-c").arg("gzip -n -c \"$0\" > \"$1\"").arg(&tar).arg(&gz));
    std::fs::remove_file(&tar).unwrap();
    let layer = add_blob(&layout, &gz);

    let config = json!({
        "architecture": oci_arch(),
        "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{diff_id}")]},
    });
    let config = add_json_blob(&layout, &config);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.0, "size": config.1},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer.0, "size": layer.1}],
    });
    let manifest = add_json_blob(&layout, &manifest);
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest.0,
            "size": manifest.1,
            // containerd names the image after its own annotation; other tools read the OCI one.
            "annotations": {"io.containerd.image.name": reference, "org.opencontainers.image.ref.name": reference},
        }],
    });
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    std::fs::write(layout.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let out = dir.join("busybox-oci.tar");
    sh(Command::new("tar").args(["--numeric-owner", "--owner=0", "--group=0", "-C"]).arg(&layout).arg("-cf").arg(&out).arg("."));
    std::fs::remove_dir_all(&layout).unwrap();
    out
}

/// The architecture as OCI names it.
fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        a => a,
    }
}

/// Move `file` into the layout's blobs under its digest: ("sha256:HEX", size).
fn add_blob(layout: &Path, file: &Path) -> (String, u64) {
    let hex = sha256(file);
    let size = std::fs::metadata(file).unwrap().len();
    std::fs::rename(file, layout.join("blobs/sha256").join(&hex)).unwrap();
    (format!("sha256:{hex}"), size)
}

fn add_json_blob(layout: &Path, v: &serde_json::Value) -> (String, u64) {
    let tmp = layout.join("blob.json");
    std::fs::write(&tmp, v.to_string()).unwrap();
    add_blob(layout, &tmp)
}

/// The sha256 of `data`, in hex.
pub fn sha256_hex(data: &[u8]) -> String {
    use std::io::Write;
    let mut child =
        Command::new("sha256sum").stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

fn sha256(file: &Path) -> String {
    let out = Command::new("sha256sum").arg(file).output().unwrap();
    assert!(out.status.success(), "sha256sum: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

fn sh(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

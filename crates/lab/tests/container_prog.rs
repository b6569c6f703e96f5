//! container_prog on the host: the seed's layout, each value checked; and that it is the
//! dynamically linked binary the from-binary exercise needs.

use std::collections::BTreeSet;
use std::process::Command;

const SEP: &str = "_ _ _ _ _ _ _ _ _ _ _ _ _ _ ";

#[test]
fn prints_the_seed_layout_with_real_values() {
    let out = Command::new(conductor_lab::container_prog()).arg("20").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();

    let pid: u32 = lines[0].strip_prefix("Process PID: ").unwrap().parse().unwrap();
    let child: u32 = lines[1].strip_prefix("Child Process PID: ").unwrap().parse().unwrap();
    assert_ne!(pid, child);
    assert_eq!(lines[2..5], [SEP, "", "Files/Directories in root directory:"], "{text}");

    let end = lines.iter().rposition(|l| *l == SEP).unwrap();
    let listed: BTreeSet<&str> = lines[5..end].iter().copied().collect();
    let mut expected: BTreeSet<String> =
        std::fs::read_dir("/").unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    expected.extend([".".to_string(), "..".to_string()]);
    assert_eq!(listed, expected.iter().map(String::as_str).collect(), "{text}");

    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    assert_eq!(
        lines[end + 1..end + 5],
        ["", &format!("Hostname within container: {host}"), "", "Computation Benchmark:"],
        "{text}"
    );
    let ms: u64 = lines[end + 5].strip_prefix("Time Taken: ").unwrap().strip_suffix(" ms").unwrap().parse().unwrap();
    assert!(ms < 10_000, "20 million iterations took {ms} ms");
    let value: u64 = lines[end + 6].strip_prefix("Value (Ignore): ").unwrap().parse().unwrap();
    assert_ne!(value, 0);
    assert_eq!(lines.len(), end + 7, "{text}");
}

#[test]
fn work_scales_with_the_argument_and_the_environment() {
    let value = |arg: Option<&str>, env: Option<&str>| {
        let mut c = Command::new(conductor_lab::container_prog());
        c.args(arg).env_remove("CONTAINER_PROG_MILLIONS");
        if let Some(e) = env {
            c.env("CONTAINER_PROG_MILLIONS", e);
        }
        let out = c.output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        text.lines().last().unwrap().to_string()
    };
    let zero = value(Some("0"), None);
    assert_eq!(zero, "Value (Ignore): 0");
    assert_eq!(value(None, Some("0")), zero, "the environment sets the work");
    assert_ne!(value(Some("1"), Some("0")), zero, "the argument wins over the environment");

    let bad = Command::new(conductor_lab::container_prog()).arg("lots").output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("lots: not a number"));
}

#[test]
fn is_dynamically_linked_and_copied_beside_the_cargo_binaries() {
    let bytes = std::fs::read(conductor_lab::container_prog()).unwrap();
    assert!(bytes.windows(28).any(|w| w == b"/lib64/ld-linux-x86-64.so.2\0"), "has a PT_INTERP (not crt-static)");
    let beside = std::path::Path::new(env!("CARGO_BIN_EXE_namespace_prog")).with_file_name("container_prog");
    assert_eq!(std::fs::read(&beside).unwrap(), bytes, "{}", beside.display());
}

/// The seed's Task 2a with our pieces: a from-binary image of container_prog (the program and
/// its closure, nothing else), run chrooted into the layer, lists just that closure's top level.
#[test]
fn runs_chrooted_in_its_from_binary_image() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping runs_chrooted_in_its_from_binary_image: needs root (chroot)");
        return;
    }
    let tmp = std::env::temp_dir().join(format!("cnd-lab-fb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let store = conductor_image::Store::open(&tmp).unwrap();
    let img = store
        .build_from_binary("container-prog", conductor_lab::container_prog(), &[], &mut conductor_image::progress::Silent)
        .unwrap();
    let layer = &img.layers()[0];
    let out = Command::new("chroot").arg(layer).arg(&img.config.cmd[0]).arg("1").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let end = lines.iter().rposition(|l| *l == SEP).unwrap();
    let listed: BTreeSet<&str> = lines[5..end].iter().copied().collect();
    let mut top: BTreeSet<String> =
        std::fs::read_dir(layer).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    top.extend([".".to_string(), "..".to_string()]);
    assert_eq!(listed, top.iter().map(String::as_str).collect(), "{text}");
    assert!(top.contains("lib64"), "the loader's link is in the image: {top:?}");
    std::fs::remove_dir_all(&tmp).unwrap();
}

//! A real Debian image built with debootstrap (minbase + procps, iproute2, python3), running
//! python3 in a container. The download is cached under /var/cache/conductor, so only the first
//! run on a machine needs Debian's archive (through apt's configured mirror).

mod common;

use common::engine::Engine;
use common::*;

#[test]
fn debootstrap_image_runs_python() {
    if skip_unless_root() || host::skip_unless_installed(&["debootstrap"]) {
        return;
    }
    let mut e = Engine::new("debian");
    let n = e.name("py");
    e.ok(&["build", "deb", "--variant", "minbase", "--include", "procps,iproute2,python3"]);
    let images = e.ok(&["images"]);
    assert!(images.lines().any(|l| l.starts_with("deb ")), "{images}");
    let out =
        e.ok(&["run", "deb", &n, "--", "python3", "-c", "import os, socket; print(6*7, os.getpid(), socket.gethostname())"]);
    assert_eq!(out.trim(), format!("42 1 {n}"));
    e.ok(&["stop", &n]);
    // procps and iproute2 see only the container; apt's directories are usable.
    let m = e.name("tools");
    e.ok(&["run", "-d", "deb", &m, "--", "sleep", "inf"]);
    let ps = e.ok(&["exec", &m, "--", "ps", "-e", "-o", "pid=,comm="]);
    let rows: Vec<Vec<&str>> = ps.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows, vec![vec!["1", "sleep"], vec![rows[1][0], "ps"]], "{ps}");
    let links = e.ok(&["exec", &m, "--", "ip", "-o", "link"]);
    assert_eq!(links.lines().count(), 1, "only lo: {links}");
    assert_eq!(e.ok(&["exec", &m, "--", "stat", "-c", "%a", "/tmp", "/var/tmp"]), "1777\n1777\n");
    e.ok(&["exec", &m, "--", "test", "-f", "/etc/resolv.conf"]);
    e.ok(&["stop", "-t", "1", &m]);
    e.ok(&["rmi", "deb"]);
    e.assert_clean();
}

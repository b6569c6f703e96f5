//! The container's /etc/hosts, /etc/hostname and /etc/resolv.conf: files in its directory,
//! bind-mounted over the image's.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use crate::error::{Context, Result};
use crate::record::Dir;

/// /etc/hosts: localhost, the hostname (at the container's address once it has a network, as
/// Docker does; 127.0.1.1 before), then each peer by name.
pub fn hosts(hostname: &str, own: Option<Ipv4Addr>, peers: &[(Ipv4Addr, String)]) -> String {
    let mut s = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    match own {
        Some(ip) => s += &format!("{ip}\t{hostname}\n"),
        None => s += &format!("127.0.1.1\t{hostname}\n"),
    }
    for (ip, name) in peers {
        s += &format!("{ip}\t{name}\n");
    }
    s
}

/// The host's resolvers, as a container can use them: a loopback resolver (systemd-resolved's
/// 127.0.0.53, a local dnsmasq) is unreachable from another network namespace, so such lines are
/// left out, and systemd-resolved's list of upstream servers is used when there is one.
pub fn resolv_conf() -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let host = read("/etc/resolv.conf");
    let upstream = if only_loopback(&host) { read("/run/systemd/resolve/resolv.conf") } else { String::new() };
    let text = if upstream.is_empty() { host } else { upstream };
    text.lines().filter(|l| !is_loopback_server(l)).map(|l| format!("{l}\n")).collect()
}

fn nameservers(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter_map(|l| l.trim().strip_prefix("nameserver")).map(str::trim)
}

fn only_loopback(text: &str) -> bool {
    let mut any = false;
    for n in nameservers(text) {
        any = true;
        if !n.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()) {
            return false;
        }
    }
    any
}

fn is_loopback_server(line: &str) -> bool {
    line.trim().strip_prefix("nameserver").is_some_and(|n| n.trim().parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()))
}

/// Write the three files into the container's directory; returns (path in container, file).
pub fn write(dir: &Dir, hostname: &str) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for (name, body) in
        [("hosts", hosts(hostname, None, &[])), ("hostname", format!("{hostname}\n")), ("resolv.conf", resolv_conf())]
    {
        let p = dir.path.join(name);
        std::fs::write(&p, body).ctx(|| format!("write {}", p.display()))?;
        out.push((format!("/etc/{name}"), p));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lists_self_and_peers() {
        let h = hosts("c1", Some(Ipv4Addr::new(192, 168, 1, 2)), &[(Ipv4Addr::new(192, 168, 2, 2), "c2".into())]);
        let lines: Vec<&str> = h.lines().collect();
        assert_eq!(lines[0], "127.0.0.1\tlocalhost");
        assert_eq!(lines[2], "192.168.1.2\tc1");
        assert_eq!(lines[3], "192.168.2.2\tc2");
        assert!(hosts("c1", None, &[]).contains("127.0.1.1\tc1\n"));
    }

    #[test]
    fn loopback_resolvers_are_dropped() {
        assert!(only_loopback("nameserver 127.0.0.53\noptions edns0\n"));
        assert!(!only_loopback("nameserver 127.0.0.53\nnameserver 10.0.0.1\n"));
        assert!(!only_loopback("search example\n"));
        assert!(is_loopback_server("nameserver ::1"));
        assert!(!is_loopback_server("nameserver 10.0.0.1"));
        assert!(!is_loopback_server("search local"));
    }
}

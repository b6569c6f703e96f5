//! `conductor addnetwork`, `peer`, `run --network/-p` and `network ls`, end to end, inside a
//! network sandbox (tests/common/lan.rs): a namespace standing in for the host (conductor runs
//! there), one for another host on its LAN, one for the internet behind that. The machine's own
//! interfaces and ruleset are never touched. Each test asserts that stop leaves no link, rule,
//! allocation or file behind.

mod common;

use std::net::Ipv4Addr;

use common::engine::Engine;
use common::lan::*;
use common::netcheck::{add_route, allocations, assert_network_clean};
use common::*;

macro_rules! need_sandbox {
    () => {
        if let Some(why) = cannot_run() {
            eprintln!("SKIPPED: {why}");
            return;
        }
    };
}

/// A busybox httpd on port 8080 whose /cgi-bin/who answers "`tag` REMOTE_ADDR": the address
/// the container saw the client come from.
fn httpd(tag: &str) -> String {
    format!(
        "mkdir -p /www/cgi-bin && printf '%s\\n' '#!/bin/sh' 'echo Content-Type: text/plain' echo \
         'A=${{REMOTE_ADDR#[::ffff:}}' 'echo {tag} ${{A%]}}' > /www/cgi-bin/who && chmod +x /www/cgi-bin/who \
         && exec httpd -f -p 8080 -h /www"
    )
}

fn start_httpd(e: &mut Engine, tag: &str) -> String {
    let n = e.name(tag);
    e.ok(&["run", "-d", "bb", &n, "--", "sh", "-c", &httpd(tag)]);
    n
}

/// The container's network as `inspect` shows it.
fn net_of(e: &Engine, n: &str) -> serde_json::Value {
    e.inspect(n)["Network"].clone()
}

fn ip_of(e: &Engine, n: &str) -> Ipv4Addr {
    net_of(e, n)["allocation"]["container_ip"].as_str().unwrap().parse().unwrap()
}

/// `wget` from inside container `n` (busybox's wget crashes on -T: bounded by timeout).
fn wget_from(e: &Engine, n: &str, url: &str) -> Result<String, String> {
    let o = e.run(&["exec", n, "--", "timeout", "4", "wget", "-qO-", url]);
    if o.status.success() {
        Ok(stdout(&o))
    } else {
        Err(format!("exit {:?}: {}", o.status.code(), stderr(&o)))
    }
}

fn who(ns: &conductor_network::Netns, ip: Ipv4Addr, port: u16) -> Option<String> {
    http_get(ns, ip, port, "/cgi-bin/who").ok().map(|s| s.trim().to_string())
}

/// conductor with the config file `cfg`, inside the sandbox's host namespace.
fn with_config(e: &Engine, lan: &Lan, cfg: &std::path::Path, args: &[&str]) -> std::process::Output {
    conductor_network::in_netns(&lan.host, || Ok(e.cmd().env("CONDUCTOR_CONFIG", cfg).args(args).output().unwrap())).unwrap()
}

#[test]
fn default_network_is_host_only() {
    need_sandbox!();
    let lan = Lan::new();
    let mut e = Engine::in_netns("net-default", lan.host.clone());
    let n = start_httpd(&mut e, "c");
    let out = e.ok(&["addnetwork", &n]);
    let net = net_of(&e, &n);
    let a = &net["allocation"];
    // The seed's first container: 192.168.1.1/24 on the host end, .2 inside.
    assert_eq!(a["host_ip"], "192.168.1.1", "{net}");
    assert_eq!(a["container_ip"], "192.168.1.2");
    assert_eq!(net["internet"], serde_json::Value::Null);
    let (outside, inside) = (a["ifnames"]["outside"].as_str().unwrap(), a["ifnames"]["inside"].as_str().unwrap());
    assert!(outside.len() <= 15 && inside.len() <= 15, "{outside} {inside}");
    assert!(out.contains(outside) && out.contains("192.168.1.2"), "{out}");
    assert_eq!(lan.host_links(), ["lan0", "lo", outside]);

    // Inside: lo and the container end up, the address, the default route via the host end.
    let ipa = e.ok(&["exec", &n, "--", "ip", "-4", "addr"]);
    assert!(ipa.contains("inet 127.0.0.1/8") && ipa.contains(&format!("inet 192.168.1.2/24 scope global {inside}")), "{ipa}");
    let routes = e.ok(&["exec", &n, "--", "ip", "route"]);
    assert!(routes.contains(&format!("default via 192.168.1.1 dev {inside}")), "{routes}");
    // /etc/hosts names the container at its address.
    assert!(e.ok(&["exec", &n, "--", "cat", "/etc/hosts"]).contains(&format!("192.168.1.2\t{}", n)));

    // Host <-> container, both ways, over TCP.
    assert_eq!(who(&lan.host, "192.168.1.2".parse().unwrap(), 8080).as_deref(), Some("c 192.168.1.1"));
    let _srv = Whoami::start(&lan.host, "192.168.1.1".parse().unwrap(), 7000, "host");
    assert_eq!(wget_from(&e, &n, "http://192.168.1.1:7000/").unwrap(), "host 192.168.1.2\n");
    // Nothing beyond the host: not the internet, not another host, and the other host (routing
    // the container's subnet to us) cannot reach in either.
    let _inet = Whoami::start(&lan.internet, INTERNET_IP, 9000, "internet");
    assert!(wget_from(&e, &n, &format!("http://{INTERNET_IP}:9000/")).is_err());
    add_route(&lan.other, "192.168.0.0/16", HOST_IP);
    assert_eq!(who(&lan.other, "192.168.1.2".parse().unwrap(), 8080), None);

    // `network ls` shows it.
    let ls = e.ok(&["network", "ls"]);
    assert!(ls.lines().any(|l| l.starts_with(&n) && l.contains("192.168.1.2/24") && l.contains(outside)), "{ls}");

    e.ok(&["stop", "-t", "1", &n]);
    assert_network_clean(&e, &lan);
}

#[test]
fn internet_and_exposed_ports() {
    need_sandbox!();
    let lan = Lan::new();
    let mut e = Engine::in_netns("net-expose", lan.host.clone());
    let c1 = start_httpd(&mut e, "c1");
    e.ok(&["addnetwork", &c1, "-i", "-e", "8080-3000"]);
    let net = net_of(&e, &c1);
    assert_eq!(net["internet"], "lan0", "the default route's interface: {net}");
    let ip1 = ip_of(&e, &c1);

    // -i: the internet is reached, and sees the host's address (masquerade).
    let _inet = Whoami::start(&lan.internet, INTERNET_IP, 9000, "internet");
    assert_eq!(wget_from(&e, &c1, &format!("http://{INTERNET_IP}:9000/")).unwrap(), format!("internet {HOST_IP}\n"));
    // -e 8080-3000: from another host at the host's address (its own address kept) ...
    assert_eq!(who(&lan.other, HOST_IP, 3000), Some(format!("c1 {OTHER_IP}")));
    // ... and from the host itself, at its address and at 127.0.0.1.
    assert!(who(&lan.host, HOST_IP, 3000).is_some_and(|s| s.starts_with("c1 ")));
    assert!(who(&lan.host, Ipv4Addr::LOCALHOST, 3000).is_some_and(|s| s.starts_with("c1 ")));
    // Only the exposed port is forwarded.
    assert_eq!(who(&lan.other, HOST_IP, 8080), None);

    // A second container may not take port 3000, nor a port a host program listens on; either
    // refusal leaves it without any network.
    let c2 = start_httpd(&mut e, "c2");
    let err = e.fails(&["addnetwork", &c2, "-p", "3000:8080"]);
    assert!(err.contains("host port 3000/tcp is already exposed") && err.contains(&ip1.to_string()), "{err}");
    let _busy = Whoami::start(&lan.host, Ipv4Addr::UNSPECIFIED, 3001, "host");
    let err = e.fails(&["addnetwork", &c2, "-e", "8080-3001"]);
    assert!(err.contains("host port 3001/tcp is already in use"), "{err}");
    let err = e.fails(&["addnetwork", &c2, "-e", "8080-3002", "-p", "3002:80"]);
    assert!(err.contains("given twice"), "{err}");
    assert_eq!(net_of(&e, &c2), serde_json::Value::Null);
    assert_eq!(allocations(&e).as_object().unwrap().len(), 1);
    assert_eq!(lan.host_links().len(), 3, "{:?}", lan.host_links());
    // UDP is another key: the same number is free there.
    e.ok(&["addnetwork", &c2, "-p", "3000:53/udp"]);
    let fw = lan.firewall().unwrap();
    assert_eq!(fw.ports.len(), 2, "{fw:?}");
    // Both have -i, neither can reach the other: not peered.
    let ip2 = ip_of(&e, &c2);
    assert!(wget_from(&e, &c1, &format!("http://{ip2}:8080/cgi-bin/who")).is_err());

    e.ok(&["stop", "-t", "1", &c1]);
    // The port closed with it.
    assert_eq!(who(&lan.other, HOST_IP, 3000), None);
    e.ok(&["stop", "-t", "1", &c2]);
    assert_network_clean(&e, &lan);
}

#[test]
fn peers_reach_each_other_by_name() {
    need_sandbox!();
    let lan = Lan::new();
    let mut e = Engine::in_netns("net-peer", lan.host.clone());
    let (c1, c2, c3) = (start_httpd(&mut e, "p1"), start_httpd(&mut e, "p2"), start_httpd(&mut e, "p3"));
    for c in [&c1, &c2, &c3] {
        e.ok(&["addnetwork", c, "-i"]);
    }
    let (ip1, ip2) = (ip_of(&e, &c1), ip_of(&e, &c2));
    assert_ne!(ip1, ip2);
    let url = |host: &str| format!("http://{host}:8080/cgi-bin/who");
    assert!(wget_from(&e, &c1, &url(&ip2.to_string())).is_err(), "isolated before peer");

    // Bad peers: itself, an unknown container, one without a network.
    assert!(e.fails(&["peer", &c1, &c1]).contains("itself"));
    assert!(e.fails(&["peer", &c1, "nosuch"]).contains("no such container"));
    let bare = e.name("bare");
    e.ok(&["run", "-d", "bb", &bare, "--", "sleep", "inf"]);
    assert!(e.fails(&["peer", &c1, &bare]).contains("has no network"));

    e.ok(&["peer", &c1, &c2]);
    e.ok(&["peer", &c2, &c1]); // again: no change, no error
    assert_eq!(wget_from(&e, &c1, &url(&ip2.to_string())).unwrap(), format!("p2 {ip1}\n"));
    assert_eq!(wget_from(&e, &c2, &url(&ip1.to_string())).unwrap(), format!("p1 {ip2}\n"));
    // By name, both ways.
    assert_eq!(wget_from(&e, &c1, &url(&c2)).unwrap(), format!("p2 {ip1}\n"));
    assert_eq!(wget_from(&e, &c2, &url(&c1)).unwrap(), format!("p1 {ip2}\n"));
    // c3 is peered with nobody.
    let ip3 = ip_of(&e, &c3);
    assert!(wget_from(&e, &c3, &url(&ip1.to_string())).is_err());
    assert!(wget_from(&e, &c1, &url(&ip3.to_string())).is_err());
    assert_eq!(lan.firewall().unwrap().peers.len(), 1);
    assert_eq!(net_of(&e, &c1)["peers"], serde_json::json!([c2]));

    // Stopping c2 removes it from c1's hosts and peers.
    e.ok(&["stop", "-t", "1", &c2]);
    assert!(!e.ok(&["exec", &c1, "--", "cat", "/etc/hosts"]).contains(&c2));
    assert_eq!(net_of(&e, &c1)["peers"], serde_json::json!([]));
    assert!(lan.firewall().unwrap().peers.is_empty());
    for c in [&c1, &c3, &bare] {
        e.ok(&["stop", "-t", "1", c]);
    }
    assert_network_clean(&e, &lan);
}

#[test]
fn run_with_network_options() {
    need_sandbox!();
    let lan = Lan::new();
    let mut e = Engine::in_netns("net-run", lan.host.clone());
    // The program starts with its network in place.
    let n = e.name("fg");
    let out = e.ok(&["run", "--network", "bb", &n, "--", "ip", "-4", "addr"]);
    assert!(out.contains("inet 192.168.1.2/24"), "{out}");
    e.ok(&["stop", &n]);
    // Detached, with -i and a published port.
    let w = e.name("web");
    e.ok(&["run", "-d", "--internet", "-p", "3000:8080", "bb", &w, "--", "sh", "-c", &httpd("web")]);
    assert_eq!(eventually(5, || who(&lan.other, HOST_IP, 3000)), Some(format!("web {OTHER_IP}")));
    assert_eq!(net_of(&e, &w)["internet"], "lan0");
    // A run whose port is taken creates nothing.
    let x = e.name("x");
    let err = e.fails(&["run", "-d", "-p", "3000:80", "bb", &x, "--", "sleep", "inf"]);
    assert!(err.contains("already exposed"), "{err}");
    assert!(e.fails(&["inspect", &x]).contains("no such container"));
    let err = e.fails(&["run", "-d", "--expose", "80-0", "bb", &x, "--", "sleep", "inf"]);
    assert!(err.contains("port 0"), "{err}");
    e.ok(&["stop", "-t", "1", &w]);
    assert_network_clean(&e, &lan);
}

#[test]
fn bad_input_and_crash_leftovers() {
    need_sandbox!();
    let lan = Lan::new();
    let mut e = Engine::in_netns("net-bad", lan.host.clone());
    assert!(e.fails(&["addnetwork", "nosuch"]).contains("no such container"));
    let n = e.name("b");
    e.ok(&["run", "-d", "bb", &n, "--", "sleep", "inf"]);
    for (spec, why) in [
        (vec!["-e", "0-3000"], "port 0"),
        (vec!["-e", "80-70000"], "out of range"),
        (vec!["-e", "http-3000"], "not a number"),
        (vec!["-e", "3000"], "expected CPORT-HPORT"),
        (vec!["-p", "3000:80/sctp"], "unknown protocol"),
    ] {
        let mut args = vec!["addnetwork", n.as_str()];
        args.extend(spec);
        let err = e.fails(&args);
        assert!(err.contains(why) && err.lines().count() == 1, "{args:?}: {err}");
    }
    assert_eq!(net_of(&e, &n), serde_json::Value::Null);
    e.ok(&["addnetwork", &n]);
    assert!(e.fails(&["addnetwork", &n]).contains("already has a network"));
    // An exited container cannot be networked.
    let gone = e.name("gone");
    e.ok(&["run", "bb", &gone, "--", "true"]);
    assert!(e.fails(&["addnetwork", &gone]).contains("not running"));

    // A crash between the allocation and the record (simulated: the record is lost) leaves an
    // allocation and a link; the next network command frees both, and no address is given twice.
    let ip = ip_of(&e, &n);
    std::fs::remove_file(e.dir.join(format!("data/containers/{n}/network.json"))).unwrap();
    let m = e.name("m");
    e.ok(&["run", "-d", "bb", &m, "--", "sleep", "inf"]);
    e.ok(&["addnetwork", &m]);
    assert_eq!(allocations(&e).as_object().unwrap().keys().collect::<Vec<_>>(), [&m]);
    assert_eq!(lan.host_links().len(), 3, "the lost container's link is gone: {:?}", lan.host_links());
    assert_eq!(ip_of(&e, &m), ip, "the freed address is reused, once");

    // A broken config file is a one-line error naming the file and line.
    let cfg = e.dir.join("bad.toml");
    std::fs::write(&cfg, "[network]\npool = \"10.0.0.0/8\"\nsubnet_prefx = 24\n").unwrap();
    let o = with_config(&e, &lan, &cfg, &["addnetwork", &m]);
    let err = stderr(&o);
    assert!(!o.status.success() && err.contains("bad.toml") && err.contains("line 3") && err.contains("subnet_prefx"), "{err}");

    for c in [&n, &gone, &m] {
        e.ok(&["stop", "-t", "1", c]);
    }
    assert_network_clean(&e, &lan);
}

#[test]
fn configured_default_interface_is_used() {
    need_sandbox!();
    let lan = Lan::new();
    let mut e = Engine::in_netns("net-cfg", lan.host.clone());
    let cfg = e.dir.join("conductor.toml");
    std::fs::write(&cfg, "[network]\npool = \"10.200.0.0/16\"\nsubnet_prefix = 28\ndefault_interface = \"uplink9\"\n").unwrap();
    let n = e.name("cfg");
    e.ok(&["run", "-d", "bb", &n, "--", "sleep", "inf"]);
    let o = with_config(&e, &lan, &cfg, &["addnetwork", &n, "-i"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let net = net_of(&e, &n);
    assert_eq!(net["internet"], "uplink9");
    assert_eq!(net["allocation"]["subnet"], "10.200.0.16/28", "the pool's first subnet is skipped");
    let fw = lan.firewall().unwrap();
    assert_eq!(fw.internet[0].out_ifc, "uplink9");
    let o = with_config(&e, &lan, &cfg, &["stop", "-t", "1", &n]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_network_clean(&e, &lan);
}

/// A restart whose re-creation fails after the runtime created the new init (here: the network
/// record cannot be read when the veth is made again) leaves no created container behind (its
/// init, runtime state and cgroup), and the state says why, with the last exit code.
#[test]
fn failed_restart_leaves_nothing_half_made() {
    need_sandbox!();
    let lan = Lan::new();
    let mut e = Engine::in_netns("net-restart-fail", lan.host.clone());
    let n = e.name("rf");
    e.ok(&["run", "-d", "--network", "--restart", "on-failure:3", "bb", &n, "--", "sh", "-c", "sleep 1; exit 3"]);
    let dir = e.dir.join("data/containers").join(&n);
    let record = std::fs::read(dir.join("network.json")).unwrap();
    std::fs::write(dir.join("network.json"), b"not json").unwrap();
    let state = || -> serde_json::Value { serde_json::from_slice(&std::fs::read(dir.join("state.json")).unwrap()).unwrap() };
    let st = eventually(10, || {
        let st = state();
        st["error"].as_str().is_some_and(|e| e.starts_with("restart:")).then_some(st)
    })
    .expect("the failed restart is recorded");
    assert_eq!((&st["status"], &st["exit_code"]), (&serde_json::json!("exited"), &serde_json::json!(3)), "{st}");
    // The monitor is gone, and with it everything the failed start made.
    assert!(eventually(5, || (!common::host::alive(st["monitor_pid"].as_i64().unwrap() as i32)).then_some(())).is_some());
    assert!(!e.dir.join("run/runtime").join(&n).exists(), "runtime state of the failed start left");
    assert!(cgroup_dirs(&n).is_empty(), "cgroup of the failed start left: {:?}", cgroup_dirs(&n));
    std::fs::write(dir.join("network.json"), record).unwrap();
    e.ok(&["stop", "-t", "0", &n]);
    assert_network_clean(&e, &lan);
    e.assert_clean();
}

//! Root tests of the firewall module. Nothing here touches the machine's own ruleset or links:
//! every test makes a fresh network namespace that stands in for the host and does all of its
//! nft and netlink work from threads inside it (`in_netns`; nft runs as a child of such a thread
//! and so inside the namespace). Containers and a LAN neighbour are further namespaces. A
//! namespace vanishes with its last handle, with its links and nftables tables, so cleanup
//! happens on failure too; each test also checks that its table never appeared in the test
//! process's own namespace.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use conductor_network::firewall::{Firewall, FirewallError, FirewallState, InternetAccess, PortMapping, Proto};
use conductor_network::{addr, attach, in_netns, link, Allocation, IfNames, Ipv4Net, Netlink, Netns};

/// Why this test cannot run here, if it cannot.
fn cannot_run() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root (network namespaces, nftables)".into());
    }
    if let Err(e) = Netns::create() {
        return Some(format!("cannot create a network namespace: {e}"));
    }
    let nft = Firewall::new("x").nft_program().to_path_buf();
    if std::process::Command::new(&nft).arg("--version").output().is_err() {
        return Some(format!("{} not found (Debian package nftables)", nft.display()));
    }
    None
}

macro_rules! need_root {
    () => {
        if let Some(why) = cannot_run() {
            eprintln!("SKIPPED: {why}");
            return;
        }
    };
}

/// Run `f` inside `ns`; its errors, of any kind, become panics with context.
fn inside<T: Send>(ns: &Netns, f: impl FnOnce() -> T + Send) -> T {
    in_netns(ns, || Ok(f())).unwrap()
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// The tables' names in these tests: not "conductor", so that the check that they never show up
/// in the test process's own namespace means something on a machine that runs conductor; one per
/// test, so that each test picks its own `--explain` lines out of the shared log.
const TABLE: &str = "conductor_test_table";
const TABLE2: &str = "conductor_test_packets";

/// The table must not exist in the namespace the tests were started in.
fn assert_untouched_here(table: &str) {
    assert!(!Firewall::new(table).exists().unwrap(), "table inet {table} appeared in the test process's own namespace");
}

fn nft_text(args: &[&str]) -> String {
    let fw = Firewall::new(TABLE);
    let out = std::process::Command::new(fw.nft_program()).args(args).output().unwrap();
    assert!(out.status.success(), "nft {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Collects what `tracing` writes.
#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

/// The log of every test in this binary: a global subscriber, installed once. (A per-thread one
/// would race with the other test's threads over tracing's per-callsite interest cache.)
fn explain_log() -> &'static Buf {
    static LOG: OnceLock<Buf> = OnceLock::new();
    LOG.get_or_init(|| {
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        buf
    })
}

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buf {
    /// The `command=` of every `conductor::explain` nft event so far.
    fn nft_commands(&self) -> Vec<String> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .filter(|l| l.contains("conductor::explain") && l.contains("step=\"nft\""))
            .filter_map(|l| l.split_once("command=").map(|(_, c)| c.to_string()))
            .collect()
    }
}

#[test]
fn table_elements_listing_and_destroy() {
    need_root!();
    let host = Netns::create().unwrap();
    let (a, b, c) = (ip("10.0.1.2"), ip("10.0.2.2"), ip("10.0.3.2"));
    let buf = explain_log();
    inside(&host, || {
        let fw = Firewall::new(TABLE);

        // Nothing yet; element changes say the table is missing.
        assert_eq!(fw.list().unwrap(), None);
        assert!(!fw.exists().unwrap());
        assert!(matches!(fw.add_container(a), Err(FirewallError::NoTable(_))));
        assert!(matches!(fw.expose(a, Proto::Tcp, 80, 8000), Err(FirewallError::NoTable(_))));
        fw.remove_container(a).unwrap();
        fw.destroy().unwrap();

        fw.ensure().unwrap();
        assert_eq!(std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap().trim(), "1");
        assert_eq!(fw.list().unwrap(), Some(FirewallState::default()));

        fw.add_container(a).unwrap();
        fw.add_container(a).unwrap(); // again: no error, no duplicate
        fw.add_container(b).unwrap();
        fw.add_container(c).unwrap();
        fw.allow_internet(a, "eth0").unwrap();
        fw.allow_internet(c, "eth0").unwrap();
        fw.expose(a, Proto::Tcp, 8080, 3000).unwrap();
        fw.expose(a, Proto::Tcp, 8080, 3000).unwrap(); // the same again is fine
        let e = fw.expose(b, Proto::Tcp, 80, 3000).unwrap_err();
        assert_eq!(e.to_string(), "host port 3000/tcp is already exposed, forwarding to 10.0.1.2:8080");
        fw.expose(b, Proto::Udp, 53, 3000).unwrap(); // another protocol, another key
        fw.expose(c, Proto::Tcp, 22, 2222).unwrap();
        fw.peer(a, b).unwrap();
        fw.peer(b, c).unwrap();
        assert!(fw.peer(a, a).is_err());
        assert!(fw.allow_internet(a, "no/such").is_err());

        // ensure() again keeps every element and does not duplicate a rule.
        let rules_before = nft_text(&["-j", "list", "table", "inet", TABLE]).matches("\"rule\"").count();
        fw.ensure().unwrap();
        let listing = nft_text(&["-j", "list", "table", "inet", TABLE]);
        assert_eq!(listing.matches("\"rule\"").count(), rules_before);
        assert_eq!(rules_before, 13);

        let want = FirewallState {
            containers: vec![a, b, c],
            internet: vec![InternetAccess { ip: a, out_ifc: "eth0".into() }, InternetAccess { ip: c, out_ifc: "eth0".into() }],
            peers: vec![(a, b), (b, c)],
            ports: vec![
                PortMapping { proto: Proto::Tcp, host_port: 2222, ip: c, container_port: 22 },
                PortMapping { proto: Proto::Tcp, host_port: 3000, ip: a, container_port: 8080 },
                PortMapping { proto: Proto::Udp, host_port: 3000, ip: b, container_port: 53 },
            ],
        };
        assert_eq!(fw.list().unwrap().unwrap(), want);

        // The raw listing, read without our parser: the elements are where they belong.
        let v: serde_json::Value = serde_json::from_str(&listing).unwrap();
        let objs = v["nftables"].as_array().unwrap();
        let elems = |kind: &str, name: &str| -> serde_json::Value {
            objs.iter().find_map(|o| o.get(kind).filter(|s| s["name"] == name)).unwrap()["elem"].clone()
        };
        assert_eq!(elems("set", "containers"), serde_json::json!(["10.0.1.2", "10.0.2.2", "10.0.3.2"]));
        assert_eq!(elems("set", "peers").as_array().unwrap().len(), 4, "both directions of both pairs");
        assert!(elems("map", "ports_addr").to_string().contains(r#"[{"concat":["tcp",3000]},"10.0.1.2"]"#));
        assert!(elems("map", "ports_port").to_string().contains(r#"[{"concat":["tcp",3000]},8080]"#));

        // Every rule that --explain reported is in nft's own listing, word for word.
        let text = nft_text(&["list", "table", "inet", TABLE]);
        let listed: Vec<&str> = text.lines().map(str::trim).collect();
        let prefix = format!("nft add rule inet {TABLE} ");
        let explained: Vec<String> =
            buf.nft_commands().iter().filter_map(|c| c.strip_prefix(&prefix).map(str::to_string)).collect();
        assert_eq!(explained.len(), 2 * 13, "two ensure() calls");
        for r in &explained {
            let (_chain, rule) = r.split_once(' ').unwrap();
            assert!(listed.contains(&rule), "explained rule {rule:?} is not in the listing:\n{text}");
        }
        let cmds = buf.nft_commands();
        assert!(cmds.contains(&format!("nft create element inet {TABLE} ports_addr {{ tcp . 3000 : 10.0.1.2 }}")), "{cmds:#?}");
        assert!(cmds.contains(&format!("nft add element inet {TABLE} peers {{ 10.0.1.2 . 10.0.2.2, 10.0.2.2 . 10.0.1.2 }}")));

        // Removing a container takes every element that names it, and nothing else.
        fw.remove_container(b).unwrap();
        let after = fw.list().unwrap().unwrap();
        assert_eq!(after.containers, vec![a, c]);
        assert_eq!(after.peers, vec![]);
        assert_eq!(after.internet, want.internet);
        assert_eq!(after.ports, vec![want.ports[0], want.ports[1]]);
        assert!(!nft_text(&["list", "table", "inet", TABLE]).contains("10.0.2.2"), "b's hairpin element is gone too");
        fw.remove_container(b).unwrap(); // nothing left to remove: fine

        fw.unexpose(Proto::Tcp, 3000).unwrap();
        fw.unexpose(Proto::Tcp, 3000).unwrap();
        fw.deny_internet(a).unwrap();
        fw.unpeer(a, c).unwrap();
        let after = fw.list().unwrap().unwrap();
        assert_eq!(after.ports, vec![want.ports[0]]);
        assert_eq!(after.internet, vec![InternetAccess { ip: c, out_ifc: "eth0".into() }]);

        fw.destroy().unwrap();
        assert!(!fw.exists().unwrap());
        assert_eq!(fw.list().unwrap(), None);
        fw.destroy().unwrap();
        assert_eq!(nft_text(&["list", "ruleset"]).trim(), "", "nothing else was ever created");
    });
    assert_untouched_here(TABLE);
}

/// A TCP server inside a namespace: answers each connection with "NAME PEER_IP\n" and closes.
struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(ns: &Netns, port: u16, name: &'static str) -> Server {
        let listener = inside(ns, || TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).unwrap());
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut s, peer)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = writeln!(s, "{name} {}", peer.ip());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Server { stop, thread: Some(thread) }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Connect from inside `ns` to `to`:`port` and read the server's line.
fn fetch(ns: &Netns, to: Ipv4Addr, port: u16, timeout: Duration) -> std::io::Result<String> {
    inside(ns, || {
        let mut s = TcpStream::connect_timeout(&SocketAddr::from((to, port)), timeout)?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out.trim().to_string())
    })
}

#[track_caller]
fn reaches(ns: &Netns, to: Ipv4Addr, port: u16) -> String {
    match fetch(ns, to, port, Duration::from_secs(3)) {
        Ok(line) => line,
        Err(e) => panic!("connect to {to}:{port}: {e}"),
    }
}

/// The connection attempt went unanswered: the SYN was dropped (not refused, not unreachable).
fn dropped(ns: &Netns, to: Ipv4Addr, port: u16) -> bool {
    let t = Instant::now();
    match fetch(ns, to, port, Duration::from_millis(400)) {
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => true,
        other => {
            eprintln!("connect to {to}:{port} after {:?}: {other:?}", t.elapsed());
            false
        }
    }
}

fn allocation(name: &str, third: u8) -> Allocation {
    Allocation {
        name: name.into(),
        subnet: Ipv4Net::new(Ipv4Addr::new(10, 0, third, 0), 24).unwrap(),
        host_ip: Ipv4Addr::new(10, 0, third, 1),
        container_ip: Ipv4Addr::new(10, 0, third, 2),
        ifnames: IfNames::for_container(name),
    }
}

/// host (a fresh netns) with two containers on veths (the seed's picture, made by `attach`) and
/// a LAN neighbour at 10.99.0.2 behind `lan0` (10.99.0.1), which stands in for "the internet".
#[test]
fn packets_dnat_isolation_peering_and_masquerade() {
    need_root!();
    let (host, c1, c2, lan) =
        (Netns::create().unwrap(), Netns::create().unwrap(), Netns::create().unwrap(), Netns::create().unwrap());
    let (a1, a2) = (allocation("c1", 1), allocation("c2", 2));
    let (ip1, ip2) = (a1.container_ip, a2.container_ip);
    let (host_lan, neighbour) = (ip("10.99.0.1"), ip("10.99.0.2"));
    let fw = Firewall::new(TABLE2);
    explain_log();

    in_netns(&host, || {
        attach(&c1, &a1)?;
        attach(&c2, &a2)?;
        let mut nl = Netlink::open()?;
        link::create_veth(&mut nl, &link::VethSpec { peer_netns: Some(&lan), ..link::VethSpec::new("lan0", "eth0") })?;
        addr::add(&mut nl, "lan0", Ipv4Net::new(host_lan, 24)?)?;
        link::set_up(&mut nl, "lan0")?;
        link::set_up(&mut nl, "lo")?;
        Ok(())
    })
    .unwrap();
    in_netns(&lan, || {
        let mut nl = Netlink::open()?;
        addr::add(&mut nl, "eth0", Ipv4Net::new(neighbour, 24)?)?;
        link::set_up(&mut nl, "eth0")?;
        link::set_up(&mut nl, "lo")?;
        Ok(())
    })
    .unwrap();
    inside(&host, || {
        fw.ensure().unwrap();
        Firewall::enable_route_localnet(&a1.ifnames.outside).unwrap();
        fw.add_container(ip1).unwrap();
        fw.add_container(ip2).unwrap();
        fw.expose(ip1, Proto::Tcp, 8080, 3000).unwrap();
    });
    let _s1 = Server::start(&c1, 8080, "c1");
    let _s2 = Server::start(&c2, 8080, "c2");
    let _sl = Server::start(&lan, 9000, "lan");

    // -e 8080-3000: host port 3000 reaches c1:8080 from another host (its address kept) ...
    assert_eq!(reaches(&lan, host_lan, 3000), "c1 10.99.0.2");
    // ... from the host itself, at its own address and at 127.0.0.1 (masqueraded to c1's gateway) ...
    assert_eq!(reaches(&host, host_lan, 3000), "c1 10.99.0.1");
    assert_eq!(reaches(&host, ip("127.0.0.1"), 3000), "c1 10.0.1.1");
    // ... from another container, and from c1 itself (hairpin: masqueraded, or c1 would answer itself).
    assert_eq!(reaches(&c2, host_lan, 3000), "c1 10.0.2.2");
    assert_eq!(reaches(&c1, host_lan, 3000), "c1 10.0.1.1");
    // The host reaches containers directly; only exposed ports are forwarded.
    assert_eq!(reaches(&host, ip1, 8080), "c1 10.0.1.1");

    // Isolation: containers do not reach each other, nor anything beyond the host without -i.
    assert!(dropped(&c2, ip1, 8080));
    assert!(dropped(&c1, neighbour, 9000));
    // The LAN cannot reach a container directly either.
    inside(&lan, || {
        let mut nl = Netlink::open().unwrap();
        conductor_network::route::add(&mut nl, Ipv4Net::new(ip("10.0.0.0"), 16).unwrap(), Some(host_lan), None).unwrap();
    });
    assert!(dropped(&lan, ip1, 8080));

    // -i: out through lan0, masqueraded behind 10.99.0.1. Still isolated from each other.
    inside(&host, || {
        fw.allow_internet(ip1, "lan0").unwrap();
        fw.allow_internet(ip2, "lan0").unwrap();
    });
    assert_eq!(reaches(&c1, neighbour, 9000), "lan 10.99.0.1");
    assert_eq!(reaches(&c2, neighbour, 9000), "lan 10.99.0.1");
    assert!(dropped(&c2, ip1, 8080), "both have -i, they are still not peers");

    // peer: both directions open, with the real addresses.
    inside(&host, || fw.peer(ip1, ip2).unwrap());
    assert_eq!(reaches(&c2, ip1, 8080), "c1 10.0.2.2");
    assert_eq!(reaches(&c1, ip2, 8080), "c2 10.0.1.2");
    inside(&host, || fw.unpeer(ip1, ip2).unwrap());
    assert!(dropped(&c2, ip1, 8080));

    // Removing c1 closes its port: nothing listens on the host's 3000, so it is refused.
    inside(&host, || fw.remove_container(ip1).unwrap());
    let e = fetch(&lan, host_lan, 3000, Duration::from_secs(2)).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
    inside(&host, || fw.destroy().unwrap());
    assert_untouched_here(TABLE2);
}

/// `connect`: the table, the container, -i and its ports in one transaction; a taken host port
/// fails all of it, leaving nothing of the second container behind.
#[test]
fn connect_is_all_or_nothing() {
    need_root!();
    let host = Netns::create().unwrap();
    let (a, b) = (ip("10.0.1.2"), ip("10.0.2.2"));
    let spec = |c, h| conductor_network::firewall::PortSpec { proto: Proto::Tcp, container_port: c, host_port: h };
    // Every test installs the shared log first (see explain_log): tracing caches each call
    // site's interest, and an event fired before the global subscriber exists would hide the
    // other tests' steps.
    explain_log();
    inside(&host, || {
        let fw = Firewall::new("conductor_test_connect");
        fw.connect(a, Some("eth0"), &[spec(8080, 3000)]).unwrap();
        let st = fw.list().unwrap().unwrap();
        assert_eq!(st.containers, [a]);
        assert_eq!(st.internet, [InternetAccess { ip: a, out_ifc: "eth0".into() }]);
        assert_eq!(st.ports, [PortMapping { proto: Proto::Tcp, host_port: 3000, ip: a, container_port: 8080 }]);
        assert_eq!(std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap().trim(), "1");

        let e = fw.connect(b, None, &[spec(81, 3001), spec(80, 3000)]).unwrap_err();
        assert!(matches!(e, FirewallError::PortInUse { host_port: 3000, ip, .. } if ip == a), "{e}");
        assert_eq!(fw.list().unwrap().unwrap(), st, "nothing of {b} was added");
        assert!(fw.connect(b, Some("a/b"), &[]).is_err());
        assert!(fw.connect(b, None, &[spec(0, 1)]).unwrap_err().to_string().contains("port 0"));
        fw.destroy().unwrap();
    });
    assert_untouched_here("conductor_test_connect");
}

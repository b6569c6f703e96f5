//! A network sandbox for engine tests: three fresh network namespaces, so that the machine's
//! interfaces and ruleset are never touched.
//!
//! ```text
//!  host (conductor runs here)         other host (the LAN)              internet
//!  lan0 10.99.0.1/24  <-- veth -->  eth0 10.99.0.2/24
//!  default via 10.99.0.2             wan0 203.0.113.1/24 <-- veth -->  eth0 203.0.113.2/24
//!                                    forwards, no NAT                  default via 203.0.113.1
//! ```
//!
//! Namespaces vanish with their last handle (and the processes in them), taking their links and
//! nftables tables along, so a failing test cleans up too.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conductor_network::firewall::{Firewall, FirewallState};
use conductor_network::{addr, in_netns, link, route, Ipv4Net, Netlink, Netns};

pub const HOST_IP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
pub const OTHER_IP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);
pub const INTERNET_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);

pub struct Lan {
    pub host: Arc<Netns>,
    pub other: Netns,
    pub internet: Netns,
}

/// Why networking tests cannot run here, if they cannot.
pub fn cannot_run() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root (network namespaces, nftables)".into());
    }
    if let Err(e) = Netns::create() {
        return Some(format!("cannot create a network namespace: {e}"));
    }
    if super::host::which("nft").is_none() && !std::path::Path::new("/usr/sbin/nft").exists() {
        return Some("nft not found (Debian package nftables)".into());
    }
    None
}

fn net(ip: Ipv4Addr, prefix: u8) -> Ipv4Net {
    Ipv4Net::new(ip, prefix).unwrap()
}

fn setup(ns: &Netns, f: impl FnOnce(&mut Netlink) -> conductor_network::Result<()> + Send) {
    in_netns(ns, || {
        let mut nl = Netlink::open()?;
        link::set_up(&mut nl, "lo")?;
        f(&mut nl)
    })
    .unwrap();
}

impl Lan {
    pub fn new() -> Lan {
        let (host, other, internet) = (Netns::create().unwrap(), Netns::create().unwrap(), Netns::create().unwrap());
        setup(&host, |nl| {
            link::create_veth(nl, &link::VethSpec { peer_netns: Some(&other), ..link::VethSpec::new("lan0", "eth0") })?;
            addr::add(nl, "lan0", net(HOST_IP, 24))?;
            link::set_up(nl, "lan0")?;
            route::add_default(nl, OTHER_IP, Some("lan0"))
        });
        setup(&other, |nl| {
            link::create_veth(nl, &link::VethSpec { peer_netns: Some(&internet), ..link::VethSpec::new("wan0", "eth0") })?;
            addr::add(nl, "eth0", net(OTHER_IP, 24))?;
            link::set_up(nl, "eth0")?;
            addr::add(nl, "wan0", net(Ipv4Addr::new(203, 0, 113, 1), 24))?;
            link::set_up(nl, "wan0")
        });
        // /proc/sys/net belongs to the namespace of the thread that opens it.
        in_netns(&other, || {
            std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").unwrap();
            Ok(())
        })
        .unwrap();
        setup(&internet, |nl| {
            addr::add(nl, "eth0", net(INTERNET_IP, 24))?;
            link::set_up(nl, "eth0")?;
            route::add_default(nl, Ipv4Addr::new(203, 0, 113, 1), Some("eth0"))
        });
        Lan { host: Arc::new(host), other, internet }
    }

    /// The links of the host namespace, sorted.
    pub fn host_links(&self) -> Vec<String> {
        let mut v: Vec<String> = in_netns(&self.host, || {
            let mut nl = Netlink::open()?;
            Ok(link::list(&mut nl)?.into_iter().map(|l| l.name).collect())
        })
        .unwrap();
        v.sort();
        v
    }

    /// conductor's table in the host namespace (None when there is none).
    pub fn firewall(&self) -> Option<FirewallState> {
        in_netns(&self.host, || Ok(Firewall::new("conductor").list().unwrap())).unwrap()
    }

    /// Whether the host's table holds nothing of any container.
    pub fn firewall_empty(&self) -> bool {
        self.firewall()
            .is_none_or(|s| s.containers.is_empty() && s.internet.is_empty() && s.peers.is_empty() && s.ports.is_empty())
    }
}

/// `GET path` over HTTP/1.0 to `ip:port` from inside `ns`: the body, or the error.
pub fn http_get(ns: &Netns, ip: Ipv4Addr, port: u16, path: &str) -> std::io::Result<String> {
    let path = path.to_string();
    in_netns(ns, move || {
        let addr = SocketAddr::from((ip, port));
        let r = (|| {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
            s.set_read_timeout(Some(Duration::from_secs(3)))?;
            write!(s, "GET {path} HTTP/1.0\r\nHost: {ip}\r\n\r\n")?;
            let mut out = String::new();
            s.read_to_string(&mut out)?;
            // busybox httpd ends a CGI's headers with a bare "\n\n".
            let body = out.split_once("\r\n\r\n").or_else(|| out.split_once("\n\n")).map(|(_, b)| b.to_string());
            Ok(body.unwrap_or(out))
        })();
        Ok(r)
    })
    .unwrap()
}

/// A TCP server on `port` inside `ns` that answers each connection with "`tag` PEER-ADDRESS\n"
/// (an HTTP/1.0 response), so clients learn which source address it saw. Stops on drop.
pub struct Whoami {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Whoami {
    pub fn start(ns: &Netns, ip: Ipv4Addr, port: u16, tag: &'static str) -> Whoami {
        let l = in_netns(ns, || Ok(TcpListener::bind((ip, port)).unwrap())).unwrap();
        l.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut s, peer)) => {
                        s.set_nonblocking(false).unwrap();
                        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                        let mut buf = [0u8; 1024];
                        let _ = s.read(&mut buf);
                        let body = format!("{tag} {}\n", peer.ip());
                        let _ = write!(s, "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Whoami { stop, thread: Some(thread) }
    }
}

impl Drop for Whoami {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Retry `f` for up to `secs` until it returns Some.
pub fn eventually<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

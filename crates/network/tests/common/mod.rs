//! Fixtures for the root tests of conductor-network. Nothing here touches the machine's own
//! network namespace: each test makes a fresh namespace that stands in for "the host" and does
//! every netlink call from inside it (`in_netns`), plus namespaces for the containers. A
//! namespace vanishes with its last handle, taking its links along, so dropping the fixtures
//! cleans up even when a test fails half-way.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use conductor_network::error::Context;
use conductor_network::{in_netns, link, Netlink, Netns, Result};

/// None (after saying why) when this process cannot make network namespaces.
pub fn need_root(test: &str) -> Option<()> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED {test}: needs root (network namespaces, netlink changes)");
        return None;
    }
    if let Err(e) = Netns::create() {
        eprintln!("SKIPPED {test}: cannot create a network namespace here: {e}");
        return None;
    }
    Some(())
}

/// A temporary state directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("conductor-net-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A process this test started (a `busybox sleep` inside some namespace); killed and reaped on
/// drop. Only this child is ever signalled.
pub struct Sleeper(pub Child);

impl Sleeper {
    /// A `busybox sleep` started from inside `ns`, so it lives there.
    pub fn start_in(ns: &Netns) -> Sleeper {
        let child = in_netns(ns, || {
            Command::new("/bin/busybox").args(["sleep", "60"]).stdin(Stdio::null()).spawn().ctx(|| "spawn busybox sleep".into())
        })
        .unwrap();
        Sleeper(child)
    }

    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Run netlink work inside `ns` with a fresh socket there.
pub fn nl_in<T: Send>(ns: &Netns, f: impl FnOnce(&mut Netlink) -> Result<T> + Send) -> T {
    in_netns(ns, || {
        let mut nl = Netlink::open()?;
        f(&mut nl)
    })
    .unwrap()
}

/// The names of the links in `ns`, sorted.
pub fn link_names(ns: &Netns) -> Vec<String> {
    let mut v: Vec<String> = nl_in(ns, |nl| Ok(link::list(nl)?.into_iter().map(|l| l.name).collect()));
    v.sort();
    v
}

/// A TCP round trip: a listener on `ip` inside `server_ns`, a client connecting from
/// `client_ns`; the client sends "ping", the server answers "pong". Bounded by a few seconds.
pub fn tcp_round_trip(server_ns: &Netns, ip: Ipv4Addr, client_ns: &Netns) -> std::result::Result<(), String> {
    let listener = in_netns(server_ns, || TcpListener::bind((ip, 0)).ctx(|| format!("bind {ip}"))).map_err(|e| e.to_string())?;
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let server = std::thread::spawn(move || -> std::result::Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let (mut s, _) = loop {
            match listener.accept() {
                Ok(c) => break c,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(e) => return Err(format!("accept: {e}")),
            }
        };
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).map_err(|e| format!("server read: {e}"))?;
        if &buf != b"ping" {
            return Err(format!("server got {buf:?}"));
        }
        s.write_all(b"pong").map_err(|e| format!("server write: {e}"))
    });
    let client = in_netns(client_ns, move || {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).ctx(|| format!("connect to {addr}"))?;
        s.set_read_timeout(Some(Duration::from_secs(3))).ctx(|| "timeout".into())?;
        s.write_all(b"ping").ctx(|| "client write".into())?;
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).ctx(|| "client read".into())?;
        Ok(buf)
    })
    .map_err(|e| e.to_string());
    let served = server.join().unwrap();
    let got = client?;
    served?;
    if &got != b"pong" {
        return Err(format!("client got {got:?}"));
    }
    Ok(())
}

/// `busybox ping -c1 -W1 ip` run inside `ns`: whether it got an answer.
pub fn ping(ns: &Netns, ip: Ipv4Addr) -> bool {
    in_netns(ns, || {
        Command::new("/bin/busybox")
            .args(["ping", "-c1", "-W1", &ip.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ctx(|| "run busybox ping".into())
    })
    .map(|s| s.success())
    .unwrap_or(false)
}

/// `/proc/thread-self/net/<file>` as seen from inside `ns`.
pub fn proc_net(ns: &Netns, file: &str) -> String {
    in_netns(ns, || std::fs::read_to_string(format!("/proc/thread-self/net/{file}")).ctx(|| format!("read /proc/net/{file}")))
        .unwrap()
}

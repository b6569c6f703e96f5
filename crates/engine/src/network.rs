//! Container networks: the seed's `addnetwork` (a veth pair to the host, `-i`, `-e`) and `peer`,
//! over the network library (rtnetlink + conductor's nftables table).
//!
//! What a container was given is recorded in its directory (`network.json`) and, for the
//! addresses, in the allocator's file (`<data>/network/allocations.json`). Every change to any
//! container's network holds one lock (`<data>/network/network.lock`), taken after the name lock
//! when both are needed, so the two records and the kernel's state change together. What a crash
//! leaves (an allocation without a record) is torn down by the next network command or `prune`.

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use conductor_network::firewall::{Firewall, PortSpec};
use conductor_network::{route, Allocation, Allocator, Netlink, Netns};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::config::{Config, NetworkConfig};
use crate::container::Engine;
use crate::error::{Context, Error, Result};
use crate::paths::Paths;
use crate::record::{self, Dir};

const RECORD: &str = "network.json";

/// What `addnetwork` (or `run --network`) asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetRequest {
    /// `-i`: reach beyond the host, masqueraded.
    pub internet: bool,
    /// `-e CPORT-HPORT` / `-p HPORT:CPORT`.
    pub ports: Vec<PortSpec>,
}

/// What a container's network is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetRecord {
    pub allocation: Allocation,
    /// The interface `-i` masquerades out of, when given.
    pub internet: Option<String>,
    pub ports: Vec<PortSpec>,
    /// Containers this one is peered with, by name.
    pub peers: Vec<String>,
}

impl NetRecord {
    pub fn ip(&self) -> Ipv4Addr {
        self.allocation.container_ip
    }
}

/// The network library's handles for this engine.
pub(crate) struct Net {
    cfg: NetworkConfig,
    alloc: Allocator,
    fw: Firewall,
    dir: PathBuf,
}

impl Net {
    pub(crate) fn open(paths: &Paths) -> Result<Net> {
        let cfg = Config::load()?.network;
        let dir = paths.data.join("network");
        let alloc = Allocator::new(&dir, cfg.pool_config()).map_err(net_err)?;
        let fw = Firewall::new(&cfg.table);
        Ok(Net { cfg, alloc, fw, dir })
    }

    /// The lock every network change holds.
    fn lock(&self) -> Result<Flock<File>> {
        std::fs::create_dir_all(&self.dir).ctx(|| format!("create {}", self.dir.display()))?;
        let p = self.dir.join("network.lock");
        let f = File::options().create(true).truncate(false).write(true).open(&p).ctx(|| format!("open {}", p.display()))?;
        Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| Error::Sys { what: format!("lock {}", p.display()), err: e })
    }

    /// Refuse what cannot be done before anything changes: the same host port twice, a host port
    /// a host program holds, `-i` without an interface to use. (A port another container's
    /// mapping holds fails the firewall's transaction, as a whole.)
    fn precheck(&self, req: &NetRequest) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        for p in &req.ports {
            if !seen.insert((p.proto, p.host_port)) {
                return Err(Error::Invalid(format!("host port {}/{} is given twice", p.host_port, p.proto)));
            }
        }
        // Another container's mapping of the same port is found by the firewall's transaction
        // itself (it fails as a whole), without listing the table: a cost that would grow with
        // the number of containers.
        if let Some(p) = req.ports.iter().find(|p| p.host_port_taken()) {
            return Err(Error::Invalid(format!("host port {}/{} is already in use on this host", p.host_port, p.proto)));
        }
        if req.internet {
            self.out_interface()?;
        }
        Ok(())
    }

    /// The interface `-i` leaves by: the configured one, else the default route's.
    fn out_interface(&self) -> Result<String> {
        if let Some(i) = &self.cfg.default_interface {
            return Ok(i.clone());
        }
        let mut nl = Netlink::open().map_err(net_err)?;
        route::default_interface(&mut nl).map_err(net_err)?.ok_or_else(|| {
            Error::Invalid(format!(
                "-i: this host has no default route; set [network] default_interface in {}",
                Config::path().display()
            ))
        })
    }

    /// Allocate, attach the veth pair to the container whose init is `pid`, add it to the
    /// firewall as asked, and record it. All or nothing. The caller holds the network lock.
    fn connect(&self, cname: &str, dir: &Dir, pid: i32, req: &NetRequest) -> Result<NetRecord> {
        let exclude = {
            let mut nl = Netlink::open().map_err(net_err)?;
            route::connected_networks(&mut nl).map_err(net_err)?
        };
        let allocation = self.alloc.allocate_excluding(cname, &exclude).map_err(net_err)?;
        let rec = NetRecord { allocation: allocation.clone(), internet: None, ports: req.ports.clone(), peers: Vec::new() };
        self.plumb(dir, pid, req, rec).inspect_err(|_| self.teardown(&allocation))
    }

    fn plumb(&self, dir: &Dir, pid: i32, req: &NetRequest, mut rec: NetRecord) -> Result<NetRecord> {
        let a = &rec.allocation;
        attach_link(a, pid, !req.ports.is_empty())?;
        let internet = if req.internet { Some(self.out_interface()?) } else { None };
        self.fw.connect(a.container_ip, internet.as_deref(), &req.ports).map_err(fw_err)?;
        rec.internet = internet;
        write_hosts(dir, &rec, &[])?;
        record::write_json(&dir.path.join(RECORD), &rec)?;
        Ok(rec)
    }

    /// Remove what `a` stands for from the kernel and free it. Best effort, idempotent: the veth
    /// may be gone already (it dies with the container's namespace).
    fn teardown(&self, a: &Allocation) {
        if let Err(e) = self.fw.remove_container(a.container_ip) {
            tracing::warn!("removing {} from the firewall: {e}", a.container_ip);
        }
        if let Err(e) = conductor_network::detach(&a.ifnames.outside) {
            tracing::warn!("removing link {}: {e}", a.ifnames.outside);
        }
        if let Err(e) = self.alloc.release(&a.name) {
            tracing::warn!("releasing the addresses of {}: {e}", a.name);
        }
    }
}

impl Engine {
    /// `addnetwork NAME [-i] [-e CPORT-HPORT]..`: connect a running container to the host.
    pub fn add_network(&self, cname: &str, req: &NetRequest) -> Result<NetRecord> {
        let dir = self.existing(cname)?;
        let _lock = record::lock(&self.paths, cname)?;
        let st = dir.state()?;
        if !self.init_alive(&st) {
            return Err(Error::Invalid(format!("container {cname:?} is not running")));
        }
        let net = Net::open(&self.paths)?;
        let _net_lock = net.lock()?;
        self.reconcile_networks(&net);
        if read_record(&dir)?.is_some() {
            return Err(Error::Invalid(format!("container {cname:?} already has a network (stop it to start over)")));
        }
        net.precheck(req)?;
        net.connect(cname, &dir, st.pid, req)
    }

    /// Check a network request before a container is made for it (`run` with network options).
    pub(crate) fn precheck_network(&self, req: &NetRequest) -> Result<()> {
        let net = Net::open(&self.paths)?;
        let _net_lock = net.lock()?;
        net.precheck(req)
    }

    /// `run` with network options: called by the monitor between create and start, so the
    /// program starts with its network in place. The name lock is held by `run`.
    pub(crate) fn connect_created(&self, cname: &str, dir: &Dir, pid: i32, req: &NetRequest) -> Result<NetRecord> {
        let net = Net::open(&self.paths)?;
        let _net_lock = net.lock()?;
        net.precheck(req)?;
        net.connect(cname, dir, pid, req)
    }

    /// `peer A B`: the two reach each other, both ways, by address and by name.
    pub fn peer(&self, a: &str, b: &str) -> Result<()> {
        if a == b {
            return Err(Error::Invalid(format!("cannot peer {a:?} with itself")));
        }
        let (da, db) = (self.existing(a)?, self.existing(b)?);
        let net = Net::open(&self.paths)?;
        let _net_lock = net.lock()?;
        let no_net = |n: &str| Error::Invalid(format!("container {n:?} has no network: run `conductor addnetwork {n}` first"));
        let mut ra = read_record(&da)?.ok_or_else(|| no_net(a))?;
        let mut rb = read_record(&db)?.ok_or_else(|| no_net(b))?;
        net.fw.peer(ra.ip(), rb.ip()).map_err(fw_err)?;
        for (rec, other) in [(&mut ra, b), (&mut rb, a)] {
            if !rec.peers.iter().any(|p| p == other) {
                rec.peers.push(other.to_string());
                rec.peers.sort();
            }
        }
        self.save_with_hosts(&da, &ra)?;
        self.save_with_hosts(&db, &rb)
    }

    /// Every container's network, by name.
    pub fn networks(&self) -> Vec<(String, NetRecord)> {
        record::names(&self.paths)
            .into_iter()
            .filter_map(|n| Some((n.clone(), read_record(&Dir::of(&self.paths, &n)).ok()??)))
            .collect()
    }

    /// A container's network, if it has one.
    pub fn network_of(&self, cname: &str) -> Result<Option<NetRecord>> {
        read_record(&self.existing(cname)?)
    }

    /// Remove a container's network (stop, rm, a failed run): its firewall elements, links and
    /// addresses, and its name from its peers' hosts files. Nothing to do is not an error.
    pub(crate) fn disconnect(&self, cname: &str, dir: &Dir) -> Result<()> {
        let rec = read_record(dir).ok().flatten();
        // Nothing was ever networked here: no config to read (a broken one must not keep the
        // container from going), no lock or file to make.
        if rec.is_none() && !self.paths.data.join("network/allocations.json").exists() {
            return Ok(());
        }
        let net = Net::open(&self.paths)?;
        let _net_lock = net.lock()?;
        let allocation = match &rec {
            Some(r) => Some(r.allocation.clone()),
            None => net.alloc.get(cname).map_err(net_err)?,
        };
        let Some(a) = allocation else { return Ok(()) };
        net.teardown(&a);
        for p in rec.map(|r| r.peers).unwrap_or_default() {
            let pd = Dir::of(&self.paths, &p);
            if let Ok(Some(mut pr)) = read_record(&pd) {
                pr.peers.retain(|x| x != cname);
                let _ = self.save_with_hosts(&pd, &pr);
            }
        }
        let _ = std::fs::remove_file(dir.path.join(RECORD));
        Ok(())
    }

    /// Free what crashed commands left: allocations of containers that have no network record.
    /// The caller holds the network lock.
    fn reconcile_networks(&self, net: &Net) -> Vec<String> {
        let with_record: Vec<String> = self.networks().into_iter().map(|(n, _)| n).collect();
        let mut freed = Vec::new();
        for a in net.alloc.list().unwrap_or_default() {
            if !with_record.contains(&a.name) {
                tracing::warn!("cleaning up the half-made network of {}", a.name);
                net.teardown(&a);
                freed.push(a.name);
            }
        }
        freed
    }

    /// `prune`'s share: leftover allocations, and conductor's table when no container uses it.
    pub(crate) fn prune_networks(&self) -> Vec<String> {
        let Ok(net) = Net::open(&self.paths) else { return Vec::new() };
        let Ok(_net_lock) = net.lock() else { return Vec::new() };
        let freed = self.reconcile_networks(&net);
        freed.into_iter().map(|n| format!("network of {n}")).collect()
    }

    fn save_with_hosts(&self, dir: &Dir, rec: &NetRecord) -> Result<()> {
        let peers: Vec<(Ipv4Addr, String)> =
            rec.peers.iter().filter_map(|p| Some((read_record(&Dir::of(&self.paths, p)).ok()??.ip(), p.clone()))).collect();
        write_hosts(dir, rec, &peers)?;
        record::write_json(&dir.path.join(RECORD), rec)
    }
}

/// The veth pair of allocation `a` into the namespace of `pid`; with exposed ports, the host
/// reaches them at 127.0.0.1 too (see Firewall::enable_route_localnet).
fn attach_link(a: &Allocation, pid: i32, exposed: bool) -> Result<()> {
    let ns = Netns::of_pid(pid).map_err(net_err)?;
    conductor_network::attach(&ns, a).map_err(net_err)?;
    if exposed {
        Firewall::enable_route_localnet(&a.ifnames.outside).map_err(fw_err)?;
    }
    Ok(())
}

/// A restarted container: its new namespace gets the recorded veth pair again (same names and
/// addresses), so the firewall elements and the peers' hosts entries stay valid.
pub(crate) fn reattach(dir: &Dir, pid: i32) -> Result<()> {
    let Some(rec) = read_record(dir)? else { return Ok(()) };
    let a = &rec.allocation;
    // The old host end goes with the old namespace, but asynchronously: make sure it is gone.
    let _ = conductor_network::detach(&a.ifnames.outside);
    attach_link(a, pid, !rec.ports.is_empty())
}

pub(crate) fn read_record(dir: &Dir) -> Result<Option<NetRecord>> {
    let p = dir.path.join(RECORD);
    match std::fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| Error::Invalid(format!("{}: {e}", p.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(Error::Io { what: format!("read {}", p.display()), err }),
    }
}

/// The container's /etc/hosts: the base entries, its own address, its peers by name. Written in
/// place: the file is bind-mounted into the container, and a rename would leave the mount on
/// the old inode.
fn write_hosts(dir: &Dir, rec: &NetRecord, peers: &[(Ipv4Addr, String)]) -> Result<()> {
    let hostname = std::fs::read_to_string(dir.path.join("hostname")).unwrap_or_default().trim().to_string();
    let body = crate::etc::hosts(&hostname, Some(rec.ip()), peers);
    let p = dir.path.join("hosts");
    std::fs::write(&p, body).ctx(|| format!("write {}", p.display()))
}

fn net_err(e: conductor_network::Error) -> Error {
    Error::Invalid(e.to_string())
}

fn fw_err(e: conductor_network::firewall::FirewallError) -> Error {
    Error::Invalid(e.to_string())
}

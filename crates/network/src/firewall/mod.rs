//! conductor's firewall: one nftables table (family `inet`, `conductor` by default) that holds
//! all of the seed's network policy, and nothing outside it.
//!
//! - isolation: containers cannot reach each other (forward chain);
//! - `peer A B`: the pair is let through, both ways;
//! - `-i`: a container may leave by the default-route interface, masqueraded;
//! - `-e CPORT-HPORT` / `-p HPORT:CPORT`: a host port forwards (DNAT) to the container, from
//!   other hosts, from containers and from the host itself, 127.0.0.1 included.
//!
//! The rules are fixed (the private `ruleset` module lists them, with the reasons): each
//! per-container fact is an element of a set or map, so adding a container adds elements, never
//! rules, and a packet costs the same few hash lookups with 2 containers or 2000. Every change is one `nft -j -f -` transaction,
//! generated with the `nftables` crate's typed schema, and is reported as a
//! `conductor::explain` trace event in nft's own syntax.
//!
//! Outside the table, only two sysctls are touched: `net.ipv4.ip_forward` ([`Firewall::ensure`])
//! and `net.ipv4.conf.IFC.route_localnet` ([`Firewall::enable_route_localnet`]).
//!
//! Everything acts on the network namespace of the calling thread (nft runs as its child).

mod elements;
mod nft;
mod plan;
mod ports;
mod ruleset;
mod state;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use nftables::schema::NfObject;

use elements::Val;
use ruleset::{PORTS_ADDR, PORTS_PORT};
use state::Raw;

pub use ports::{PortSpec, Proto};
pub use state::{FirewallState, InternetAccess, PortMapping};

/// The table conductor uses unless told otherwise.
pub const DEFAULT_TABLE: &str = "conductor";

#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error("cannot run {program}: {err} (nftables' command line tool, Debian package nftables)")]
    Spawn { program: String, err: std::io::Error },
    #[error("nft refused {what}: {stderr}")]
    Nft { what: String, stderr: String },
    #[error("the nftables table inet {0} does not exist (Firewall::ensure creates it)")]
    NoTable(String),
    #[error("cannot read nft's JSON: {0}")]
    BadJson(String),
    #[error("host port {host_port}/{proto} is already exposed, forwarding to {ip}:{container_port}")]
    PortInUse { proto: Proto, host_port: u16, ip: Ipv4Addr, container_port: u16 },
    #[error("invalid port spec {spec:?}: {reason}")]
    PortSpec { spec: String, reason: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {err}")]
    Sysctl { path: String, err: std::io::Error },
}

pub type Result<T> = std::result::Result<T, FirewallError>;

/// One command of a transaction, and how `--explain` shows it.
#[derive(Clone, Debug)]
struct Change {
    obj: NfObject<'static>,
    text: String,
}

/// A handle on conductor's table in the calling thread's network namespace. Cheap: it holds
/// names only; every call reads or changes the kernel's state.
#[derive(Clone, Debug)]
pub struct Firewall {
    table: String,
    nft: PathBuf,
}

impl Firewall {
    /// The table `table_name` (family inet). Nothing is done until a method is called.
    pub fn new(table_name: &str) -> Firewall {
        Firewall { table: table_name.to_string(), nft: nft::default_program() }
    }

    /// Use this `nft` executable instead of the one found in /usr/sbin, /sbin, /usr/bin or PATH.
    pub fn with_nft(mut self, program: impl Into<PathBuf>) -> Firewall {
        self.nft = program.into();
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn nft_program(&self) -> &Path {
        &self.nft
    }

    /// Create the table with its sets, maps, chains and rules, or bring an existing one up to
    /// date: one transaction, idempotent, elements kept. Then turn on IPv4 forwarding (after
    /// the rules, so that there is no moment where containers are routed but not isolated).
    pub fn ensure(&self) -> Result<()> {
        self.check_table_name()?;
        self.apply_raw(ruleset::ensure(&self.table), "creating the table")?;
        sysctl("/proc/sys/net/ipv4/ip_forward", "1")
    }

    fn check_table_name(&self) -> Result<()> {
        let ok = |c: char| c.is_ascii_alphanumeric() || c == '_';
        if !self.table.starts_with(|c: char| c.is_ascii_alphabetic()) || !self.table.chars().all(ok) || self.table.len() > 64 {
            return Err(FirewallError::Invalid(format!(
                "table name {:?}: use letters, digits and _, starting with a letter",
                self.table
            )));
        }
        Ok(())
    }

    /// Whether the table exists.
    pub fn exists(&self) -> Result<bool> {
        Ok(nft::list_table(&self.nft, &self.table)?.is_some())
    }

    /// Delete the table and everything in it. No error when there is none.
    pub fn destroy(&self) -> Result<()> {
        if !self.exists()? {
            return Ok(());
        }
        match self.apply_raw(ruleset::destroy(&self.table), "deleting the table") {
            // Deleted by someone else meanwhile.
            Err(FirewallError::Nft { .. }) if !self.exists()? => Ok(()),
            r => r,
        }
    }

    /// The table's contents; None when the table does not exist.
    pub fn list(&self) -> Result<Option<FirewallState>> {
        Ok(self.raw()?.map(|r| r.state()))
    }

    /// A new container: isolated from everything but the host until peered, exposed or let out.
    pub fn add_container(&self, ip: Ipv4Addr) -> Result<()> {
        self.apply(plan::add_container(&self.table, ip), &format!("adding container {ip}"))
    }

    /// Remove every element that mentions `ip`: the container itself, its internet access, its
    /// peerings (both directions) and its exposed ports. No error when there are none.
    pub fn remove_container(&self, ip: Ipv4Addr) -> Result<()> {
        self.delete_matching(&format!("removing container {ip}"), |raw| plan::remove_container(raw, ip))
    }

    /// `-i`: `ip` may reach beyond the host through `out_ifc` (the default-route interface),
    /// masqueraded behind that interface's address. Other containers stay unreachable.
    pub fn allow_internet(&self, ip: Ipv4Addr, out_ifc: &str) -> Result<()> {
        check_ifname(out_ifc)?;
        self.apply(plan::allow_internet(&self.table, ip, out_ifc), &format!("letting {ip} out through {out_ifc}"))
    }

    /// Undo [`allow_internet`](Self::allow_internet), for every interface.
    pub fn deny_internet(&self, ip: Ipv4Addr) -> Result<()> {
        self.delete_matching(&format!("stopping {ip} from going out"), |raw| plan::deny_internet(raw, ip))
    }

    /// `-e CPORT-HPORT` / `-p HPORT:CPORT`: `proto` port `host_port` on every host address
    /// forwards to `ip`:`container_port`. A host port already forwarded elsewhere is refused
    /// ([`FirewallError::PortInUse`]); the very same forwarding again is not an error.
    pub fn expose(&self, ip: Ipv4Addr, proto: Proto, container_port: u16, host_port: u16) -> Result<()> {
        if container_port == 0 || host_port == 0 {
            return Err(FirewallError::Invalid("port 0 cannot be exposed".into()));
        }
        let wanted = PortMapping { proto, host_port, ip, container_port };
        let raw = self.raw()?.ok_or_else(|| FirewallError::NoTable(self.table.clone()))?;
        if let Some(m) = conflict(&raw, wanted)? {
            return if m == wanted { Ok(()) } else { Err(in_use(m)) };
        }
        // The elements are created, not added: if the key appeared since the check above, the
        // transaction fails, and the listing below says who took it.
        let r = self.apply(
            plan::expose(&self.table, wanted),
            &format!("exposing {ip}:{container_port} as host port {host_port}/{proto}"),
        );
        match r {
            Err(e @ FirewallError::Nft { .. }) => match self.raw()?.map(|raw| raw.port(proto, host_port)) {
                Some(Some(m)) if m != wanted => Err(in_use(m)),
                Some(Some(_)) => Ok(()),
                _ => Err(e),
            },
            r => r,
        }
    }

    /// A new container with everything it asks for, in one transaction together with
    /// [`ensure`](Self::ensure)'s: the table brought up to date, the container added, `-i`
    /// through `internet` when given, and each port exposed. One `nft` run whatever the number
    /// of containers (no listing). A host port already forwarded fails the whole transaction,
    /// so nothing is added; the error names the mapping that holds it.
    pub fn connect(&self, ip: Ipv4Addr, internet: Option<&str>, ports: &[PortSpec]) -> Result<()> {
        if let Some(ifc) = internet {
            check_ifname(ifc)?;
        }
        if ports.iter().any(|p| p.container_port == 0 || p.host_port == 0) {
            return Err(FirewallError::Invalid("port 0 cannot be exposed".into()));
        }
        self.check_table_name()?;
        let mut changes = ruleset::ensure(&self.table);
        changes.extend(plan::add_container(&self.table, ip));
        if let Some(ifc) = internet {
            changes.extend(plan::allow_internet(&self.table, ip, ifc));
        }
        for p in ports {
            let m = PortMapping { proto: p.proto, host_port: p.host_port, ip, container_port: p.container_port };
            changes.extend(plan::expose(&self.table, m));
        }
        match self.apply_raw(changes, &format!("adding container {ip}")) {
            Err(e @ FirewallError::Nft { .. }) if !ports.is_empty() => {
                let raw = self.raw()?.unwrap_or_default();
                let held = ports.iter().find_map(|p| raw.port(p.proto, p.host_port).filter(|m| m.ip != ip));
                Err(held.map(in_use).unwrap_or(e))
            }
            Err(e) => Err(e),
            Ok(()) => sysctl("/proc/sys/net/ipv4/ip_forward", "1"),
        }
    }

    /// Stop forwarding host port `host_port`/`proto`. No error when it is not forwarded.
    pub fn unexpose(&self, proto: Proto, host_port: u16) -> Result<()> {
        self.delete_matching(&format!("unexposing host port {host_port}/{proto}"), |raw| plan::unexpose(raw, proto, host_port))
    }

    /// `peer A B`: let the two containers reach each other, both ways.
    pub fn peer(&self, a: Ipv4Addr, b: Ipv4Addr) -> Result<()> {
        if a == b {
            return Err(FirewallError::Invalid(format!("cannot peer {a} with itself")));
        }
        self.apply(plan::peer(&self.table, a, b), &format!("peering {a} and {b}"))
    }

    /// Undo [`peer`](Self::peer). No error when they are not peered.
    pub fn unpeer(&self, a: Ipv4Addr, b: Ipv4Addr) -> Result<()> {
        self.delete_matching(&format!("unpeering {a} and {b}"), |raw| plan::unpeer(raw, a, b))
    }

    /// `net.ipv4.conf.IFC.route_localnet=1` for a container's host-side link: lets the host
    /// reach exposed ports at 127.0.0.1 (the DNATed packet keeps its 127.0.0.1 source until the
    /// masquerade rule, and routing would drop it on a non-loopback link). The table's `guard`
    /// chain drops packets for 127.0.0.0/8 arriving from outside, which this would let in.
    pub fn enable_route_localnet(ifc: &str) -> Result<()> {
        check_ifname(ifc)?;
        sysctl(&format!("/proc/sys/net/ipv4/conf/{ifc}/route_localnet"), "1")
    }

    fn raw(&self) -> Result<Option<Raw>> {
        match nft::list_table(&self.nft, &self.table)? {
            None => Ok(None),
            Some(json) => state::parse_listing(&json, &self.table).map(Some),
        }
    }

    /// Log, then apply as one transaction.
    fn apply_raw(&self, changes: Vec<Change>, what: &str) -> Result<()> {
        for c in &changes {
            tracing::debug!(target: conductor_sys::EXPLAIN, step = "nft", command = %c.text);
        }
        let objs = changes.into_iter().map(|c| c.obj).collect();
        nft::apply(&self.nft, objs, what)
    }

    /// [`apply_raw`](Self::apply_raw) for changes inside the table: a failure because the table
    /// is missing says so.
    fn apply(&self, changes: Vec<Change>, what: &str) -> Result<()> {
        match self.apply_raw(changes, what) {
            Err(e @ FirewallError::Nft { .. }) => match self.exists() {
                Ok(false) => Err(FirewallError::NoTable(self.table.clone())),
                _ => Err(e),
            },
            r => r,
        }
    }

    /// Delete the elements `pick` finds in the current listing. nft 1.0.6 has no "delete if
    /// present", so the listing decides; if another process deleted one of them in between, the
    /// transaction fails as a whole and is planned again.
    fn delete_matching(&self, what: &str, pick: impl Fn(&Raw) -> plan::Picks) -> Result<()> {
        let mut attempt = 0;
        loop {
            let Some(raw) = self.raw()? else { return Ok(()) };
            let changes = plan::deletions(&self.table, pick(&raw));
            if changes.is_empty() {
                return Ok(());
            }
            match self.apply(changes, what) {
                Err(FirewallError::Nft { .. }) if attempt < 2 => attempt += 1,
                // The table went away meanwhile: nothing of it is left to delete.
                Err(FirewallError::NoTable(_)) => return Ok(()),
                r => return r,
            }
        }
    }
}

impl Default for Firewall {
    fn default() -> Firewall {
        Firewall::new(DEFAULT_TABLE)
    }
}

fn in_use(m: PortMapping) -> FirewallError {
    FirewallError::PortInUse { proto: m.proto, host_port: m.host_port, ip: m.ip, container_port: m.container_port }
}

/// The mapping that already holds `wanted`'s host port, if any.
fn conflict(raw: &Raw, wanted: PortMapping) -> Result<Option<PortMapping>> {
    let key = [Val::Proto(wanted.proto), Val::Port(wanted.host_port)];
    match raw.port(wanted.proto, wanted.host_port) {
        Some(m) => Ok(Some(m)),
        // Half a mapping (changed by hand): still taken.
        None if raw.contains_key(PORTS_ADDR, &key) || raw.contains_key(PORTS_PORT, &key) => Err(FirewallError::Invalid(format!(
            "host port {}/{} is half-mapped in table {}: unexpose it first",
            wanted.host_port, wanted.proto, PORTS_ADDR
        ))),
        None => Ok(None),
    }
}

/// A Linux interface name: 1 to 15 bytes, no '/', no whitespace, not "." or "..".
fn check_ifname(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name.bytes().any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0);
    if ok {
        Ok(())
    } else {
        Err(FirewallError::Invalid(format!("{name:?} is not a valid interface name")))
    }
}

/// Write a sysctl through procfs, only when it differs (writing ip_forward resets other
/// per-interface settings, and an unchanged value is no step to explain).
fn sysctl(path: &str, value: &str) -> Result<()> {
    let err = |err| FirewallError::Sysctl { path: path.to_string(), err };
    if std::fs::read_to_string(path).map_err(err)?.trim() == value {
        return Ok(());
    }
    conductor_sys::procfs::write(path, value).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names() {
        assert!(check_ifname("eth0").is_ok());
        assert!(check_ifname("abcdefghijklmno").is_ok());
        assert!(check_ifname("abcdefghijklmnop").is_err());
        for bad in ["", ".", "..", "a/b", "a b", "a:1"] {
            assert!(check_ifname(bad).unwrap_err().to_string().contains("not a valid interface name"), "{bad}");
        }
    }

    #[test]
    fn bad_table_names_are_refused_before_nft_runs() {
        let fw = Firewall::new("no such; table").with_nft("/nonexistent/nft");
        assert!(fw.ensure().unwrap_err().to_string().contains("table name"));
    }

    #[test]
    fn missing_nft_says_which_package() {
        let fw = Firewall::new("conductor").with_nft("/nonexistent/nft");
        let e = fw.list().unwrap_err().to_string();
        assert!(e.contains("/nonexistent/nft") && e.contains("nftables"), "{e}");
    }

    #[test]
    fn port_conflicts_name_the_current_owner() {
        let e = in_use(PortMapping { proto: Proto::Tcp, host_port: 3000, ip: "10.0.0.2".parse().unwrap(), container_port: 8080 });
        assert_eq!(e.to_string(), "host port 3000/tcp is already exposed, forwarding to 10.0.0.2:8080");
    }
}

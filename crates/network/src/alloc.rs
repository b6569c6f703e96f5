//! Address allocation: each container gets its own small subnet from a pool (default
//! `192.168.0.0/16` carved into `/24`s), the host end of its veth is the subnet's first address
//! (the container's gateway), the container end the second: the seed's `192.168.1.1/24` and
//! `192.168.1.2/24` for the first container. The pool's first subnet is left unused, as in the
//! seed's example.
//!
//! The allocations live in one JSON file in a state directory, changed under an flock and
//! written atomically (temp file, fsync, rename) *before* `allocate` returns: after a crash at any
//! point an address is either still recorded as taken or was never handed out, so no address is
//! ever given twice. What a crash can leave is an allocation whose container never came to be;
//! [`Allocator::reconcile`] frees those.

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::cidr::Ipv4Net;
use crate::error::{Context, Error, Result};
use crate::names::IfNames;

const STATE_FILE: &str = "allocations.json";
const LOCK_FILE: &str = "allocations.lock";
/// At most 2^20 candidate subnets in a pool (e.g. a /8 carved into /28s).
const MAX_POOL_BITS: u8 = 20;

/// Where container subnets come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// The pool, e.g. `192.168.0.0/16`.
    pub pool: Ipv4Net,
    /// The prefix length of each container's subnet, e.g. 24. At most 30 (two usable addresses).
    pub prefix: u8,
}

impl Default for PoolConfig {
    fn default() -> PoolConfig {
        PoolConfig { pool: Ipv4Net::new(Ipv4Addr::new(192, 168, 0, 0), 16).expect("valid"), prefix: 24 }
    }
}

impl PoolConfig {
    /// Check the numbers: `pool.prefix <= prefix <= 30`, and not too many subnets to scan.
    pub fn validate(&self) -> Result<()> {
        let p = self.pool.prefix();
        if self.prefix > 30 || self.prefix < p {
            return Err(Error::Invalid(format!("subnet prefix /{} must lie between the pool's /{p} and /30", self.prefix)));
        }
        if self.prefix - p > MAX_POOL_BITS {
            return Err(Error::Invalid(format!(
                "pool {} holds more than 2^{MAX_POOL_BITS} /{} subnets: use a longer prefix",
                self.pool, self.prefix
            )));
        }
        Ok(())
    }

    fn count(&self) -> usize {
        1usize << (self.prefix - self.pool.prefix())
    }

    fn subnet(&self, i: usize) -> Ipv4Net {
        let base = u32::from(self.pool.network().addr());
        let addr = base + ((i as u32) << (32 - u32::from(self.prefix)));
        Ipv4Net::new(Ipv4Addr::from(addr), self.prefix).expect("prefix checked")
    }

    /// The candidate subnets that `net` overlaps (an index range, possibly empty).
    fn blocked_by(&self, net: &Ipv4Net) -> std::ops::Range<usize> {
        if !self.pool.overlaps(net) {
            return 0..0;
        }
        let pool_lo = u64::from(u32::from(self.pool.network().addr()));
        let pool_hi = pool_lo + self.pool.size() - 1;
        let lo = u64::from(u32::from(net.network().addr()));
        let hi = lo + net.size() - 1;
        let shift = 32 - u32::from(self.prefix);
        let first = ((lo.max(pool_lo) - pool_lo) >> shift) as usize;
        let last = ((hi.min(pool_hi) - pool_lo) >> shift) as usize;
        first..last + 1
    }
}

/// One container's share of the pool.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Allocation {
    /// The container's name.
    pub name: String,
    /// Its subnet, e.g. `192.168.1.0/24`.
    pub subnet: Ipv4Net,
    /// The host end's address and the container's gateway, e.g. `192.168.1.1`.
    pub host_ip: Ipv4Addr,
    /// The container end's address, e.g. `192.168.1.2`.
    pub container_ip: Ipv4Addr,
    /// The veth names (`<name>-outside`, `<name>-inside`, or their short forms), unique among
    /// allocations.
    pub ifnames: IfNames,
}

impl Allocation {
    /// `host_ip/prefix`, as configured on the host end.
    pub fn host_cidr(&self) -> Ipv4Net {
        Ipv4Net::new(self.host_ip, self.subnet.prefix()).expect("valid prefix")
    }

    /// `container_ip/prefix`, as configured on the container end.
    pub fn container_cidr(&self) -> Ipv4Net {
        Ipv4Net::new(self.container_ip, self.subnet.prefix()).expect("valid prefix")
    }
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct StateFile {
    version: u32,
    allocations: BTreeMap<String, Allocation>,
}

/// The allocator over one state directory. Cheap to create; every call locks, reads, and (when
/// it changes something) writes the file, so several processes can share the directory.
#[derive(Debug, Clone)]
pub struct Allocator {
    dir: PathBuf,
    config: PoolConfig,
}

impl Allocator {
    pub fn new(state_dir: impl Into<PathBuf>, config: PoolConfig) -> Result<Allocator> {
        config.validate()?;
        Ok(Allocator { dir: state_dir.into(), config })
    }

    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// The state file's path.
    pub fn path(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    /// Give `name` a subnet, or return the one it already has.
    pub fn allocate(&self, name: &str) -> Result<Allocation> {
        self.allocate_excluding(name, &[])
    }

    /// Like [`Allocator::allocate`], avoiding subnets that overlap `exclude` (networks the host
    /// already reaches on some interface, so that a container's subnet does not shadow them).
    pub fn allocate_excluding(&self, name: &str, exclude: &[Ipv4Net]) -> Result<Allocation> {
        if name.is_empty() {
            return Err(Error::Invalid("cannot allocate addresses for an empty container name".into()));
        }
        let _lock = self.lock()?;
        let mut state = self.read()?;
        if let Some(a) = state.allocations.get(name) {
            return Ok(a.clone());
        }
        let cfg = &self.config;
        let mut blocked = vec![false; cfg.count()];
        blocked[0] = true; // the pool's first subnet is not used (see the module doc)
        for net in state.allocations.values().map(|a| &a.subnet).chain(exclude) {
            for i in cfg.blocked_by(net) {
                blocked[i] = true;
            }
        }
        let index = blocked
            .iter()
            .position(|b| !b)
            .ok_or(Error::PoolExhausted { pool: cfg.pool.network().to_string(), prefix: cfg.prefix })?;
        let subnet = cfg.subnet(index);
        let taken: HashSet<&str> =
            state.allocations.values().flat_map(|a| [a.ifnames.outside.as_str(), a.ifnames.inside.as_str()]).collect();
        let ifnames = (0u32..)
            .map(|salt| IfNames::with_salt(name, salt))
            .find(|n| !taken.contains(n.outside.as_str()) && !taken.contains(n.inside.as_str()))
            .expect("some salt gives unused names");
        let alloc = Allocation {
            name: name.to_string(),
            subnet,
            host_ip: subnet.nth(1).expect("prefix <= 30"),
            container_ip: subnet.nth(2).expect("prefix <= 30"),
            ifnames,
        };
        state.allocations.insert(name.to_string(), alloc.clone());
        self.write(&state)?;
        tracing::debug!(name, subnet = %alloc.subnet, host_ip = %alloc.host_ip, container_ip = %alloc.container_ip,
            "allocated a container subnet");
        Ok(alloc)
    }

    /// The allocation of `name`, if any.
    pub fn get(&self, name: &str) -> Result<Option<Allocation>> {
        let _lock = self.lock()?;
        Ok(self.read()?.allocations.remove(name))
    }

    /// All allocations, by name.
    pub fn list(&self) -> Result<Vec<Allocation>> {
        let _lock = self.lock()?;
        Ok(self.read()?.allocations.into_values().collect())
    }

    /// Free the allocation of `name`; returns it, or None when there was none (idempotent).
    pub fn release(&self, name: &str) -> Result<Option<Allocation>> {
        let _lock = self.lock()?;
        let mut state = self.read()?;
        let gone = state.allocations.remove(name);
        if gone.is_some() {
            self.write(&state)?;
        }
        Ok(gone)
    }

    /// Free the allocations of containers not in `existing` (what a crash between `allocate`
    /// and the container's creation, or between its removal and `release`, leaves behind).
    /// Returns what was freed, so the caller can also remove leftover links.
    pub fn reconcile<S: AsRef<str>>(&self, existing: &[S]) -> Result<Vec<Allocation>> {
        let keep: HashSet<&str> = existing.iter().map(|s| s.as_ref()).collect();
        let _lock = self.lock()?;
        let mut state = self.read()?;
        let (stay, gone): (BTreeMap<_, _>, BTreeMap<_, _>) =
            std::mem::take(&mut state.allocations).into_iter().partition(|(name, _)| keep.contains(name.as_str()));
        state.allocations = stay;
        if !gone.is_empty() {
            self.write(&state)?;
        }
        Ok(gone.into_values().collect())
    }

    fn lock(&self) -> Result<Flock<File>> {
        std::fs::create_dir_all(&self.dir).ctx(|| format!("create {}", self.dir.display()))?;
        let path = self.dir.join(LOCK_FILE);
        let f =
            OpenOptions::new().create(true).truncate(false).write(true).open(&path).ctx(|| format!("open {}", path.display()))?;
        Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, err)| Error::Sys { what: format!("flock {}", path.display()), err })
    }

    fn read(&self) -> Result<StateFile> {
        let path = self.path();
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(StateFile { version: 1, ..Default::default() }),
            Err(err) => return Err(Error::Io { what: format!("read {}", path.display()), err }),
        };
        // A damaged file is an error, never "no allocations": that could hand out taken addresses.
        serde_json::from_slice(&data).map_err(|e| Error::State { path: path.display().to_string(), reason: e.to_string() })
    }

    fn write(&self, state: &StateFile) -> Result<()> {
        let data = serde_json::to_vec_pretty(state).expect("serialisable");
        write_atomic(&self.path(), &data)
    }
}

/// Write `data` to `path` so that a crash leaves the old or the new content, never a mix.
fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{}.tmp-{}", path.file_name().and_then(|n| n.to_str()).unwrap_or("state"), std::process::id()));
    let res = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.ctx(|| format!("write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> TempDir {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let p = std::env::temp_dir().join(format!(
                "conductor-alloc-{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&p);
            TempDir(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    fn small(pool: &str, prefix: u8) -> PoolConfig {
        PoolConfig { pool: net(pool), prefix }
    }

    #[test]
    fn first_allocation_is_the_seeds() {
        let d = TempDir::new("seed");
        let a = Allocator::new(&d.0, PoolConfig::default()).unwrap();
        let eg = a.allocate("eg").unwrap();
        assert_eq!(eg.subnet, net("192.168.1.0/24"));
        assert_eq!(eg.host_ip, Ipv4Addr::new(192, 168, 1, 1));
        assert_eq!(eg.container_ip, Ipv4Addr::new(192, 168, 1, 2));
        assert_eq!(eg.host_cidr().to_string(), "192.168.1.1/24");
        assert_eq!(eg.container_cidr().to_string(), "192.168.1.2/24");
        assert_eq!(eg.ifnames, IfNames::for_container("eg"));
        let two = a.allocate("two").unwrap();
        assert_eq!(two.subnet, net("192.168.2.0/24"));
    }

    #[test]
    fn allocate_is_idempotent_and_persisted() {
        let d = TempDir::new("idem");
        let a = Allocator::new(&d.0, PoolConfig::default()).unwrap();
        let x = a.allocate("x").unwrap();
        assert_eq!(a.allocate("x").unwrap(), x);
        // A fresh allocator (another process) sees the same file.
        let b = Allocator::new(&d.0, PoolConfig::default()).unwrap();
        assert_eq!(b.get("x").unwrap(), Some(x.clone()));
        assert_eq!(b.allocate("y").unwrap().subnet, net("192.168.2.0/24"));
        assert_eq!(b.list().unwrap().len(), 2);
        let text = std::fs::read_to_string(a.path()).unwrap();
        assert!(text.contains("\"192.168.1.0/24\""), "{text}");
    }

    #[test]
    fn release_frees_for_reuse_and_is_idempotent() {
        let d = TempDir::new("release");
        let a = Allocator::new(&d.0, PoolConfig::default()).unwrap();
        let x = a.allocate("x").unwrap();
        let y = a.allocate("y").unwrap();
        assert_eq!(a.release("x").unwrap(), Some(x.clone()));
        assert_eq!(a.release("x").unwrap(), None);
        assert_eq!(a.get("x").unwrap(), None);
        let z = a.allocate("z").unwrap();
        assert_eq!(z.subnet, x.subnet, "the lowest free subnet is reused");
        assert_ne!(z.subnet, y.subnet);
    }

    #[test]
    fn never_twice_and_exhaustion() {
        let d = TempDir::new("exhaust");
        // A /28 in /30s: 4 subnets, the first unused: 3 containers.
        let a = Allocator::new(&d.0, small("10.9.0.0/28", 30)).unwrap();
        let got: Vec<_> = ["a", "b", "c"].iter().map(|n| a.allocate(n).unwrap()).collect();
        let subnets: HashSet<_> = got.iter().map(|g| g.subnet).collect();
        assert_eq!(subnets.len(), 3);
        assert!(!subnets.contains(&net("10.9.0.0/30")));
        assert_eq!(got[0].host_ip, Ipv4Addr::new(10, 9, 0, 5));
        assert_eq!(got[0].container_ip, Ipv4Addr::new(10, 9, 0, 6));
        let err = a.allocate("d").unwrap_err();
        assert!(matches!(err, Error::PoolExhausted { .. }), "{err}");
        assert_eq!(err.to_string(), "address pool 10.9.0.0/28 has no free /30 subnet left");
        a.release("b").unwrap();
        assert_eq!(a.allocate("d").unwrap().subnet, got[1].subnet);
    }

    #[test]
    fn reconcile_frees_the_vanished() {
        let d = TempDir::new("reconcile");
        let a = Allocator::new(&d.0, PoolConfig::default()).unwrap();
        for n in ["a", "b", "c"] {
            a.allocate(n).unwrap();
        }
        let freed = a.reconcile(&["b"]).unwrap();
        let mut names: Vec<_> = freed.iter().map(|f| f.name.as_str()).collect();
        names.sort();
        assert_eq!(names, ["a", "c"]);
        assert_eq!(a.list().unwrap().iter().map(|x| x.name.clone()).collect::<Vec<_>>(), ["b"]);
        assert!(a.reconcile(&["b".to_string()]).unwrap().is_empty());
    }

    #[test]
    fn excluded_and_foreign_subnets_are_avoided() {
        let d = TempDir::new("exclude");
        let a = Allocator::new(&d.0, PoolConfig::default()).unwrap();
        // The host already has 192.168.1.0/24 (a LAN) and a /23 over 192.168.2-3.
        let x = a.allocate_excluding("x", &[net("192.168.1.0/24"), net("192.168.2.0/23"), net("10.0.0.0/8")]).unwrap();
        assert_eq!(x.subnet, net("192.168.4.0/24"));
        // An allocation made under another configuration (a /22) blocks what it covers.
        let wide = Allocator::new(&d.0, small("192.168.0.0/16", 22)).unwrap();
        let w = wide.allocate("w").unwrap();
        assert_eq!(w.subnet, net("192.168.8.0/22"), "192.168.4.0/22 overlaps x");
        let y = a.allocate("y").unwrap();
        assert_eq!(y.subnet, net("192.168.1.0/24"));
        let later: Vec<_> = ["p", "q", "r"].iter().map(|n| a.allocate(n).unwrap().subnet.to_string()).collect();
        assert_eq!(later, ["192.168.2.0/24", "192.168.3.0/24", "192.168.5.0/24"]);
        for n in ["s", "t", "u"] {
            let s = a.allocate(n).unwrap().subnet;
            assert!(!w.subnet.overlaps(&s), "{s} inside {}", w.subnet);
        }
    }

    #[test]
    fn interface_names_stay_unique() {
        let d = TempDir::new("names");
        let a = Allocator::new(&d.0, PoolConfig::default()).unwrap();
        let long1 = a.allocate("a-very-long-container-name-1").unwrap();
        let long2 = a.allocate("a-very-long-container-name-2").unwrap();
        assert!(long1.ifnames.shortened());
        assert_ne!(long1.ifnames.outside, long2.ifnames.outside);
        assert_ne!(long1.ifnames.inside, long2.ifnames.inside);
        // Force a collision: a state file where another container holds "eg"'s names.
        let mut state = a.read().unwrap();
        let mut fake = state.allocations["a-very-long-container-name-1"].clone();
        fake.name = "impostor".into();
        fake.subnet = net("192.168.200.0/24");
        fake.ifnames = IfNames::for_container("eg");
        state.allocations.insert("impostor".into(), fake);
        a.write(&state).unwrap();
        let eg = a.allocate("eg").unwrap();
        assert_eq!(eg.ifnames, IfNames::with_salt("eg", 1));
    }

    #[test]
    fn damaged_state_is_an_error_not_a_reset() {
        let d = TempDir::new("damaged");
        let a = Allocator::new(&d.0, PoolConfig::default()).unwrap();
        a.allocate("x").unwrap();
        std::fs::write(a.path(), b"{ not json").unwrap();
        let err = a.allocate("y").unwrap_err();
        assert!(matches!(err, Error::State { .. }), "{err}");
        assert!(err.to_string().starts_with(&a.path().display().to_string()));
    }

    #[test]
    fn concurrent_allocators_never_share() {
        let d = TempDir::new("concurrent");
        let dir = d.0.clone();
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let dir = dir.clone();
                std::thread::spawn(move || {
                    let a = Allocator::new(&dir, PoolConfig::default()).unwrap();
                    (0..10).map(|i| a.allocate(&format!("c{t}-{i}")).unwrap().subnet).collect::<Vec<_>>()
                })
            })
            .collect();
        let all: Vec<Ipv4Net> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
        let unique: HashSet<_> = all.iter().collect();
        assert_eq!(unique.len(), 80);
        assert_eq!(Allocator::new(&dir, PoolConfig::default()).unwrap().list().unwrap().len(), 80);
        // No temp file left behind.
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn bad_configs_refused() {
        let d = TempDir::new("cfg");
        assert!(Allocator::new(&d.0, small("10.0.0.0/16", 31)).is_err());
        assert!(Allocator::new(&d.0, small("10.0.0.0/16", 8)).is_err());
        assert!(Allocator::new(&d.0, small("10.0.0.0/8", 30)).is_err(), "2^22 subnets is too many to scan");
        assert!(Allocator::new(&d.0, small("10.0.0.0/8", 28)).is_ok());
    }
}

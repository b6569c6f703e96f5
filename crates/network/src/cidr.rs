//! IPv4 networks written as `a.b.c.d/p`.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use crate::error::Error;

/// An IPv4 address with a prefix length: a network (`192.168.1.0/24`) or an interface address
/// (`192.168.1.1/24`). Serialised as its text form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Net {
    addr: Ipv4Addr,
    prefix: u8,
}

impl Ipv4Net {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Ipv4Net, Error> {
        if prefix > 32 {
            return Err(Error::Invalid(format!("{addr}/{prefix}: prefix length above 32")));
        }
        Ok(Ipv4Net { addr, prefix })
    }

    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(mask(self.prefix))
    }

    /// The network itself: the address with the host bits cleared.
    pub fn network(&self) -> Ipv4Net {
        Ipv4Net { addr: Ipv4Addr::from(u32::from(self.addr) & mask(self.prefix)), prefix: self.prefix }
    }

    /// The number of addresses in the network (2^(32-prefix)).
    pub fn size(&self) -> u64 {
        1u64 << (32 - self.prefix)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == u32::from(self.addr) & mask(self.prefix)
    }

    /// Whether the two networks share at least one address.
    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        let p = self.prefix.min(other.prefix);
        u32::from(self.addr) & mask(p) == u32::from(other.addr) & mask(p)
    }

    /// The `n`th address of the network (0 is the network address), if it lies inside it.
    pub fn nth(&self, n: u64) -> Option<Ipv4Addr> {
        (n < self.size()).then(|| Ipv4Addr::from(u32::from(self.network().addr) + n as u32))
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv4Net {
    type Err = Error;

    fn from_str(s: &str) -> Result<Ipv4Net, Error> {
        let bad = || Error::Invalid(format!("{s:?} is not an IPv4 network (a.b.c.d/prefix)"));
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        Ipv4Net::new(addr, prefix)
    }
}

impl serde::Serialize for Ipv4Net {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Ipv4Net {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Ipv4Net, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn parse_and_show() {
        assert_eq!(net("192.168.1.1/24").to_string(), "192.168.1.1/24");
        assert_eq!(net("192.168.1.1/24").network().to_string(), "192.168.1.0/24");
        assert_eq!(net("10.0.0.0/8").netmask(), Ipv4Addr::new(255, 0, 0, 0));
        assert_eq!(net("0.0.0.0/0").netmask(), Ipv4Addr::new(0, 0, 0, 0));
        for bad in ["192.168.1.1", "192.168.1.1/33", "1.2.3/8", "x/8", "1.2.3.4/-1"] {
            assert!(bad.parse::<Ipv4Net>().is_err(), "{bad}");
        }
    }

    #[test]
    fn containment() {
        let n = net("192.168.0.0/16");
        assert!(n.contains(Ipv4Addr::new(192, 168, 255, 1)));
        assert!(!n.contains(Ipv4Addr::new(192, 169, 0, 1)));
        assert!(n.overlaps(&net("192.168.4.0/24")));
        assert!(net("192.168.4.0/24").overlaps(&n));
        assert!(!net("192.168.4.0/24").overlaps(&net("192.168.5.0/24")));
        assert!(net("0.0.0.0/0").overlaps(&net("8.8.8.8/32")));
        assert_eq!(net("192.168.1.0/24").nth(2), Some(Ipv4Addr::new(192, 168, 1, 2)));
        assert_eq!(net("192.168.1.0/30").nth(4), None);
        assert_eq!(net("0.0.0.0/0").size(), 1 << 32);
    }

    #[test]
    fn serde_as_text() {
        let j = serde_json::to_string(&net("10.1.2.0/24")).unwrap();
        assert_eq!(j, "\"10.1.2.0/24\"");
        assert_eq!(serde_json::from_str::<Ipv4Net>(&j).unwrap(), net("10.1.2.0/24"));
        assert!(serde_json::from_str::<Ipv4Net>("\"10.1.2.0\"").is_err());
    }
}

//! The table's current contents, read back from `nft -j list table inet NAME`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use nftables::schema::{Map, Set, SetType, SetTypeValue};
use nftables::types::NfFamily;
use serde::Serialize;

use super::elements::{Elem, Val};
use super::ports::Proto;
use super::ruleset::{CONTAINERS, HAIRPIN, INTERNET, PEERS, PORTS_ADDR, PORTS_PORT};
use super::FirewallError;

/// What conductor's table holds now.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FirewallState {
    /// Every container address (`add_container`), sorted.
    pub containers: Vec<Ipv4Addr>,
    /// Addresses allowed out, masqueraded, by an interface (`allow_internet`).
    pub internet: Vec<InternetAccess>,
    /// Peered pairs, each once with the lower address first (`peer`).
    pub peers: Vec<(Ipv4Addr, Ipv4Addr)>,
    /// Exposed ports (`expose`), by protocol and host port.
    pub ports: Vec<PortMapping>,
}

/// A container address allowed to reach beyond the host, NATed behind `out_ifc`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct InternetAccess {
    pub ip: Ipv4Addr,
    pub out_ifc: String,
}

/// `proto` port `host_port` on every host address forwards to `ip`:`container_port`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct PortMapping {
    pub proto: Proto,
    pub host_port: u16,
    pub ip: Ipv4Addr,
    pub container_port: u16,
}

/// The elements of each of conductor's sets and maps, as listed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Raw {
    pub sets: BTreeMap<String, BTreeSet<Elem>>,
}

impl Raw {
    pub fn elems(&self, set: &str) -> impl Iterator<Item = &Elem> {
        self.sets.get(set).into_iter().flatten()
    }

    pub fn contains_key(&self, set: &str, key: &[Val]) -> bool {
        self.elems(set).any(|e| e.key == key)
    }

    /// The mapping a host port has now, if it has one.
    pub fn port(&self, proto: Proto, host_port: u16) -> Option<PortMapping> {
        self.state().ports.into_iter().find(|m| m.proto == proto && m.host_port == host_port)
    }

    pub fn state(&self) -> FirewallState {
        let mut st = FirewallState::default();
        for e in self.elems(CONTAINERS) {
            if let [Val::Ip(ip)] = e.key[..] {
                st.containers.push(ip);
            }
        }
        for e in self.elems(INTERNET) {
            if let [Val::Ip(ip), Val::Ifname(ref n)] = e.key[..] {
                st.internet.push(InternetAccess { ip, out_ifc: n.clone() });
            }
        }
        let mut peers = BTreeSet::new();
        for e in self.elems(PEERS) {
            if let [Val::Ip(a), Val::Ip(b)] = e.key[..] {
                peers.insert((a.min(b), a.max(b)));
            }
        }
        st.peers = peers.into_iter().collect();
        for e in self.elems(PORTS_ADDR) {
            let ([Val::Proto(proto), Val::Port(host_port)], Some([Val::Ip(ip)])) = (&e.key[..], e.data.as_deref()) else {
                continue;
            };
            let container_port = self.elems(PORTS_PORT).find_map(|p| match p.data.as_deref() {
                Some([Val::Port(cp)]) if p.key == e.key => Some(*cp),
                _ => None,
            });
            if let Some(container_port) = container_port {
                st.ports.push(PortMapping { proto: *proto, host_port: *host_port, ip: *ip, container_port });
            }
        }
        st.containers.sort();
        st.internet.sort();
        st.ports.sort();
        st
    }

    /// Every element, of any of conductor's sets and maps, that mentions `ip`, by set.
    pub fn mentioning(&self, ip: Ipv4Addr) -> Vec<(&'static str, Vec<Elem>)> {
        // A port's second map names the container only through the key it shares with the first.
        let port_keys: Vec<Elem> = self.elems(PORTS_ADDR).filter(|e| e.mentions(ip)).map(Elem::key_only).collect();
        KNOWN
            .iter()
            .map(|&set| {
                let hit = self.elems(set).filter(|e| e.mentions(ip) || (set == PORTS_PORT && port_keys.contains(&e.key_only())));
                (set, hit.cloned().collect::<Vec<_>>())
            })
            .filter(|(_, hit)| !hit.is_empty())
            .collect()
    }
}

/// Known sets: `hairpin` is listed as a set but is an implementation detail of the NAT rules.
const KNOWN: &[&str] = &[CONTAINERS, INTERNET, PEERS, HAIRPIN, PORTS_ADDR, PORTS_PORT];

fn types(v: &SetTypeValue<'_>) -> Vec<SetType> {
    match v {
        SetTypeValue::Single(t) => vec![*t],
        SetTypeValue::Concatenated(ts) => ts.to_vec(),
    }
}

/// Parse the output of `nft -j list table inet TABLE`. Objects that are not conductor's sets or
/// maps (the chains, rules, anything added by hand) are skipped; each is decoded on its own, so
/// one the `nftables` crate cannot represent does not hide the rest.
pub(super) fn parse_listing(json: &str, table: &str) -> Result<Raw, FirewallError> {
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| FirewallError::BadJson(e.to_string()))?;
    let objs =
        v.get("nftables").and_then(|o| o.as_array()).ok_or_else(|| FirewallError::BadJson("no \"nftables\" array".into()))?;
    let mut raw = Raw::default();
    for o in objs {
        let (name, elems) = if let Some(s) = o.get("set") {
            let s: Set = serde_json::from_value(s.clone()).map_err(|e| FirewallError::BadJson(format!("a set: {e}")))?;
            if s.table != table || s.family != NfFamily::INet || !KNOWN.contains(&&*s.name) {
                continue;
            }
            let key = types(&s.set_type);
            let elems = parse_elems(&s.name, s.elem.as_deref().unwrap_or_default(), &key, None)?;
            (s.name.to_string(), elems)
        } else if let Some(m) = o.get("map") {
            let m: Map = serde_json::from_value(m.clone()).map_err(|e| FirewallError::BadJson(format!("a map: {e}")))?;
            if m.table != table || m.family != NfFamily::INet || !KNOWN.contains(&&*m.name) {
                continue;
            }
            let (key, data) = (types(&m.set_type), types(&m.map));
            let elems = parse_elems(&m.name, m.elem.as_deref().unwrap_or_default(), &key, Some(&data))?;
            (m.name.to_string(), elems)
        } else {
            continue;
        };
        raw.sets.insert(name, elems);
    }
    Ok(raw)
}

fn parse_elems(
    set: &str,
    elems: &[nftables::expr::Expression<'_>],
    key: &[SetType],
    data: Option<&[SetType]>,
) -> Result<BTreeSet<Elem>, FirewallError> {
    elems
        .iter()
        .map(|e| {
            Elem::parse(e, key, data).ok_or_else(|| {
                FirewallError::BadJson(format!("element {} of {set}", serde_json::to_string(e).unwrap_or_default()))
            })
        })
        .collect()
}

#[cfg(test)]
pub(super) mod fixtures {
    /// What nft 1.0.6 printed for a table with a little of everything (rules left out).
    pub const LISTING: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
      {"table": {"family": "inet", "name": "conductor", "handle": 1}},
      {"set": {"family": "inet", "name": "containers", "table": "conductor", "type": "ipv4_addr", "handle": 5, "elem": ["10.0.0.2", "10.0.0.6"]}},
      {"set": {"family": "inet", "name": "internet", "table": "conductor", "type": ["ipv4_addr", "ifname"], "handle": 6, "elem": [{"concat": ["10.0.0.2", "eth0"]}]}},
      {"set": {"family": "inet", "name": "peers", "table": "conductor", "type": ["ipv4_addr", "ipv4_addr"], "handle": 7,
               "elem": [{"concat": ["10.0.0.6", "10.0.0.2"]}, {"concat": ["10.0.0.2", "10.0.0.6"]}]}},
      {"set": {"family": "inet", "name": "hairpin", "table": "conductor", "type": ["ipv4_addr", "ipv4_addr"], "handle": 8,
               "elem": [{"concat": ["10.0.0.2", "10.0.0.2"]}, {"concat": ["10.0.0.6", "10.0.0.6"]}]}},
      {"map": {"family": "inet", "name": "ports_addr", "table": "conductor", "type": ["inet_proto", "inet_service"], "handle": 9, "map": "ipv4_addr",
               "elem": [[{"concat": ["tcp", 3000]}, "10.0.0.2"], [{"concat": ["udp", 5353]}, "10.0.0.6"]]}},
      {"map": {"family": "inet", "name": "ports_port", "table": "conductor", "type": ["inet_proto", "inet_service"], "handle": 10, "map": "inet_service",
               "elem": [[{"concat": ["tcp", 3000]}, 8080], [{"concat": ["udp", 5353]}, 53]]}},
      {"set": {"family": "inet", "name": "someone_elses", "table": "conductor", "type": "mark", "handle": 11, "elem": [7]}},
      {"chain": {"family": "inet", "table": "conductor", "name": "forward", "handle": 4, "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}}
    ]}"#;
}

#[cfg(test)]
mod tests {
    use super::fixtures::LISTING;
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn listing_becomes_state() {
        let raw = parse_listing(LISTING, "conductor").unwrap();
        let st = raw.state();
        assert_eq!(st.containers, vec![ip("10.0.0.2"), ip("10.0.0.6")]);
        assert_eq!(st.internet, vec![InternetAccess { ip: ip("10.0.0.2"), out_ifc: "eth0".into() }]);
        assert_eq!(st.peers, vec![(ip("10.0.0.2"), ip("10.0.0.6"))]);
        assert_eq!(
            st.ports,
            vec![
                PortMapping { proto: Proto::Tcp, host_port: 3000, ip: ip("10.0.0.2"), container_port: 8080 },
                PortMapping { proto: Proto::Udp, host_port: 5353, ip: ip("10.0.0.6"), container_port: 53 },
            ]
        );
        assert_eq!(raw.port(Proto::Udp, 5353).unwrap().container_port, 53);
        assert!(raw.port(Proto::Tcp, 5353).is_none());
        assert!(!raw.sets.contains_key("someone_elses"));
        // Another table's listing holds nothing of ours.
        assert_eq!(parse_listing(LISTING, "other").unwrap(), Raw::default());
    }

    #[test]
    fn everything_mentioning_a_container_is_found() {
        let raw = parse_listing(LISTING, "conductor").unwrap();
        let hits: BTreeMap<&str, Vec<String>> =
            raw.mentioning(ip("10.0.0.6")).into_iter().map(|(s, e)| (s, e.iter().map(|e| e.to_string()).collect())).collect();
        assert_eq!(hits.len(), 5);
        assert_eq!(hits["containers"], vec!["10.0.0.6"]);
        assert_eq!(hits["peers"], vec!["10.0.0.2 . 10.0.0.6", "10.0.0.6 . 10.0.0.2"]);
        assert_eq!(hits["hairpin"], vec!["10.0.0.6 . 10.0.0.6"]);
        assert_eq!(hits["ports_addr"], vec!["udp . 5353 : 10.0.0.6"]);
        assert_eq!(hits["ports_port"], vec!["udp . 5353 : 53"]);
        assert!(!hits.contains_key("internet"));
    }

    #[test]
    fn garbage_is_an_error_not_an_empty_state() {
        assert!(parse_listing("{}", "conductor").is_err());
        assert!(parse_listing("not json", "conductor").is_err());
        let bad = LISTING.replace(r#""10.0.0.6", "10.0.0.6""#, r#""10.0.0.6", "nonsense""#);
        let e = parse_listing(&bad, "conductor").unwrap_err().to_string();
        assert!(e.contains("of hairpin"), "{e}");
    }
}

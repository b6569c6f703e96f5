//! What each operation sends to nft: element changes only, planned without touching the kernel
//! (the removals from a listing of the table), so that they can be checked without root.

use std::net::Ipv4Addr;

use super::elements::{change, Elem, Op, Val};
use super::ports::Proto;
use super::ruleset::{CONTAINERS, HAIRPIN, INTERNET, PEERS, PORTS_ADDR, PORTS_PORT};
use super::state::{PortMapping, Raw};
use super::Change;

/// Elements to delete, by set or map.
pub(super) type Picks = Vec<(&'static str, Vec<Elem>)>;

pub(super) fn add_container(table: &str, ip: Ipv4Addr) -> Vec<Change> {
    vec![
        change(Op::Add, table, CONTAINERS, &[Elem::set(vec![Val::Ip(ip)])]),
        change(Op::Add, table, HAIRPIN, &[Elem::set(vec![Val::Ip(ip), Val::Ip(ip)])]),
    ]
}

pub(super) fn allow_internet(table: &str, ip: Ipv4Addr, out_ifc: &str) -> Vec<Change> {
    vec![change(Op::Add, table, INTERNET, &[Elem::set(vec![Val::Ip(ip), Val::Ifname(out_ifc.to_string())])])]
}

/// `create`, not `add`: the transaction fails if the host port got taken meanwhile.
pub(super) fn expose(table: &str, m: PortMapping) -> Vec<Change> {
    let key = vec![Val::Proto(m.proto), Val::Port(m.host_port)];
    vec![
        change(Op::Create, table, PORTS_ADDR, &[Elem::map(key.clone(), vec![Val::Ip(m.ip)])]),
        change(Op::Create, table, PORTS_PORT, &[Elem::map(key, vec![Val::Port(m.container_port)])]),
    ]
}

pub(super) fn peer(table: &str, a: Ipv4Addr, b: Ipv4Addr) -> Vec<Change> {
    vec![change(Op::Add, table, PEERS, &[Elem::set(vec![Val::Ip(a), Val::Ip(b)]), Elem::set(vec![Val::Ip(b), Val::Ip(a)])])]
}

/// Every element that mentions `ip`.
pub(super) fn remove_container(raw: &Raw, ip: Ipv4Addr) -> Picks {
    raw.mentioning(ip)
}

pub(super) fn deny_internet(raw: &Raw, ip: Ipv4Addr) -> Picks {
    vec![(INTERNET, raw.elems(INTERNET).filter(|e| e.key.first() == Some(&Val::Ip(ip))).cloned().collect())]
}

pub(super) fn unexpose(raw: &Raw, proto: Proto, host_port: u16) -> Picks {
    let key = vec![Val::Proto(proto), Val::Port(host_port)];
    [PORTS_ADDR, PORTS_PORT]
        .into_iter()
        .filter(|m| raw.contains_key(m, &key))
        .map(|m| (m, vec![Elem::set(key.clone())]))
        .collect()
}

pub(super) fn unpeer(raw: &Raw, a: Ipv4Addr, b: Ipv4Addr) -> Picks {
    let pairs = [vec![Val::Ip(a), Val::Ip(b)], vec![Val::Ip(b), Val::Ip(a)]];
    vec![(PEERS, pairs.into_iter().filter(|k| raw.contains_key(PEERS, k)).map(Elem::set).collect())]
}

/// The deletions for `picks`, one command per set, by key.
pub(super) fn deletions(table: &str, picks: Picks) -> Vec<Change> {
    picks
        .into_iter()
        .filter(|(_, elems)| !elems.is_empty())
        .map(|(set, elems)| change(Op::Delete, table, set, &elems.iter().map(Elem::key_only).collect::<Vec<_>>()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::state::{fixtures::LISTING, parse_listing};
    use super::*;
    use serde_json::json;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn json_of(changes: &[Change]) -> Vec<serde_json::Value> {
        changes.iter().map(|c| serde_json::to_value(&c.obj).unwrap()).collect()
    }

    fn texts(changes: &[Change]) -> Vec<&str> {
        changes.iter().map(|c| c.text.as_str()).collect()
    }

    #[test]
    fn adding_a_container_adds_two_elements() {
        let c = add_container("conductor", ip("10.0.0.2"));
        assert_eq!(
            json_of(&c),
            vec![
                json!({"add": {"element": {"family": "inet", "table": "conductor", "name": "containers", "elem": ["10.0.0.2"]}}}),
                json!({"add": {"element": {"family": "inet", "table": "conductor", "name": "hairpin",
                    "elem": [{"concat": ["10.0.0.2", "10.0.0.2"]}]}}}),
            ]
        );
        assert_eq!(
            texts(&c),
            [
                "nft add element inet conductor containers { 10.0.0.2 }",
                "nft add element inet conductor hairpin { 10.0.0.2 . 10.0.0.2 }"
            ]
        );
    }

    #[test]
    fn internet_peer_and_expose_elements() {
        let c = allow_internet("conductor", ip("10.0.0.2"), "eth0");
        assert_eq!(json_of(&c)[0]["add"]["element"]["elem"], json!([{"concat": ["10.0.0.2", "eth0"]}]));

        let c = peer("conductor", ip("10.0.0.2"), ip("10.0.0.6"));
        assert_eq!(
            json_of(&c)[0]["add"]["element"]["elem"],
            json!([{"concat": ["10.0.0.2", "10.0.0.6"]}, {"concat": ["10.0.0.6", "10.0.0.2"]}])
        );

        let m = PortMapping { proto: Proto::Udp, host_port: 5353, ip: ip("192.168.1.2"), container_port: 53 };
        let c = expose("conductor", m);
        let j = json_of(&c);
        assert_eq!(j[0]["create"]["element"]["name"], "ports_addr");
        assert_eq!(j[0]["create"]["element"]["elem"], json!([[{"concat": ["udp", 5353]}, "192.168.1.2"]]));
        assert_eq!(j[1]["create"]["element"]["name"], "ports_port");
        assert_eq!(j[1]["create"]["element"]["elem"], json!([[{"concat": ["udp", 5353]}, 53]]));
        assert_eq!(
            texts(&c),
            [
                "nft create element inet conductor ports_addr { udp . 5353 : 192.168.1.2 }",
                "nft create element inet conductor ports_port { udp . 5353 : 53 }"
            ]
        );
    }

    #[test]
    fn removing_a_container_deletes_every_mention_by_key() {
        let raw = parse_listing(LISTING, "conductor").unwrap();
        let c = deletions("conductor", remove_container(&raw, ip("10.0.0.2")));
        assert_eq!(
            texts(&c),
            [
                "nft delete element inet conductor containers { 10.0.0.2 }",
                "nft delete element inet conductor internet { 10.0.0.2 . \"eth0\" }",
                "nft delete element inet conductor peers { 10.0.0.2 . 10.0.0.6, 10.0.0.6 . 10.0.0.2 }",
                "nft delete element inet conductor hairpin { 10.0.0.2 . 10.0.0.2 }",
                "nft delete element inet conductor ports_addr { tcp . 3000 }",
                "nft delete element inet conductor ports_port { tcp . 3000 }",
            ]
        );
        assert_eq!(
            json_of(&c)[4],
            json!({"delete": {"element": {"family": "inet", "table": "conductor", "name": "ports_addr",
            "elem": [{"concat": ["tcp", 3000]}]}}})
        );
        // An address that is nowhere: nothing to send.
        assert!(deletions("conductor", remove_container(&raw, ip("10.9.9.9"))).is_empty());
    }

    #[test]
    fn undoing_deletes_only_what_is_there() {
        let raw = parse_listing(LISTING, "conductor").unwrap();
        assert_eq!(texts(&deletions("t", unexpose(&raw, Proto::Udp, 5353))).len(), 2);
        assert!(deletions("t", unexpose(&raw, Proto::Tcp, 5353)).is_empty());
        assert_eq!(
            texts(&deletions("t", unpeer(&raw, ip("10.0.0.6"), ip("10.0.0.2")))),
            ["nft delete element inet t peers { 10.0.0.6 . 10.0.0.2, 10.0.0.2 . 10.0.0.6 }"]
        );
        assert!(deletions("t", unpeer(&raw, ip("10.0.0.2"), ip("10.0.0.9"))).is_empty());
        assert_eq!(
            texts(&deletions("t", deny_internet(&raw, ip("10.0.0.2")))),
            ["nft delete element inet t internet { 10.0.0.2 . \"eth0\" }"]
        );
        assert!(deletions("t", deny_internet(&raw, ip("10.0.0.6"))).is_empty());
    }
}

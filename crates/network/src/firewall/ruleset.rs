//! conductor's nftables table: its sets, maps, chains and rules, as typed `nftables` values (and
//! as nft syntax for `--explain`).
//!
//! The rules never mention a container: every per-container fact is an element of a set or map,
//! so adding a container adds elements (no rule), and a packet's path costs a fixed number of
//! hash lookups however many containers there are.
//!
//! ```text
//! table inet conductor {
//!   set containers  { type ipv4_addr; }                  # every container address
//!   set internet    { type ipv4_addr . ifname; }         # -i: this address may leave, NATed, by this interface
//!   set peers       { type ipv4_addr . ipv4_addr; }      # peer: both directions
//!   set hairpin     { type ipv4_addr . ipv4_addr; }      # ip . ip per container: reaching its own exposed port
//!   map ports_addr  { type inet_proto . inet_service : ipv4_addr; }     # -e/-p: host port -> container address
//!   map ports_port  { type inet_proto . inet_service : inet_service; }  #         host port -> container port
//!   chain guard       { type filter hook prerouting priority raw; ... }  # route_localnet's hole closed
//!   chain prerouting  { type nat hook prerouting priority dstnat; ... }  # DNAT from other hosts / containers
//!   chain output      { type nat hook output priority -100; ... }        # DNAT from the host itself
//!   chain postrouting { type nat hook postrouting priority srcnat; ... } # masquerade
//!   chain forward     { type filter hook forward priority filter; ... }  # isolation
//! }
//! ```
//!
//! The port map is two maps with the same key, not one `... : ipv4_addr . inet_service` map:
//! nft 1.0.6 (Debian 12) cannot declare a map with concatenated data through its JSON API (it
//! rejects "ipv4_addr . inet_service" and silently makes a plain set of a type array). Both are
//! changed in the same transaction, so a packet never sees one without the other.

use std::borrow::Cow;
use std::collections::HashSet;

use nftables::expr::{
    Expression, Fib, FibFlag, FibResult, Map as MapExpr, Meta, MetaKey, NamedExpression, Payload, PayloadField, Prefix, CT,
};
use nftables::schema::{Chain, FlushObject, Map, NfCmd, NfListObject, NfObject, Rule, Set, SetType, SetTypeValue, Table};
use nftables::stmt::{Match, NATFamily, Operator, Statement, NAT};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

use super::Change;

pub(super) const CONTAINERS: &str = "containers";
pub(super) const INTERNET: &str = "internet";
pub(super) const PEERS: &str = "peers";
pub(super) const HAIRPIN: &str = "hairpin";
pub(super) const PORTS_ADDR: &str = "ports_addr";
pub(super) const PORTS_PORT: &str = "ports_port";

/// A named set (`data` None) or map of the table.
pub(super) struct SetDef {
    pub name: &'static str,
    pub key: &'static [SetType],
    pub data: Option<SetType>,
}

pub(super) const SETS: &[SetDef] = &[
    SetDef { name: CONTAINERS, key: &[SetType::Ipv4Addr], data: None },
    SetDef { name: INTERNET, key: &[SetType::Ipv4Addr, SetType::Ifname], data: None },
    SetDef { name: PEERS, key: &[SetType::Ipv4Addr, SetType::Ipv4Addr], data: None },
    SetDef { name: HAIRPIN, key: &[SetType::Ipv4Addr, SetType::Ipv4Addr], data: None },
    SetDef { name: PORTS_ADDR, key: &[SetType::InetProto, SetType::InetService], data: Some(SetType::Ipv4Addr) },
    SetDef { name: PORTS_PORT, key: &[SetType::InetProto, SetType::InetService], data: Some(SetType::InetService) },
];

fn type_name(t: SetType) -> &'static str {
    match t {
        SetType::Ipv4Addr => "ipv4_addr",
        SetType::Ipv6Addr => "ipv6_addr",
        SetType::EtherAddr => "ether_addr",
        SetType::InetProto => "inet_proto",
        SetType::InetService => "inet_service",
        SetType::Mark => "mark",
        SetType::Ifname => "ifname",
    }
}

fn type_value(types: &[SetType]) -> SetTypeValue<'static> {
    match types {
        [one] => SetTypeValue::Single(*one),
        many => SetTypeValue::Concatenated(Cow::Owned(many.to_vec())),
    }
}

impl SetDef {
    fn change(&self, table: &str) -> Change {
        let key_text = self.key.iter().map(|t| type_name(*t)).collect::<Vec<_>>().join(" . ");
        let (obj, text) = match self.data {
            None => (
                NfListObject::Set(Box::new(Set {
                    family: NfFamily::INet,
                    table: Cow::Owned(table.to_string()),
                    name: Cow::Borrowed(self.name),
                    set_type: type_value(self.key),
                    ..Set::default()
                })),
                format!("nft add set inet {table} {} {{ type {key_text}; }}", self.name),
            ),
            Some(data) => (
                NfListObject::Map(Box::new(Map {
                    family: NfFamily::INet,
                    table: Cow::Owned(table.to_string()),
                    name: Cow::Borrowed(self.name),
                    set_type: type_value(self.key),
                    map: SetTypeValue::Single(data),
                    ..Map::default()
                })),
                format!("nft add map inet {table} {} {{ type {key_text} : {}; }}", self.name, type_name(data)),
            ),
        };
        Change { obj: NfObject::CmdObject(NfCmd::Add(obj)), text }
    }
}

/// A base chain of the table.
pub(super) struct ChainDef {
    pub name: &'static str,
    pub kind: NfChainType,
    pub hook: NfHook,
    pub prio: i32,
    /// How `nft list` names the priority.
    pub prio_text: &'static str,
}

pub(super) const CHAINS: &[ChainDef] = &[
    ChainDef { name: "guard", kind: NfChainType::Filter, hook: NfHook::Prerouting, prio: -300, prio_text: "raw" },
    ChainDef { name: "prerouting", kind: NfChainType::NAT, hook: NfHook::Prerouting, prio: -100, prio_text: "dstnat" },
    ChainDef { name: "output", kind: NfChainType::NAT, hook: NfHook::Output, prio: -100, prio_text: "-100" },
    ChainDef { name: "postrouting", kind: NfChainType::NAT, hook: NfHook::Postrouting, prio: 100, prio_text: "srcnat" },
    ChainDef { name: "forward", kind: NfChainType::Filter, hook: NfHook::Forward, prio: 0, prio_text: "filter" },
];

impl ChainDef {
    fn chain(&self, table: &str) -> Chain<'static> {
        Chain {
            family: NfFamily::INet,
            table: Cow::Owned(table.to_string()),
            name: Cow::Borrowed(self.name),
            _type: Some(self.kind),
            hook: Some(self.hook),
            prio: Some(self.prio),
            policy: Some(NfChainPolicy::Accept),
            ..Chain::default()
        }
    }

    fn changes(&self, table: &str) -> [Change; 2] {
        let kind = match self.kind {
            NfChainType::Filter => "filter",
            NfChainType::NAT => "nat",
            NfChainType::Route => "route",
        };
        let hook = match self.hook {
            NfHook::Prerouting => "prerouting",
            NfHook::Output => "output",
            NfHook::Postrouting => "postrouting",
            NfHook::Forward => "forward",
            NfHook::Input => "input",
            NfHook::Ingress => "ingress",
            NfHook::Egress => "egress",
        };
        [
            Change {
                obj: NfObject::CmdObject(NfCmd::Add(NfListObject::Chain(self.chain(table)))),
                text: format!(
                    "nft add chain inet {table} {} {{ type {kind} hook {hook} priority {}; policy accept; }}",
                    self.name, self.prio_text
                ),
            },
            // Rules are replaced as a whole, in the same transaction: `add rule` is not idempotent,
            // and the kernel switches from the old rules to the new ones atomically.
            Change {
                obj: NfObject::CmdObject(NfCmd::Flush(FlushObject::Chain(self.chain(table)))),
                text: format!("nft flush chain inet {table} {}", self.name),
            },
        ]
    }
}

/// A rule: the chain, the statements, and the rule as `nft list` prints it.
pub(super) struct RuleDef {
    pub chain: &'static str,
    pub text: &'static str,
    pub stmts: Vec<Statement<'static>>,
}

fn s(v: &'static str) -> Expression<'static> {
    Expression::String(Cow::Borrowed(v))
}

fn at(set: &'static str) -> Expression<'static> {
    Expression::String(Cow::Owned(format!("@{set}")))
}

fn payload(protocol: &'static str, field: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(PayloadField {
        protocol: Cow::Borrowed(protocol),
        field: Cow::Borrowed(field),
    })))
}

fn meta(key: MetaKey) -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}

fn ct(key: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::CT(CT { key: Cow::Borrowed(key), family: None, dir: None }))
}

fn concat(parts: Vec<Expression<'static>>) -> Expression<'static> {
    Expression::Named(NamedExpression::Concat(parts))
}

fn prefix(addr: &'static str, len: u32) -> Expression<'static> {
    Expression::Named(NamedExpression::Prefix(Prefix { addr: Box::new(s(addr)), len }))
}

fn is(left: Expression<'static>, op: Operator, right: Expression<'static>) -> Statement<'static> {
    Statement::Match(Match { left, right, op })
}

fn eq(left: Expression<'static>, right: Expression<'static>) -> Statement<'static> {
    is(left, Operator::EQ, right)
}

/// `fib daddr type local`: the packet is addressed to one of this host's addresses.
fn to_local_address() -> Statement<'static> {
    let mut flags = HashSet::new();
    flags.insert(FibFlag::Daddr);
    eq(Expression::Named(NamedExpression::Fib(Fib { result: FibResult::Type, flags })), s("local"))
}

/// `dnat ip to meta l4proto . th dport map @ports_addr : meta l4proto . th dport map @ports_port`
fn dnat_via_port_maps() -> Statement<'static> {
    let lookup = |map: &'static str| {
        Expression::Named(NamedExpression::Map(Box::new(MapExpr {
            key: concat(vec![meta(MetaKey::L4proto), payload("th", "dport")]),
            data: at(map),
        })))
    };
    Statement::DNAT(Some(NAT {
        addr: Some(lookup(PORTS_ADDR)),
        family: Some(NATFamily::IP),
        port: Some(lookup(PORTS_PORT)),
        flags: None,
    }))
}

fn accept() -> Statement<'static> {
    Statement::Accept(None)
}

fn drop() -> Statement<'static> {
    Statement::Drop(None)
}

fn masquerade() -> Statement<'static> {
    Statement::Masquerade(None)
}

/// The table's rules, in order, per chain.
pub(super) fn rules() -> Vec<RuleDef> {
    let saddr = || payload("ip", "saddr");
    let daddr = || payload("ip", "daddr");
    let dnat_done = || is(ct("status"), Operator::IN, s("dnat"));
    let not_lo = || is(meta(MetaKey::Iifname), Operator::NEQ, s("lo"));
    vec![
        // route_localnet (needed on container links so that the host can reach exposed ports at
        // 127.0.0.1) would also let packets for 127.0.0.0/8 in from outside: the kernel's
        // martian check no longer drops them. Drop them first (as kube-proxy does since
        // CVE-2020-8558). Replies to the host's own NATed connections carry the container
        // gateway's address at this point, not 127.0.0.1.
        RuleDef {
            chain: "guard",
            text: "iifname != \"lo\" ip daddr 127.0.0.0/8 drop",
            stmts: vec![not_lo(), eq(daddr(), prefix("127.0.0.0", 8)), drop()],
        },
        RuleDef {
            chain: "guard",
            text: "iifname != \"lo\" ip saddr 127.0.0.0/8 drop",
            stmts: vec![not_lo(), eq(saddr(), prefix("127.0.0.0", 8)), drop()],
        },
        // Exposed ports, for packets from other hosts and from containers to any host address.
        RuleDef {
            chain: "prerouting",
            text:
                "fib daddr type local dnat ip to meta l4proto . th dport map @ports_addr:meta l4proto . th dport map @ports_port",
            stmts: vec![to_local_address(), dnat_via_port_maps()],
        },
        // The same for connections the host itself makes, to its own addresses or 127.0.0.1.
        RuleDef {
            chain: "output",
            text:
                "fib daddr type local dnat ip to meta l4proto . th dport map @ports_addr:meta l4proto . th dport map @ports_port",
            stmts: vec![to_local_address(), dnat_via_port_maps()],
        },
        // -i: the container's address is replaced by the outgoing interface's.
        RuleDef {
            chain: "postrouting",
            text: "ip saddr . oifname @internet masquerade",
            stmts: vec![eq(concat(vec![saddr(), meta(MetaKey::Oifname)]), at(INTERNET)), masquerade()],
        },
        // The host reached an exposed port at 127.0.0.1: the container cannot answer 127.0.0.1,
        // so the source becomes the gateway address of the container's link.
        RuleDef {
            chain: "postrouting",
            text: "ct status dnat ip saddr 127.0.0.0/8 masquerade",
            stmts: vec![dnat_done(), eq(saddr(), prefix("127.0.0.0", 8)), masquerade()],
        },
        // A container reached its own exposed port through a host address: its answer would
        // otherwise go to itself directly, from an address it never sent to.
        RuleDef {
            chain: "postrouting",
            text: "ct status dnat ip saddr . ip daddr @hairpin masquerade",
            stmts: vec![dnat_done(), eq(concat(vec![saddr(), daddr()]), at(HAIRPIN)), masquerade()],
        },
        // Isolation. Answers to allowed traffic pass.
        RuleDef {
            chain: "forward",
            text: "ct state established,related accept",
            stmts: vec![is(ct("state"), Operator::IN, Expression::List(vec![s("established"), s("related")])), accept()],
        },
        // Connections to exposed ports (the prerouting DNAT above made them).
        RuleDef {
            chain: "forward",
            text: "ct status dnat ip daddr @containers accept",
            stmts: vec![dnat_done(), eq(daddr(), at(CONTAINERS)), accept()],
        },
        // peer: the pair, in the direction of the packet.
        RuleDef {
            chain: "forward",
            text: "ip saddr . ip daddr @peers accept",
            stmts: vec![eq(concat(vec![saddr(), daddr()]), at(PEERS)), accept()],
        },
        // -i: out by the default-route interface only (not to another container's link).
        RuleDef {
            chain: "forward",
            text: "ip saddr . oifname @internet accept",
            stmts: vec![eq(concat(vec![saddr(), meta(MetaKey::Oifname)]), at(INTERNET)), accept()],
        },
        // Everything else from or to a container.
        RuleDef { chain: "forward", text: "ip saddr @containers drop", stmts: vec![eq(saddr(), at(CONTAINERS)), drop()] },
        RuleDef { chain: "forward", text: "ip daddr @containers drop", stmts: vec![eq(daddr(), at(CONTAINERS)), drop()] },
    ]
}

/// The transaction that creates the table, or brings an existing one up to date: the table,
/// sets, maps and chains are added (a no-op for those that exist, elements are kept), each
/// chain is flushed and its rules added again.
pub(super) fn ensure(table: &str) -> Vec<Change> {
    let mut out = vec![Change {
        obj: NfObject::CmdObject(NfCmd::Add(NfListObject::Table(table_obj(table)))),
        text: format!("nft add table inet {table}"),
    }];
    out.extend(SETS.iter().map(|s| s.change(table)));
    out.extend(CHAINS.iter().flat_map(|c| c.changes(table)));
    for r in rules() {
        let rule = Rule {
            family: NfFamily::INet,
            table: Cow::Owned(table.to_string()),
            chain: Cow::Borrowed(r.chain),
            expr: Cow::Owned(r.stmts),
            ..Rule::default()
        };
        out.push(Change {
            obj: NfObject::CmdObject(NfCmd::Add(NfListObject::Rule(rule))),
            text: format!("nft add rule inet {table} {} {}", r.chain, r.text),
        });
    }
    out
}

pub(super) fn table_obj(table: &str) -> Table<'static> {
    Table { family: NfFamily::INet, name: Cow::Owned(table.to_string()), handle: None }
}

/// The transaction that deletes the table with everything in it.
pub(super) fn destroy(table: &str) -> Vec<Change> {
    vec![Change {
        obj: NfObject::CmdObject(NfCmd::Delete(NfListObject::Table(table_obj(table)))),
        text: format!("nft delete table inet {table}"),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn ensure_json() -> Value {
        let objs: Vec<NfObject> = ensure("conductor").into_iter().map(|c| c.obj).collect();
        serde_json::to_value(nftables::schema::Nftables { objects: objs.into() }).unwrap()
    }

    #[test]
    fn ensure_is_one_transaction_in_dependency_order() {
        let j = ensure_json();
        let cmds = j["nftables"].as_array().unwrap();
        let kinds: Vec<String> = cmds
            .iter()
            .map(|c| {
                let (verb, obj) = c.as_object().unwrap().iter().next().unwrap();
                format!("{verb} {}", obj.as_object().unwrap().keys().next().unwrap())
            })
            .collect();
        assert_eq!(kinds[0], "add table");
        let pos = |k: &str| kinds.iter().position(|x| x == k).unwrap();
        let last = |k: &str| kinds.iter().rposition(|x| x == k).unwrap();
        assert!(last("add set") < pos("add chain") && last("add map") < pos("add chain"));
        assert!(last("add chain") < pos("add rule"));
        assert!(last("flush chain") < pos("add rule"));
        assert_eq!(kinds.iter().filter(|k| *k == "add set").count(), 4);
        assert_eq!(kinds.iter().filter(|k| *k == "add map").count(), 2);
        assert_eq!(kinds.iter().filter(|k| *k == "add chain").count(), 5);
        assert_eq!(kinds.iter().filter(|k| *k == "flush chain").count(), 5);
        assert_eq!(kinds.iter().filter(|k| *k == "add rule").count(), rules().len());
        // Everything is in conductor's table, family inet.
        for c in cmds {
            let (kind, obj) = c.as_object().unwrap().values().next().unwrap().as_object().unwrap().iter().next().unwrap();
            assert_eq!(obj["family"], "inet");
            let table = if kind == "table" { &obj["name"] } else { &obj["table"] };
            assert_eq!(table, "conductor", "{c}");
        }
    }

    #[test]
    fn sets_and_maps_have_the_documented_types() {
        let j = ensure_json();
        let find = |kind: &str, name: &str| -> Value {
            j["nftables"]
                .as_array()
                .unwrap()
                .iter()
                .find_map(|c| c["add"].get(kind).filter(|o| o["name"] == name).cloned())
                .unwrap()
        };
        assert_eq!(find("set", "containers")["type"], "ipv4_addr");
        assert_eq!(find("set", "internet")["type"], json!(["ipv4_addr", "ifname"]));
        assert_eq!(find("set", "peers")["type"], json!(["ipv4_addr", "ipv4_addr"]));
        assert_eq!(find("set", "hairpin")["type"], json!(["ipv4_addr", "ipv4_addr"]));
        assert_eq!(find("map", "ports_addr")["type"], json!(["inet_proto", "inet_service"]));
        assert_eq!(find("map", "ports_addr")["map"], "ipv4_addr");
        assert_eq!(find("map", "ports_port")["map"], "inet_service");
        let fwd = find("chain", "forward");
        assert_eq!(
            (fwd["type"].clone(), fwd["hook"].clone(), fwd["prio"].clone()),
            (json!("filter"), json!("forward"), json!(0))
        );
        assert_eq!(fwd["policy"], "accept");
        assert_eq!(find("chain", "prerouting")["prio"], -100);
        assert_eq!(find("chain", "postrouting")["type"], "nat");
        assert_eq!(find("chain", "guard")["prio"], -300);
    }

    #[test]
    fn dnat_rule_looks_up_both_port_maps() {
        let j = ensure_json();
        let pre = j["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|c| c["add"].get("rule").filter(|r| r["chain"] == "prerouting").cloned())
            .unwrap();
        assert_eq!(
            pre["expr"][0],
            json!({"match": {"op": "==", "left": {"fib": {"result": "type", "flags": ["daddr"]}}, "right": "local"}})
        );
        let key = json!({"concat": [{"meta": {"key": "l4proto"}}, {"payload": {"protocol": "th", "field": "dport"}}]});
        assert_eq!(
            pre["expr"][1],
            json!({"dnat": {"family": "ip",
                "addr": {"map": {"key": key, "data": "@ports_addr"}},
                "port": {"map": {"key": key, "data": "@ports_port"}}}})
        );
    }

    #[test]
    fn no_rule_names_a_container() {
        // The per-container facts are all in sets: a rule only ever refers to a set by name.
        let j = ensure_json().to_string();
        assert!(!j.contains("10."), "{j}");
        for r in rules() {
            assert!(!r.text.is_empty());
        }
    }

    #[test]
    fn json_round_trips_through_the_typed_schema() {
        let j = ensure_json();
        let back: nftables::schema::Nftables = serde_json::from_value(j.clone()).unwrap();
        assert_eq!(serde_json::to_value(&back).unwrap(), j);
    }

    #[test]
    fn explain_lines_read_as_nft_commands() {
        let texts: Vec<String> = ensure("conductor").into_iter().map(|c| c.text).collect();
        assert_eq!(texts[0], "nft add table inet conductor");
        assert!(texts.contains(&"nft add set inet conductor internet { type ipv4_addr . ifname; }".to_string()));
        assert!(
            texts.contains(&"nft add map inet conductor ports_addr { type inet_proto . inet_service : ipv4_addr; }".to_string())
        );
        assert!(texts.contains(
            &"nft add chain inet conductor forward { type filter hook forward priority filter; policy accept; }".to_string()
        ));
        assert!(texts.contains(&"nft add rule inet conductor forward ip saddr . ip daddr @peers accept".to_string()));
        let d = destroy("conductor");
        assert_eq!(d[0].text, "nft delete table inet conductor");
        assert_eq!(
            serde_json::to_value(&d[0].obj).unwrap(),
            json!({"delete": {"table": {"family": "inet", "name": "conductor"}}})
        );
    }
}

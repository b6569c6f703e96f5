//! Set and map elements: the values conductor stores in its sets (addresses, ports, protocols,
//! interface names), each rendered both as nftables JSON (for `nft -j`) and as nft syntax (for
//! `--explain`), and parsed back from `nft -j list table`.

use std::borrow::Cow;
use std::fmt;
use std::net::Ipv4Addr;

use nftables::expr::{Expression, NamedExpression};
use nftables::schema::{Element, NfCmd, NfListObject, NfObject, SetType};
use nftables::types::NfFamily;

use super::ports::Proto;
use super::Change;

/// One component of an element: the kinds of values conductor's sets hold.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Val {
    Ip(Ipv4Addr),
    Port(u16),
    Proto(Proto),
    Ifname(String),
}

impl Val {
    fn expr(&self) -> Expression<'static> {
        match self {
            Val::Ip(ip) => Expression::String(Cow::Owned(ip.to_string())),
            Val::Port(p) => Expression::Number(u32::from(*p)),
            Val::Proto(p) => Expression::String(Cow::Borrowed(p.as_str())),
            Val::Ifname(n) => Expression::String(Cow::Owned(n.clone())),
        }
    }

    /// Parse one value of type `ty` as `nft -j` prints it.
    fn parse(e: &Expression<'_>, ty: SetType) -> Option<Val> {
        match (ty, e) {
            (SetType::Ipv4Addr, Expression::String(s)) => s.parse().ok().map(Val::Ip),
            (SetType::InetService, Expression::Number(n)) => u16::try_from(*n).ok().map(Val::Port),
            (SetType::InetProto, Expression::String(s)) => s.parse().ok().map(Val::Proto),
            (SetType::InetProto, Expression::Number(6)) => Some(Val::Proto(Proto::Tcp)),
            (SetType::InetProto, Expression::Number(17)) => Some(Val::Proto(Proto::Udp)),
            (SetType::Ifname, Expression::String(s)) => Some(Val::Ifname(s.to_string())),
            _ => None,
        }
    }
}

impl fmt::Display for Val {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Val::Ip(ip) => write!(f, "{ip}"),
            Val::Port(p) => write!(f, "{p}"),
            Val::Proto(p) => write!(f, "{p}"),
            Val::Ifname(n) => write!(f, "\"{n}\""),
        }
    }
}

/// A set element (`data` is None) or a map element (`key : data`). Keys of more than one value
/// are concatenations (`10.0.0.2 . "eth0"`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct Elem {
    pub key: Vec<Val>,
    pub data: Option<Vec<Val>>,
}

impl Elem {
    pub fn set(key: Vec<Val>) -> Elem {
        Elem { key, data: None }
    }

    pub fn map(key: Vec<Val>, data: Vec<Val>) -> Elem {
        Elem { key, data: Some(data) }
    }

    /// The same element without its data: what a deletion names.
    pub fn key_only(&self) -> Elem {
        Elem { key: self.key.clone(), data: None }
    }

    /// Whether the element mentions `ip`, in its key or its data.
    pub fn mentions(&self, ip: Ipv4Addr) -> bool {
        self.key.iter().chain(self.data.iter().flatten()).any(|v| *v == Val::Ip(ip))
    }

    fn expr(&self) -> Expression<'static> {
        let key = vals_expr(&self.key);
        match &self.data {
            None => key,
            Some(d) => Expression::List(vec![key, vals_expr(d)]),
        }
    }

    /// Parse an element of a set whose key has types `key` (and data `data`, for a map).
    pub fn parse(e: &Expression<'_>, key: &[SetType], data: Option<&[SetType]>) -> Option<Elem> {
        let e = unwrap_elem(e);
        match (data, e) {
            (None, e) => Some(Elem::set(parse_vals(e, key)?)),
            (Some(d), Expression::List(kv)) if kv.len() == 2 => {
                Some(Elem::map(parse_vals(unwrap_elem(&kv[0]), key)?, parse_vals(&kv[1], d)?))
            }
            _ => None,
        }
    }
}

impl fmt::Display for Elem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_vals(f, &self.key)?;
        if let Some(d) = &self.data {
            f.write_str(" : ")?;
            write_vals(f, d)?;
        }
        Ok(())
    }
}

fn write_vals(f: &mut fmt::Formatter<'_>, vals: &[Val]) -> fmt::Result {
    for (i, v) in vals.iter().enumerate() {
        if i > 0 {
            f.write_str(" . ")?;
        }
        write!(f, "{v}")?;
    }
    Ok(())
}

fn vals_expr(vals: &[Val]) -> Expression<'static> {
    match vals {
        [one] => one.expr(),
        many => Expression::Named(NamedExpression::Concat(many.iter().map(Val::expr).collect())),
    }
}

/// Elements with a timeout, counter or comment are listed wrapped as `{"elem": {"val": ...}}`.
fn unwrap_elem<'e, 'a>(e: &'e Expression<'a>) -> &'e Expression<'a> {
    match e {
        Expression::Named(NamedExpression::Elem(el)) => &el.val,
        e => e,
    }
}

fn parse_vals(e: &Expression<'_>, types: &[SetType]) -> Option<Vec<Val>> {
    match (types, e) {
        ([ty], e) => Some(vec![Val::parse(e, *ty)?]),
        (tys, Expression::Named(NamedExpression::Concat(parts))) if parts.len() == tys.len() => {
            parts.iter().zip(tys).map(|(p, ty)| Val::parse(p, *ty)).collect()
        }
        _ => None,
    }
}

/// What to do with elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    /// Add; adding an element that is already there is not an error.
    Add,
    /// Add, failing (and so failing the whole transaction) when the key is already there.
    Create,
    /// Delete; deleting an element that is not there fails the transaction.
    Delete,
}

/// One command on elements of one set or map, with its nft syntax for `--explain`.
pub(super) fn change(op: Op, table: &str, set: &str, elems: &[Elem]) -> Change {
    let el = Element {
        family: NfFamily::INet,
        table: Cow::Owned(table.to_string()),
        name: Cow::Owned(set.to_string()),
        elem: Cow::Owned(elems.iter().map(Elem::expr).collect()),
    };
    let (cmd, verb) = match op {
        Op::Add => (NfCmd::Add(NfListObject::Element(el)), "add"),
        Op::Create => (NfCmd::Create(NfListObject::Element(el)), "create"),
        Op::Delete => (NfCmd::Delete(NfListObject::Element(el)), "delete"),
    };
    let list = elems.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(", ");
    Change { obj: NfObject::CmdObject(cmd), text: format!("nft {verb} element inet {table} {set} {{ {list} }}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Val {
        Val::Ip(s.parse().unwrap())
    }

    #[test]
    fn set_and_map_elements_as_json_and_text() {
        let c = change(Op::Add, "conductor", "internet", &[Elem::set(vec![ip("10.0.0.2"), Val::Ifname("eth0".into())])]);
        assert_eq!(c.text, r#"nft add element inet conductor internet { 10.0.0.2 . "eth0" }"#);
        let j = serde_json::to_value(&c.obj).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"add": {"element": {"family": "inet", "table": "conductor", "name": "internet",
                "elem": [{"concat": ["10.0.0.2", "eth0"]}]}}})
        );

        let m = Elem::map(vec![Val::Proto(Proto::Tcp), Val::Port(3000)], vec![ip("192.168.1.2")]);
        let c = change(Op::Create, "conductor", "ports_addr", std::slice::from_ref(&m));
        assert_eq!(c.text, "nft create element inet conductor ports_addr { tcp . 3000 : 192.168.1.2 }");
        let j = serde_json::to_value(&c.obj).unwrap();
        assert_eq!(j["create"]["element"]["elem"], serde_json::json!([[{"concat": ["tcp", 3000]}, "192.168.1.2"]]));

        let c = change(Op::Delete, "conductor", "ports_addr", &[m.key_only()]);
        assert_eq!(c.text, "nft delete element inet conductor ports_addr { tcp . 3000 }");
        assert_eq!(
            serde_json::to_value(&c.obj).unwrap()["delete"]["element"]["elem"],
            serde_json::json!([{"concat": ["tcp", 3000]}])
        );
    }

    #[test]
    fn elements_parse_back_from_listing_json() {
        let key = [SetType::InetProto, SetType::InetService];
        let e: Expression = serde_json::from_str(r#"[{"concat": ["udp", 53]}, 5353]"#).unwrap();
        assert_eq!(
            Elem::parse(&e, &key, Some(&[SetType::InetService])),
            Some(Elem::map(vec![Val::Proto(Proto::Udp), Val::Port(53)], vec![Val::Port(5353)]))
        );
        let e: Expression = serde_json::from_str(r#"{"elem": {"val": "10.1.2.3", "comment": "x"}}"#).unwrap();
        assert_eq!(Elem::parse(&e, &[SetType::Ipv4Addr], None), Some(Elem::set(vec![ip("10.1.2.3")])));
        let e: Expression = serde_json::from_str(r#"{"concat": ["10.1.2.3", "10.1.2.7"]}"#).unwrap();
        let el = Elem::parse(&e, &[SetType::Ipv4Addr, SetType::Ipv4Addr], None).unwrap();
        assert!(el.mentions("10.1.2.7".parse().unwrap()) && !el.mentions("10.1.2.8".parse().unwrap()));
        // A value of the wrong shape is not guessed at.
        let e: Expression = serde_json::from_str(r#""not-an-ip""#).unwrap();
        assert_eq!(Elem::parse(&e, &[SetType::Ipv4Addr], None), None);
    }
}

//! IPv4 routes of the main table: add (a default route via a gateway, or any), list, and find the
//! interface of the default route (the one `-i` masquerades out of).

use std::net::Ipv4Addr;

use conductor_sys::EXPLAIN;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::cidr::Ipv4Net;
use crate::error::Result;
use crate::link;
use crate::netlink::Netlink;

/// One IPv4 route of the main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The destination; `0.0.0.0/0` for the default route.
    pub dst: Ipv4Net,
    pub gateway: Option<Ipv4Addr>,
    /// The output interface's index (for a multipath route, its first hop's).
    pub oif: Option<u32>,
    /// RTA_PRIORITY, the metric: lower wins.
    pub metric: u32,
    /// The preferred source address, if set.
    pub prefsrc: Option<Ipv4Addr>,
}

impl Route {
    pub fn is_default(&self) -> bool {
        self.dst.prefix() == 0
    }
}

pub(crate) fn message(dst: Ipv4Net, gateway: Option<Ipv4Addr>, oif: Option<u32>) -> RouteMessage {
    let mut msg = RouteMessage::default();
    msg.header.address_family = AddressFamily::Inet;
    msg.header.destination_prefix_length = dst.prefix();
    msg.header.table = RouteHeader::RT_TABLE_MAIN;
    msg.header.protocol = RouteProtocol::Boot; // what `ip route add` uses
    msg.header.scope = if gateway.is_some() { RouteScope::Universe } else { RouteScope::Link };
    msg.header.kind = RouteType::Unicast;
    if dst.prefix() > 0 {
        msg.attributes.push(RouteAttribute::Destination(RouteAddress::Inet(dst.network().addr())));
    }
    if let Some(gw) = gateway {
        msg.attributes.push(RouteAttribute::Gateway(RouteAddress::Inet(gw)));
    }
    if let Some(i) = oif {
        msg.attributes.push(RouteAttribute::Oif(i));
    }
    msg
}

/// Add a route to `dst` via `gateway` and/or out of link `dev`.
pub fn add(nl: &mut Netlink, dst: Ipv4Net, gateway: Option<Ipv4Addr>, dev: Option<&str>) -> Result<()> {
    let oif = match dev {
        Some(name) => Some(link::get(nl, name)?.index),
        None => None,
    };
    tracing::debug!(target: EXPLAIN, step = "RTM_NEWROUTE", dst = %dst.network(), gateway = ?gateway, dev = dev.unwrap_or(""));
    let what = match (gateway, dev) {
        (Some(gw), Some(d)) => format!("add route {} via {gw} dev {d}", dst.network()),
        (Some(gw), None) => format!("add route {} via {gw}", dst.network()),
        (None, Some(d)) => format!("add route {} dev {d}", dst.network()),
        (None, None) => format!("add route {}", dst.network()),
    };
    nl.request(RouteNetlinkMessage::NewRoute(message(dst, gateway, oif)), NLM_F_CREATE | NLM_F_EXCL, &what)
}

/// Add the default route via `gateway` (optionally pinned to link `dev`).
pub fn add_default(nl: &mut Netlink, gateway: Ipv4Addr, dev: Option<&str>) -> Result<()> {
    add(nl, Ipv4Net::new(Ipv4Addr::UNSPECIFIED, 0).expect("valid"), Some(gateway), dev)
}

/// The IPv4 unicast routes of the main table.
pub fn list(nl: &mut Netlink) -> Result<Vec<Route>> {
    let mut req = RouteMessage::default();
    req.header.address_family = AddressFamily::Inet;
    let msgs = nl.dump(RouteNetlinkMessage::GetRoute(req), "list routes")?;
    Ok(msgs
        .iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewRoute(r) => from_message(r),
            _ => None,
        })
        .collect())
}

fn from_message(m: &RouteMessage) -> Option<Route> {
    if m.header.address_family != AddressFamily::Inet || m.header.kind != RouteType::Unicast {
        return None;
    }
    let mut table = u32::from(m.header.table);
    let mut dst = Ipv4Addr::UNSPECIFIED;
    let mut route = Route { dst: Ipv4Net::new(dst, 0).ok()?, gateway: None, oif: None, metric: 0, prefsrc: None };
    for a in &m.attributes {
        match a {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(RouteAddress::Inet(ip)) => dst = *ip,
            RouteAttribute::Gateway(RouteAddress::Inet(ip)) => route.gateway = Some(*ip),
            RouteAttribute::PrefSource(RouteAddress::Inet(ip)) => route.prefsrc = Some(*ip),
            RouteAttribute::Oif(i) => route.oif = Some(*i),
            RouteAttribute::Priority(p) => route.metric = *p,
            RouteAttribute::MultiPath(hops) if route.oif.is_none() => {
                if let Some(h) = hops.first() {
                    route.oif = Some(h.interface_index);
                    route.gateway = route.gateway.or_else(|| {
                        h.attributes.iter().find_map(|a| match a {
                            RouteAttribute::Gateway(RouteAddress::Inet(ip)) => Some(*ip),
                            _ => None,
                        })
                    });
                }
            }
            _ => {}
        }
    }
    if table != u32::from(RouteHeader::RT_TABLE_MAIN) {
        return None;
    }
    route.dst = Ipv4Net::new(dst, m.header.destination_prefix_length).ok()?;
    Some(route)
}

/// The name of the interface the default route leaves through (lowest metric wins), if there is
/// a default route: what `-i` masquerades out of.
pub fn default_interface(nl: &mut Netlink) -> Result<Option<String>> {
    let best = list(nl)?.into_iter().filter(|r| r.is_default() && r.oif.is_some()).min_by_key(|r| r.metric);
    match best.and_then(|r| r.oif) {
        Some(i) => Ok(link::by_index(nl, i)?.map(|l| l.name)),
        None => Ok(None),
    }
}

/// The destinations the namespace reaches other than by its default route: networks a new
/// container subnet should not overlap (for [`crate::Allocator::allocate_excluding`]).
pub fn connected_networks(nl: &mut Netlink) -> Result<Vec<Ipv4Net>> {
    Ok(list(nl)?.into_iter().filter(|r| !r.is_default()).map(|r| r.dst.network()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::encode;
    use netlink_packet_core::{NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_REQUEST};

    #[test]
    fn default_route_message() {
        let gw = Ipv4Addr::new(192, 168, 1, 1);
        let msg = message("0.0.0.0/0".parse().unwrap(), Some(gw), Some(4));
        let buf = encode(RouteNetlinkMessage::NewRoute(msg), NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, 9);
        let back: NetlinkMessage<RouteNetlinkMessage> = NetlinkMessage::deserialize(&buf).unwrap();
        assert_eq!(back.header.message_type, 24); // RTM_NEWROUTE
        let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(m)) = back.payload else { panic!() };
        assert_eq!(m.header.destination_prefix_length, 0);
        assert_eq!(m.header.table, RouteHeader::RT_TABLE_MAIN);
        assert_eq!(m.header.scope, RouteScope::Universe);
        assert_eq!(m.header.kind, RouteType::Unicast);
        assert!(!m.attributes.iter().any(|a| matches!(a, RouteAttribute::Destination(_))));
        assert!(m.attributes.contains(&RouteAttribute::Gateway(RouteAddress::Inet(gw))));
        assert!(m.attributes.contains(&RouteAttribute::Oif(4)));
        let r = from_message(&m).unwrap();
        assert!(r.is_default());
        assert_eq!(r.gateway, Some(gw));
        assert_eq!(r.oif, Some(4));
    }

    #[test]
    fn link_route_message() {
        let msg = message("10.1.2.3/24".parse().unwrap(), None, Some(2));
        assert_eq!(msg.header.scope, RouteScope::Link);
        assert!(msg.attributes.contains(&RouteAttribute::Destination(RouteAddress::Inet(Ipv4Addr::new(10, 1, 2, 0)))));
        let r = from_message(&msg).unwrap();
        assert_eq!(r.dst.to_string(), "10.1.2.0/24");
        assert!(!r.is_default());
    }

    #[test]
    fn other_tables_are_skipped() {
        let mut msg = message("10.0.0.0/8".parse().unwrap(), None, Some(2));
        msg.header.table = 255; // local
        assert_eq!(from_message(&msg), None);
        let mut msg = message("10.0.0.0/8".parse().unwrap(), None, Some(2));
        msg.header.table = 252;
        msg.attributes.push(RouteAttribute::Table(1000));
        assert_eq!(from_message(&msg), None);
    }
}

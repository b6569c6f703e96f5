//! IPv4 addresses on links: add, delete, list.

use std::net::{IpAddr, Ipv4Addr};

use conductor_sys::EXPLAIN;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use nix::errno::Errno;

use crate::cidr::Ipv4Net;
use crate::error::Result;
use crate::link;
use crate::netlink::Netlink;

/// One IPv4 address on a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// The link's index.
    pub index: u32,
    /// The address with its prefix length, e.g. `192.168.1.1/24`.
    pub addr: Ipv4Net,
    /// IFA_LABEL: the link's name (or an alias label).
    pub label: Option<String>,
}

pub(crate) fn message(index: u32, addr: Ipv4Net) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.family = AddressFamily::Inet;
    msg.header.prefix_len = addr.prefix();
    msg.header.index = index;
    msg.header.scope = if addr.addr().is_loopback() { AddressScope::Host } else { AddressScope::Universe };
    msg.attributes.push(AddressAttribute::Local(IpAddr::V4(addr.addr())));
    msg.attributes.push(AddressAttribute::Address(IpAddr::V4(addr.addr())));
    msg
}

/// Add `addr` (address/prefix, e.g. `192.168.1.1/24`) to the link `link`. The kernel adds the
/// subnet's route on that link by itself.
pub fn add(nl: &mut Netlink, link: &str, addr: Ipv4Net) -> Result<()> {
    let index = link::get(nl, link)?.index;
    tracing::debug!(target: EXPLAIN, step = "RTM_NEWADDR", link, address = %addr);
    nl.request(
        RouteNetlinkMessage::NewAddress(message(index, addr)),
        NLM_F_CREATE | NLM_F_EXCL,
        &format!("add address {addr} to {link}"),
    )
}

/// Remove `addr` from the link `link`. Returns false when it was not there (nor the link).
pub fn delete(nl: &mut Netlink, link: &str, addr: Ipv4Net) -> Result<bool> {
    let Some(l) = link::find(nl, link)? else { return Ok(false) };
    tracing::debug!(target: EXPLAIN, step = "RTM_DELADDR", link, address = %addr);
    match nl.request(RouteNetlinkMessage::DelAddress(message(l.index, addr)), 0, &format!("delete address {addr} from {link}")) {
        Ok(()) => Ok(true),
        Err(e) if matches!(e.errno(), Some(Errno::EADDRNOTAVAIL | Errno::ENODEV | Errno::ENOENT)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The IPv4 addresses of the namespace, or of one link.
pub fn list(nl: &mut Netlink, link: Option<&str>) -> Result<Vec<Address>> {
    let index = match link {
        Some(name) => Some(link::get(nl, name)?.index),
        None => None,
    };
    let mut req = AddressMessage::default();
    req.header.family = AddressFamily::Inet;
    let msgs = nl.dump(RouteNetlinkMessage::GetAddress(req), "list addresses")?;
    Ok(msgs
        .iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewAddress(a) => from_message(a),
            _ => None,
        })
        .filter(|a| index.is_none() || index == Some(a.index))
        .collect())
}

fn from_message(m: &AddressMessage) -> Option<Address> {
    if m.header.family != AddressFamily::Inet {
        return None;
    }
    let mut local = None;
    let mut address = None;
    let mut label = None;
    for a in &m.attributes {
        match a {
            AddressAttribute::Local(IpAddr::V4(ip)) => local = Some(*ip),
            AddressAttribute::Address(IpAddr::V4(ip)) => address = Some(*ip),
            AddressAttribute::Label(l) => label = Some(l.clone()),
            _ => {}
        }
    }
    let ip: Ipv4Addr = local.or(address)?;
    Some(Address { index: m.header.index, addr: Ipv4Net::new(ip, m.header.prefix_len).ok()?, label })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::encode;
    use netlink_packet_core::{NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_REQUEST};

    #[test]
    fn add_message() {
        let net: Ipv4Net = "192.168.1.1/24".parse().unwrap();
        let buf = encode(RouteNetlinkMessage::NewAddress(message(5, net)), NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE, 3);
        let back: NetlinkMessage<RouteNetlinkMessage> = NetlinkMessage::deserialize(&buf).unwrap();
        assert_eq!(back.header.message_type, 20); // RTM_NEWADDR
        let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(m)) = back.payload else { panic!() };
        assert_eq!(m.header.family, AddressFamily::Inet);
        assert_eq!(m.header.prefix_len, 24);
        assert_eq!(m.header.index, 5);
        assert_eq!(m.header.scope, AddressScope::Universe);
        let ip = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 1));
        assert!(m.attributes.contains(&AddressAttribute::Local(ip)));
        assert!(m.attributes.contains(&AddressAttribute::Address(ip)));
        assert_eq!(from_message(&m), Some(Address { index: 5, addr: net, label: None }));
    }

    #[test]
    fn loopback_is_host_scoped() {
        let m = message(1, "127.0.0.1/8".parse().unwrap());
        assert_eq!(m.header.scope, AddressScope::Host);
    }
}

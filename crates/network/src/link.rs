//! Links: create veth pairs, set up/down, MTU, rename, move into another network namespace,
//! delete, look up by name or index. Each function works in the namespace of the [`Netlink`]
//! socket it is given.

use std::os::fd::AsRawFd;

use conductor_sys::EXPLAIN;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use nix::errno::Errno;

use crate::error::{Error, Result};
use crate::names;
use crate::netlink::Netlink;
use crate::netns::Netns;

/// What the kernel says about one link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// IFF_UP: administratively up.
    pub up: bool,
    /// IFF_LOWER_UP: the carrier is there (for a veth: its peer is up too).
    pub lower_up: bool,
    pub mtu: Option<u32>,
    /// The driver: "veth", "bridge", ... (None for plain devices such as `lo`).
    pub kind: Option<String>,
    /// IFLA_LINK: for a veth, the peer's index (in the peer's namespace).
    pub peer_index: Option<u32>,
    /// IFLA_LINK_NETNSID: set when the peer lives in another namespace.
    pub link_netnsid: Option<i32>,
    pub mac: Option<Vec<u8>>,
}

impl Link {
    fn from_message(m: &LinkMessage) -> Link {
        let mut link = Link {
            index: m.header.index,
            name: String::new(),
            up: m.header.flags.contains(LinkFlags::Up),
            lower_up: m.header.flags.contains(LinkFlags::LowerUp),
            mtu: None,
            kind: None,
            peer_index: None,
            link_netnsid: None,
            mac: None,
        };
        for a in &m.attributes {
            match a {
                LinkAttribute::IfName(n) => link.name = n.clone(),
                LinkAttribute::Mtu(v) => link.mtu = Some(*v),
                LinkAttribute::Link(v) => link.peer_index = Some(*v),
                LinkAttribute::LinkNetNsId(v) => link.link_netnsid = Some(*v),
                LinkAttribute::Address(v) => link.mac = Some(v.clone()),
                LinkAttribute::LinkInfo(infos) => {
                    for i in infos {
                        if let LinkInfo::Kind(k) = i {
                            link.kind = Some(k.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
        link
    }
}

/// A veth pair to create: `name` here, `peer` here or directly in `peer_netns`.
#[derive(Debug, Clone, Copy)]
pub struct VethSpec<'a> {
    pub name: &'a str,
    pub peer: &'a str,
    /// Create the peer directly inside this namespace: it never exists in ours, so nothing can
    /// be left half-moved, and its name cannot clash with a link of ours.
    pub peer_netns: Option<&'a Netns>,
    pub mtu: Option<u32>,
}

impl<'a> VethSpec<'a> {
    pub fn new(name: &'a str, peer: &'a str) -> VethSpec<'a> {
        VethSpec { name, peer, peer_netns: None, mtu: None }
    }
}

/// Create a veth pair (RTM_NEWLINK, kind veth, NLM_F_CREATE|NLM_F_EXCL). Both ends start down.
pub fn create_veth(nl: &mut Netlink, spec: &VethSpec<'_>) -> Result<()> {
    names::validate(spec.name)?;
    names::validate(spec.peer)?;
    let ns_file = spec.peer_netns.map(Netns::ns_file).transpose()?;
    tracing::debug!(target: EXPLAIN, step = "RTM_NEWLINK", kind = "veth", name = spec.name, peer = spec.peer,
        peer_netns = spec.peer_netns.map(Netns::label).unwrap_or("(this one)"), mtu = ?spec.mtu);
    let msg = veth_message(spec, ns_file.as_ref().map(|f| f.as_raw_fd()));
    nl.request(
        RouteNetlinkMessage::NewLink(msg),
        NLM_F_CREATE | NLM_F_EXCL,
        &format!("create veth {} (peer {})", spec.name, spec.peer),
    )
}

pub(crate) fn veth_message(spec: &VethSpec<'_>, peer_ns_fd: Option<i32>) -> LinkMessage {
    let mut peer = LinkMessage::default();
    peer.attributes.push(LinkAttribute::IfName(spec.peer.to_string()));
    if let Some(mtu) = spec.mtu {
        peer.attributes.push(LinkAttribute::Mtu(mtu));
    }
    if let Some(fd) = peer_ns_fd {
        peer.attributes.push(LinkAttribute::NetNsFd(fd));
    }
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(spec.name.to_string()));
    if let Some(mtu) = spec.mtu {
        msg.attributes.push(LinkAttribute::Mtu(mtu));
    }
    msg.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
    ]));
    msg
}

/// A message naming the link `name` (index 0: the kernel looks the name up).
fn by_name(name: &str) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    msg
}

pub(crate) fn set_up_message(name: &str, up: bool) -> LinkMessage {
    let mut msg = by_name(name);
    msg.header.change_mask = LinkFlags::Up;
    if up {
        msg.header.flags = LinkFlags::Up;
    }
    msg
}

/// Set the link administratively up.
pub fn set_up(nl: &mut Netlink, name: &str) -> Result<()> {
    tracing::debug!(target: EXPLAIN, step = "RTM_SETLINK", link = name, set = "up");
    nl.request(RouteNetlinkMessage::SetLink(set_up_message(name, true)), 0, &format!("set link {name} up"))
}

/// Set the link administratively down.
pub fn set_down(nl: &mut Netlink, name: &str) -> Result<()> {
    tracing::debug!(target: EXPLAIN, step = "RTM_SETLINK", link = name, set = "down");
    nl.request(RouteNetlinkMessage::SetLink(set_up_message(name, false)), 0, &format!("set link {name} down"))
}

/// Set the link's MTU.
pub fn set_mtu(nl: &mut Netlink, name: &str, mtu: u32) -> Result<()> {
    tracing::debug!(target: EXPLAIN, step = "RTM_SETLINK", link = name, mtu);
    let mut msg = by_name(name);
    msg.attributes.push(LinkAttribute::Mtu(mtu));
    nl.request(RouteNetlinkMessage::SetLink(msg), 0, &format!("set the MTU of link {name} to {mtu}"))
}

/// Rename a link (it must be down, as for `ip link set NAME name NEW`).
pub fn rename(nl: &mut Netlink, name: &str, new_name: &str) -> Result<()> {
    names::validate(new_name)?;
    let index = get(nl, name)?.index;
    tracing::debug!(target: EXPLAIN, step = "RTM_SETLINK", link = name, rename_to = new_name);
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    msg.attributes.push(LinkAttribute::IfName(new_name.to_string()));
    nl.request(RouteNetlinkMessage::SetLink(msg), 0, &format!("rename link {name} to {new_name}"))
}

pub(crate) fn move_message(name: &str, ns_fd: i32) -> LinkMessage {
    let mut msg = by_name(name);
    msg.attributes.push(LinkAttribute::NetNsFd(ns_fd));
    msg
}

/// Move a link into the network namespace `ns` (IFLA_NET_NS_FD; a pidfd handle is first turned
/// into the namespace's file). The link goes down and loses its addresses on the way.
pub fn move_to_netns(nl: &mut Netlink, name: &str, ns: &Netns) -> Result<()> {
    let f = ns.ns_file()?;
    tracing::debug!(target: EXPLAIN, step = "RTM_SETLINK", link = name, move_to_netns = ns.label());
    nl.request(
        RouteNetlinkMessage::SetLink(move_message(name, f.as_raw_fd())),
        0,
        &format!("move link {name} into {}", ns.label()),
    )
}

/// Move a link into the network namespace of process `pid` (IFLA_NET_NS_PID). Prefer
/// [`move_to_netns`] with a pidfd-based [`Netns`]: a pid can be reused.
pub fn move_to_netns_pid(nl: &mut Netlink, name: &str, pid: u32) -> Result<()> {
    tracing::debug!(target: EXPLAIN, step = "RTM_SETLINK", link = name, move_to_netns_of_pid = pid);
    let mut msg = by_name(name);
    msg.attributes.push(LinkAttribute::NetNsPid(pid));
    nl.request(RouteNetlinkMessage::SetLink(msg), 0, &format!("move link {name} into the network namespace of pid {pid}"))
}

/// Delete a link (for a veth, its peer goes with it). Returns false when there was no such link,
/// so it can be called again safely.
pub fn delete(nl: &mut Netlink, name: &str) -> Result<bool> {
    tracing::debug!(target: EXPLAIN, step = "RTM_DELLINK", link = name);
    match nl.request(RouteNetlinkMessage::DelLink(by_name(name)), 0, &format!("delete link {name}")) {
        Ok(()) => Ok(true),
        Err(e) if e.errno() == Some(Errno::ENODEV) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The link named `name`, if there is one.
pub fn find(nl: &mut Netlink, name: &str) -> Result<Option<Link>> {
    if names::validate(name).is_err() {
        return Ok(None);
    }
    lookup(nl, by_name(name), &format!("look up link {name}"))
}

/// The link named `name`, or a NotFound error.
pub fn get(nl: &mut Netlink, name: &str) -> Result<Link> {
    find(nl, name)?.ok_or_else(|| Error::NotFound(format!("link {name}")))
}

/// The link with index `index`, if there is one.
pub fn by_index(nl: &mut Netlink, index: u32) -> Result<Option<Link>> {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    lookup(nl, msg, &format!("look up link #{index}"))
}

fn lookup(nl: &mut Netlink, msg: LinkMessage, what: &str) -> Result<Option<Link>> {
    match nl.get(RouteNetlinkMessage::GetLink(msg), what) {
        Ok(RouteNetlinkMessage::NewLink(m)) => Ok(Some(Link::from_message(&m))),
        Ok(other) => Err(Error::Decode { what: what.into(), reason: format!("unexpected reply {other:?}") }),
        Err(e) if e.errno() == Some(Errno::ENODEV) => Ok(None),
        Err(e) => Err(e),
    }
}

/// All links of the namespace.
pub fn list(nl: &mut Netlink) -> Result<Vec<Link>> {
    let msgs = nl.dump(RouteNetlinkMessage::GetLink(LinkMessage::default()), "list links")?;
    Ok(msgs
        .iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewLink(l) => Some(Link::from_message(l)),
            _ => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::encode;
    use netlink_packet_core::{NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_REQUEST};

    fn roundtrip(msg: RouteNetlinkMessage) -> (u16, RouteNetlinkMessage) {
        let buf = encode(msg, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, 1);
        let back: NetlinkMessage<RouteNetlinkMessage> = NetlinkMessage::deserialize(&buf).unwrap();
        let NetlinkPayload::InnerMessage(inner) = back.payload else { panic!("not an inner message") };
        (back.header.message_type, inner)
    }

    #[test]
    fn veth_message_nests_the_peer() {
        let spec = VethSpec { mtu: Some(1400), ..VethSpec::new("eg-outside", "eg-inside") };
        let msg = veth_message(&spec, Some(42));
        let (ty, back) = roundtrip(RouteNetlinkMessage::NewLink(msg));
        assert_eq!(ty, 16); // RTM_NEWLINK
        let RouteNetlinkMessage::NewLink(m) = back else { panic!() };
        assert!(m.attributes.contains(&LinkAttribute::IfName("eg-outside".into())));
        assert!(m.attributes.contains(&LinkAttribute::Mtu(1400)));
        let infos = m
            .attributes
            .iter()
            .find_map(|a| if let LinkAttribute::LinkInfo(i) = a { Some(i) } else { None })
            .expect("IFLA_LINKINFO");
        assert!(infos.contains(&LinkInfo::Kind(InfoKind::Veth)));
        let peer = infos
            .iter()
            .find_map(|i| if let LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))) = i { Some(p) } else { None })
            .expect("VETH_INFO_PEER");
        assert!(peer.attributes.contains(&LinkAttribute::IfName("eg-inside".into())));
        assert!(peer.attributes.contains(&LinkAttribute::NetNsFd(42)));
        assert!(peer.attributes.contains(&LinkAttribute::Mtu(1400)));
    }

    #[test]
    fn veth_without_netns_has_no_fd() {
        let msg = veth_message(&VethSpec::new("a", "b"), None);
        let text = format!("{msg:?}");
        assert!(!text.contains("NetNsFd"), "{text}");
    }

    #[test]
    fn up_down_messages() {
        let up = set_up_message("eg-outside", true);
        assert_eq!(up.header.flags, LinkFlags::Up);
        assert_eq!(up.header.change_mask, LinkFlags::Up);
        assert_eq!(up.header.index, 0);
        let down = set_up_message("eg-outside", false);
        assert_eq!(down.header.flags, LinkFlags::empty());
        assert_eq!(down.header.change_mask, LinkFlags::Up);
        let (ty, _) = roundtrip(RouteNetlinkMessage::SetLink(up));
        assert_eq!(ty, 19); // RTM_SETLINK
    }

    #[test]
    fn move_message_carries_the_fd() {
        let m = move_message("eg-inside", 7);
        assert_eq!(m.attributes, vec![LinkAttribute::IfName("eg-inside".into()), LinkAttribute::NetNsFd(7)]);
    }

    #[test]
    fn link_from_message() {
        let mut m = LinkMessage::default();
        m.header.index = 5;
        m.header.flags = LinkFlags::Up | LinkFlags::LowerUp;
        m.attributes = vec![
            LinkAttribute::IfName("eg-outside".into()),
            LinkAttribute::Mtu(1500),
            LinkAttribute::Link(2),
            LinkAttribute::LinkNetNsId(0),
            LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Veth)]),
        ];
        let l = Link::from_message(&m);
        assert_eq!(l.index, 5);
        assert_eq!(l.name, "eg-outside");
        assert!(l.up && l.lower_up);
        assert_eq!(l.mtu, Some(1500));
        assert_eq!(l.kind.as_deref(), Some("veth"));
        assert_eq!(l.peer_index, Some(2));
        assert_eq!(l.link_netnsid, Some(0));
    }
}

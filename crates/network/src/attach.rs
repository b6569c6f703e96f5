//! The seed's default `addnetwork`: a veth pair between the host and the container.
//!
//! ```text
//!  host (the caller's netns)                     container's netns
//!  <name>-outside  host_ip/24  <---- veth ---->  <name>-inside  container_ip/24
//!                                                lo up, default via host_ip
//! ```
//!
//! Internet access (`-i`), port maps (`-e`) and peering are nftables' business, not this one's.

use std::net::Ipv4Addr;

use crate::addr;
use crate::alloc::Allocation;
use crate::cidr::Ipv4Net;
use crate::error::{Error, Result};
use crate::link::{self, VethSpec};
use crate::netlink::Netlink;
use crate::netns::{in_netns, Netns};
use crate::route;

/// What [`attach`] set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    /// The host end's name and index (in the caller's namespace).
    pub host_if: String,
    pub host_index: u32,
    /// The container end's name and index (in the container's namespace).
    pub container_if: String,
    pub container_index: u32,
    /// `host_ip/prefix` on the host end.
    pub host_addr: Ipv4Net,
    /// `container_ip/prefix` on the container end.
    pub container_addr: Ipv4Net,
    /// The container's default gateway (the host end's address).
    pub gateway: Ipv4Addr,
}

/// Connect the container whose network namespace is `container` to the caller's namespace (the
/// host), as `alloc` says: the veth `alloc.ifnames.outside` here and `alloc.ifnames.inside`
/// created directly inside the container, both up, `lo` up inside, `host_ip/prefix` on the host
/// end, `container_ip/prefix` on the container end, and the container's default route via
/// `host_ip`.
///
/// All or nothing: if any step fails, the pair is deleted again (the peer goes with the host end)
/// and the error names the failing step. An existing link of the same name is an error, never
/// taken over or deleted.
pub fn attach(container: &Netns, alloc: &Allocation) -> Result<Attached> {
    let host_if = alloc.ifnames.outside.as_str();
    let container_if = alloc.ifnames.inside.as_str();
    let mut nl = Netlink::open()?;
    link::create_veth(&mut nl, &VethSpec { peer_netns: Some(container), ..VethSpec::new(host_if, container_if) })?;
    match configure(&mut nl, container, alloc) {
        Ok(a) => Ok(a),
        Err(e) => {
            if let Err(undo) = link::delete(&mut nl, host_if) {
                tracing::warn!(link = host_if, error = %undo, "could not remove the half-made veth pair");
            }
            Err(e)
        }
    }
}

fn configure(nl: &mut Netlink, container: &Netns, alloc: &Allocation) -> Result<Attached> {
    let host_if = alloc.ifnames.outside.as_str();
    let container_if = alloc.ifnames.inside.as_str();
    let host_addr = alloc.host_cidr();
    let container_addr = alloc.container_cidr();
    if !alloc.subnet.contains(alloc.host_ip) || !alloc.subnet.contains(alloc.container_ip) || alloc.host_ip == alloc.container_ip
    {
        return Err(Error::Invalid(format!(
            "allocation of {}: {} and {} must be two addresses of {}",
            alloc.name, alloc.host_ip, alloc.container_ip, alloc.subnet
        )));
    }

    addr::add(nl, host_if, host_addr)?;
    link::set_up(nl, host_if)?;
    let host_index = link::get(nl, host_if)?.index;

    let container_index = in_netns(container, || {
        let mut nl = Netlink::open()?;
        link::set_up(&mut nl, "lo")?;
        addr::add(&mut nl, container_if, container_addr)?;
        link::set_up(&mut nl, container_if)?;
        route::add_default(&mut nl, alloc.host_ip, Some(container_if))?;
        Ok(link::get(&mut nl, container_if)?.index)
    })?;

    Ok(Attached {
        host_if: host_if.to_string(),
        host_index,
        container_if: container_if.to_string(),
        container_index,
        host_addr,
        container_addr,
        gateway: alloc.host_ip,
    })
}

/// Remove a container's veth pair from the caller's namespace by its host end's name
/// (`alloc.ifnames.outside`; `IfNames::for_container(name).outside` when the allocation is
/// lost). The container end goes with it. Returns false when there was nothing to remove:
/// calling it twice is fine. Refuses to delete a link that is not a veth.
pub fn detach(host_if: &str) -> Result<bool> {
    let mut nl = Netlink::open()?;
    let Some(l) = link::find(&mut nl, host_if)? else { return Ok(false) };
    if l.kind.as_deref() != Some("veth") {
        return Err(Error::Invalid(format!(
            "refusing to delete link {host_if}: it is a {}, not a container's veth",
            l.kind.as_deref().unwrap_or("device")
        )));
    }
    link::delete(&mut nl, host_if)
}

//! Leak checks for networked engine tests (tests/network.rs, tests/stack.rs): no link,
//! firewall element, allocation or container file is left once everything is stopped.

use std::net::Ipv4Addr;

use super::engine::Engine;
use super::lan::Lan;

/// The allocator's records (`{}` when none).
pub fn allocations(e: &Engine) -> serde_json::Value {
    std::fs::read(e.dir.join("data/network/allocations.json"))
        .map(|b| serde_json::from_slice::<serde_json::Value>(&b).unwrap()["allocations"].clone())
        .unwrap_or(serde_json::json!({}))
}

/// Nothing of any container's network is left: links, firewall elements, allocations, files.
pub fn assert_network_clean(e: &Engine, lan: &Lan) {
    assert_eq!(lan.host_links(), ["lan0", "lo"], "links left in the host namespace");
    assert!(lan.firewall_empty(), "firewall elements left: {:?}", lan.firewall());
    assert_eq!(allocations(e), serde_json::json!({}), "allocations left");
    e.assert_clean();
}

/// A route in `ns` to `dst` via `via` (the other host routing container subnets to the host).
pub fn add_route(ns: &conductor_network::Netns, dst: &str, via: Ipv4Addr) {
    conductor_network::in_netns(ns, || {
        let mut nl = conductor_network::Netlink::open()?;
        conductor_network::route::add(&mut nl, dst.parse().unwrap(), Some(via), None)
    })
    .unwrap();
}

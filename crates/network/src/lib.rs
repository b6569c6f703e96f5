//! Container networking: the kernel plumbing over rtnetlink (veth pairs, addresses, routes,
//! moving links between network namespaces), address allocation, and the seed's `addnetwork`
//! picture as one call ([`attach()`] / [`detach()`]).
//!
//! Everything talks to the kernel directly: no `ip` is spawned. Each netlink change emits a
//! `tracing` event with target `conductor::explain` so that `--explain` can show it.
//!
//! Work inside another network namespace goes through [`netns::in_netns`]: the closure runs on a
//! dedicated thread that joined the namespace, so the caller's own namespace never changes.

pub mod addr;
pub mod alloc;
pub mod attach;
pub mod cidr;
pub mod error;
pub mod firewall;
pub mod link;
pub mod names;
pub mod netlink;
pub mod netns;
pub mod route;

pub use alloc::{Allocation, Allocator, PoolConfig};
pub use attach::{attach, detach, Attached};
pub use cidr::Ipv4Net;
pub use error::{Error, Result};
pub use names::IfNames;
pub use netlink::Netlink;
pub use netns::{in_netns, Netns};

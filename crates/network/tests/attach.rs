//! Root tests of `attach` / `detach`: the seed's addnetwork picture between a namespace standing
//! in for the host and one standing in for the container. The machine's own interfaces are never
//! touched (see tests/common).

mod common;

use std::net::Ipv4Addr;

use common::*;
use conductor_network::{addr, attach, detach, in_netns, link, route, Allocation, Allocator, Error, IfNames, Netns, PoolConfig};

fn seed_allocation(dir: &TempDir, name: &str) -> Allocation {
    Allocator::new(&dir.0, PoolConfig::default()).unwrap().allocate(name).unwrap()
}

#[test]
fn attach_builds_the_seeds_picture_and_detach_removes_it() {
    let Some(()) = need_root("attach_builds_the_seeds_picture_and_detach_removes_it") else { return };
    let host = Netns::create().unwrap();
    let container = Netns::create().unwrap();
    let dir = TempDir::new("seed");
    let alloc = seed_allocation(&dir, "eg");
    assert_eq!((alloc.host_ip, alloc.container_ip), (Ipv4Addr::new(192, 168, 1, 1), Ipv4Addr::new(192, 168, 1, 2)));

    let a = in_netns(&host, || attach(&container, &alloc)).unwrap();
    assert_eq!(a.host_if, "eg-outside");
    assert_eq!(a.container_if, "eg-inside");
    assert_eq!(a.host_addr.to_string(), "192.168.1.1/24");
    assert_eq!(a.container_addr.to_string(), "192.168.1.2/24");

    // The host side: eg-outside, a veth, up, with 192.168.1.1/24; nothing else new.
    assert_eq!(link_names(&host), ["eg-outside", "lo"]);
    let (out, out_addrs) = nl_in(&host, |nl| Ok((link::get(nl, "eg-outside")?, addr::list(nl, Some("eg-outside"))?)));
    assert_eq!(out.kind.as_deref(), Some("veth"));
    assert!(out.up && out.lower_up, "{out:?}");
    assert!(out.link_netnsid.is_some(), "the peer lives in another namespace: {out:?}");
    assert_eq!(out.index, a.host_index);
    assert_eq!(out_addrs.iter().map(|x| x.addr.to_string()).collect::<Vec<_>>(), ["192.168.1.1/24"]);

    // The container side: eg-inside up with 192.168.1.2/24, lo up, default route via 192.168.1.1.
    assert_eq!(link_names(&container), ["eg-inside", "lo"]);
    let (inside, lo, in_addrs, routes) = nl_in(&container, |nl| {
        Ok((link::get(nl, "eg-inside")?, link::get(nl, "lo")?, addr::list(nl, Some("eg-inside"))?, route::list(nl)?))
    });
    assert!(inside.up && inside.lower_up, "{inside:?}");
    assert!(lo.up);
    assert_eq!(inside.index, a.container_index);
    assert_eq!(inside.peer_index, Some(out.index), "eg-inside's peer is eg-outside");
    assert_eq!(in_addrs.iter().map(|x| x.addr.to_string()).collect::<Vec<_>>(), ["192.168.1.2/24"]);
    let default: Vec<_> = routes.iter().filter(|r| r.is_default()).collect();
    assert_eq!(default.len(), 1, "{routes:?}");
    assert_eq!(default[0].gateway, Some(Ipv4Addr::new(192, 168, 1, 1)));
    assert_eq!(default[0].oif, Some(inside.index));
    // The same, as /proc/net/route shows it inside (destination 0, gateway 192.168.1.1).
    let proc_route = proc_net(&container, "route");
    assert!(
        proc_route.lines().any(|l| l.starts_with("eg-inside\t00000000\t0101A8C0")),
        "no default route via 192.168.1.1 in /proc/net/route:\n{proc_route}"
    );
    // The host's default-route interface detection sees none in the stand-in host.
    assert_eq!(nl_in(&host, route::default_interface), None);
    assert_eq!(nl_in(&container, route::default_interface).as_deref(), Some("eg-inside"));

    // Traffic both ways: TCP from host to container and back, and the seed's ping.
    tcp_round_trip(&container, alloc.container_ip, &host).unwrap();
    tcp_round_trip(&host, alloc.host_ip, &container).unwrap();
    assert!(ping(&container, alloc.host_ip), "busybox ping 192.168.1.1 from the container");

    // detach removes both ends and is idempotent.
    assert!(in_netns(&host, || detach("eg-outside")).unwrap());
    assert!(!in_netns(&host, || detach("eg-outside")).unwrap());
    assert_eq!(link_names(&host), ["lo"]);
    assert_eq!(link_names(&container), ["lo"]);
}

#[test]
fn attach_through_a_pidfd_of_the_containers_process() {
    let Some(()) = need_root("attach_through_a_pidfd_of_the_containers_process") else { return };
    let host = Netns::create().unwrap();
    let sandbox = Netns::create().unwrap();
    let sleeper = Sleeper::start_in(&sandbox);
    drop(sandbox); // only the process keeps its namespace alive now
    let container = Netns::of_pid(sleeper.pid() as i32).unwrap();
    assert!(container.is_pidfd());
    let dir = TempDir::new("pidfd");
    let alloc = seed_allocation(&dir, "c1");

    in_netns(&host, || attach(&container, &alloc)).unwrap();
    // Seen through /proc/PID/ns/net too: the same namespace.
    let by_path = Netns::open(format!("/proc/{}/ns/net", sleeper.pid())).unwrap();
    assert_eq!(by_path.inode().unwrap(), container.inode().unwrap());
    assert_eq!(link_names(&by_path), ["c1-inside", "lo"]);
    tcp_round_trip(&container, alloc.container_ip, &host).unwrap();

    assert!(in_netns(&host, || detach(&alloc.ifnames.outside)).unwrap());
    assert_eq!(link_names(&by_path), ["lo"]);
    assert_eq!(link_names(&host), ["lo"]);
}

#[test]
fn a_failure_mid_way_leaves_no_link() {
    let Some(()) = need_root("a_failure_mid_way_leaves_no_link") else { return };
    let host = Netns::create().unwrap();
    let container = Netns::create().unwrap();
    let dir = TempDir::new("midway");
    let alloc = seed_allocation(&dir, "eg");

    // The container already has a default route: the last step (route add) fails.
    nl_in(&container, |nl| {
        link::create_veth(nl, &link::VethSpec::new("pre0", "pre1"))?;
        link::set_up(nl, "pre1")?;
        link::set_up(nl, "pre0")?;
        addr::add(nl, "pre0", "10.99.0.1/24".parse()?)?;
        route::add_default(nl, Ipv4Addr::new(10, 99, 0, 2), None)
    });
    let err = in_netns(&host, || attach(&container, &alloc)).unwrap_err();
    assert_eq!(err.to_string(), "add route 0.0.0.0/0 via 192.168.1.1 dev eg-inside: EEXIST: File exists");
    assert_eq!(link_names(&host), ["lo"], "the host end was removed");
    assert_eq!(link_names(&container), ["lo", "pre0", "pre1"], "the container end went with it");

    // A bad allocation fails after the pair exists: undone as well.
    let mut bad = seed_allocation(&dir, "bad");
    bad.container_ip = Ipv4Addr::new(10, 0, 0, 2);
    let clean = Netns::create().unwrap();
    let err = in_netns(&host, || attach(&clean, &bad)).unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
    assert_eq!(link_names(&host), ["lo"]);
    assert_eq!(link_names(&clean), ["lo"]);

    // The container's netns vanished before attach: nothing is created.
    let gone = Netns::create().unwrap();
    let sleeper = Sleeper::start_in(&gone);
    drop(gone);
    let pidfd = Netns::of_pid(sleeper.pid() as i32).unwrap();
    drop(sleeper); // killed and reaped: the pidfd now names a dead process
    let err = in_netns(&host, || attach(&pidfd, &alloc)).unwrap_err();
    assert!(err.to_string().contains("setns into pid"), "{err}");
    assert_eq!(link_names(&host), ["lo"]);
}

#[test]
fn an_existing_link_is_never_taken_over() {
    let Some(()) = need_root("an_existing_link_is_never_taken_over") else { return };
    let host = Netns::create().unwrap();
    let container = Netns::create().unwrap();
    let dir = TempDir::new("taken");
    let alloc = seed_allocation(&dir, "eg");
    // Someone else's eg-outside on the host.
    nl_in(&host, |nl| link::create_veth(nl, &link::VethSpec::new("eg-outside", "other")));
    let err = in_netns(&host, || attach(&container, &alloc)).unwrap_err();
    assert_eq!(err.to_string(), "create veth eg-outside (peer eg-inside): EEXIST: File exists");
    assert_eq!(link_names(&host), ["eg-outside", "lo", "other"], "the existing pair is left alone");
    assert_eq!(link_names(&container), ["lo"]);

    // detach refuses to delete something that is not a veth.
    nl_in(&host, |nl| link::delete(nl, "eg-outside"));
    let err = in_netns(&host, || detach("lo")).unwrap_err();
    assert!(err.to_string().starts_with("refusing to delete link lo"), "{err}");
    assert_eq!(link_names(&host), ["lo"]);
}

#[test]
fn long_names_are_shortened_and_unique() {
    let Some(()) = need_root("long_names_are_shortened_and_unique") else { return };
    let host = Netns::create().unwrap();
    let c1 = Netns::create().unwrap();
    let c2 = Netns::create().unwrap();
    let dir = TempDir::new("long");
    let allocator = Allocator::new(&dir.0, PoolConfig::default()).unwrap();
    let a1 = allocator.allocate("a-very-long-container-name-1").unwrap();
    let a2 = allocator.allocate("a-very-long-container-name-2").unwrap();
    assert_ne!(a1.ifnames, a2.ifnames);
    assert_eq!(a1.ifnames, IfNames::for_container("a-very-long-container-name-1"));
    for n in [&a1.ifnames.outside, &a1.ifnames.inside, &a2.ifnames.outside, &a2.ifnames.inside] {
        assert!(n.len() <= 15, "{n}");
    }

    let x1 = in_netns(&host, || attach(&c1, &a1)).unwrap();
    let x2 = in_netns(&host, || attach(&c2, &a2)).unwrap();
    let mut want = vec![x1.host_if.clone(), x2.host_if.clone(), "lo".to_string()];
    want.sort();
    assert_eq!(link_names(&host), want);
    assert_eq!(link_names(&c1), [a1.ifnames.inside.clone(), "lo".into()]);
    assert_eq!(link_names(&c2), [a2.ifnames.inside.clone(), "lo".into()]);
    // Each container reaches its own gateway; the host reaches both.
    tcp_round_trip(&c1, a1.container_ip, &host).unwrap();
    tcp_round_trip(&c2, a2.container_ip, &host).unwrap();
    tcp_round_trip(&host, a2.host_ip, &c2).unwrap();

    assert!(in_netns(&host, || detach(&a1.ifnames.outside)).unwrap());
    assert!(in_netns(&host, || detach(&a2.ifnames.outside)).unwrap());
    assert_eq!(link_names(&host), ["lo"]);
    assert_eq!(allocator.reconcile::<&str>(&[]).unwrap().len(), 2);
    assert!(allocator.list().unwrap().is_empty());
}

//! Root tests of the netlink building blocks (links, addresses, routes, namespace moves), each in
//! throwaway network namespaces (see tests/common).

mod common;

use std::net::Ipv4Addr;

use common::*;
use conductor_network::link::VethSpec;
use conductor_network::{addr, in_netns, link, route, Error, Ipv4Net, Netlink, Netns};

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

#[test]
fn veth_up_down_mtu_rename_delete() {
    let Some(()) = need_root("veth_up_down_mtu_rename_delete") else { return };
    let ns = Netns::create().unwrap();
    nl_in(&ns, |nl| {
        link::create_veth(nl, &VethSpec { mtu: Some(1400), ..VethSpec::new("t0", "t1") })?;
        let t0 = link::get(nl, "t0")?;
        let t1 = link::get(nl, "t1")?;
        assert_eq!((t0.mtu, t1.mtu), (Some(1400), Some(1400)));
        assert_eq!(t0.kind.as_deref(), Some("veth"));
        assert!(!t0.up);
        assert_eq!(t0.peer_index, Some(t1.index));
        assert_eq!(link::by_index(nl, t1.index)?.map(|l| l.name).as_deref(), Some("t1"));
        assert_eq!(link::find(nl, "nope")?, None);
        assert_eq!(link::by_index(nl, 999_999)?, None);
        let err = link::get(nl, "nope").unwrap_err();
        assert_eq!(err.to_string(), "link nope not found");

        link::set_mtu(nl, "t0", 1280)?;
        assert_eq!(link::get(nl, "t0")?.mtu, Some(1280));
        link::set_up(nl, "t0")?;
        link::set_up(nl, "t1")?;
        let t0 = link::get(nl, "t0")?;
        assert!(t0.up && t0.lower_up);
        link::set_down(nl, "t1")?;
        assert!(!link::get(nl, "t1")?.up);
        assert!(!link::get(nl, "t0")?.lower_up, "no carrier once the peer is down");

        link::rename(nl, "t1", "t2")?;
        assert_eq!(link::find(nl, "t1")?, None);
        assert_eq!(link::get(nl, "t2")?.index, t1.index);
        assert!(link::rename(nl, "t2", "this-name-is-too-long").is_err());

        // Errors name the link.
        let err = link::set_up(nl, "ghost").unwrap_err();
        assert!(err.to_string().starts_with("set link ghost up: ENODEV"), "{err}");
        let err = link::create_veth(nl, &VethSpec::new("t0", "t9")).unwrap_err();
        assert_eq!(err.to_string(), "create veth t0 (peer t9): EEXIST: File exists");

        assert!(link::delete(nl, "t0")?);
        assert!(!link::delete(nl, "t0")?, "deleting twice is fine");
        assert_eq!(link::find(nl, "t2")?, None, "the peer went with it");
        Ok(())
    });
    assert_eq!(link_names(&ns), ["lo"]);
}

#[test]
fn move_links_between_namespaces() {
    let Some(()) = need_root("move_links_between_namespaces") else { return };
    let host = Netns::create().unwrap();
    let other = Netns::create().unwrap();
    let sandbox = Netns::create().unwrap();
    let sleeper = Sleeper::start_in(&sandbox);
    let by_pidfd = Netns::of_pid(sleeper.pid() as i32).unwrap();

    nl_in(&host, |nl| {
        link::create_veth(nl, &VethSpec::new("m0", "m1"))?;
        link::create_veth(nl, &VethSpec::new("p0", "p1"))?;
        link::create_veth(nl, &VethSpec::new("q0", "q1"))?;
        // By a namespace file, by a pidfd (turned into the namespace's file), by a pid.
        link::move_to_netns(nl, "m1", &other)?;
        link::move_to_netns(nl, "p1", &by_pidfd)?;
        link::move_to_netns_pid(nl, "q1", sleeper.pid())?;
        assert_eq!(link::find(nl, "m1")?, None);
        let err = link::move_to_netns(nl, "ghost", &other).unwrap_err();
        assert!(err.to_string().starts_with("move link ghost into new netns"), "{err}");
        Ok(())
    });
    assert_eq!(link_names(&host), ["lo", "m0", "p0", "q0"]);
    assert_eq!(link_names(&other), ["lo", "m1"]);
    assert_eq!(link_names(&sandbox), ["lo", "p1", "q1"]);

    // A veth created with its peer directly in another namespace.
    nl_in(&host, |nl| link::create_veth(nl, &VethSpec { peer_netns: Some(&other), ..VethSpec::new("d0", "d1") }));
    assert_eq!(link_names(&other), ["d1", "lo", "m1"]);
    assert!(!link_names(&host).contains(&"d1".to_string()));

    // Deleting the host ends removes the peers elsewhere.
    nl_in(&host, |nl| {
        for l in ["m0", "p0", "q0", "d0"] {
            assert!(link::delete(nl, l)?);
        }
        Ok(())
    });
    assert_eq!(link_names(&other), ["lo"]);
    assert_eq!(link_names(&sandbox), ["lo"]);
    assert_eq!(link_names(&host), ["lo"]);
}

#[test]
fn addresses_and_routes() {
    let Some(()) = need_root("addresses_and_routes") else { return };
    let ns = Netns::create().unwrap();
    nl_in(&ns, |nl| {
        link::create_veth(nl, &VethSpec::new("a0", "a1"))?;
        link::set_up(nl, "a0")?;
        link::set_up(nl, "a1")?;
        assert_eq!(route::default_interface(nl)?, None);

        addr::add(nl, "a0", net("10.50.0.1/24"))?;
        addr::add(nl, "a0", net("10.51.0.1/16"))?;
        let err = addr::add(nl, "a0", net("10.50.0.1/24")).unwrap_err();
        assert!(err.to_string().starts_with("add address 10.50.0.1/24 to a0: EEXIST: File exists"), "{err}");
        let err = addr::add(nl, "ghost", net("10.50.0.1/24")).unwrap_err();
        assert_eq!(err.to_string(), "link ghost not found");
        let mut got: Vec<String> = addr::list(nl, Some("a0"))?.iter().map(|a| a.addr.to_string()).collect();
        got.sort();
        assert_eq!(got, ["10.50.0.1/24", "10.51.0.1/16"]);
        assert!(addr::list(nl, Some("a1"))?.is_empty());

        // The kernel added the subnets' routes; ours come on top.
        let connected = route::connected_networks(nl)?;
        assert!(connected.contains(&net("10.50.0.0/24")) && connected.contains(&net("10.51.0.0/16")), "{connected:?}");
        route::add(nl, net("10.60.0.0/16"), Some(Ipv4Addr::new(10, 50, 0, 2)), Some("a0"))?;
        route::add(nl, net("10.61.0.0/16"), None, Some("a0"))?;
        route::add_default(nl, Ipv4Addr::new(10, 50, 0, 254), None)?;
        let err = route::add_default(nl, Ipv4Addr::new(10, 50, 0, 253), None).unwrap_err();
        assert_eq!(err.to_string(), "add route 0.0.0.0/0 via 10.50.0.253: EEXIST: File exists");
        let err = route::add(nl, net("10.70.0.0/16"), Some(Ipv4Addr::new(172, 31, 9, 9)), None).unwrap_err();
        assert!(err.to_string().starts_with("add route 10.70.0.0/16 via 172.31.9.9: ENETUNREACH"), "{err}");

        let routes = route::list(nl)?;
        let a0 = link::get(nl, "a0")?.index;
        let r = routes.iter().find(|r| r.dst == net("10.60.0.0/16")).expect("10.60.0.0/16");
        assert_eq!((r.gateway, r.oif), (Some(Ipv4Addr::new(10, 50, 0, 2)), Some(a0)));
        assert!(routes.iter().any(|r| r.dst == net("10.61.0.0/16") && r.gateway.is_none()));
        assert_eq!(route::default_interface(nl)?.as_deref(), Some("a0"));

        assert!(addr::delete(nl, "a0", net("10.51.0.1/16"))?);
        assert!(!addr::delete(nl, "a0", net("10.51.0.1/16"))?);
        assert!(!addr::delete(nl, "ghost", net("10.51.0.1/16"))?);
        assert_eq!(addr::list(nl, Some("a0"))?.len(), 1);
        Ok(())
    });
    // The same state, as /proc shows it inside.
    let r = proc_net(&ns, "route");
    assert!(r.lines().any(|l| l.starts_with("a0\t00000000\tFE00320A")), "{r}");
}

#[test]
fn in_netns_leaves_the_caller_where_it_was() {
    let Some(()) = need_root("in_netns_leaves_the_caller_where_it_was") else { return };
    let before = Netns::current().unwrap().inode().unwrap();
    let ns = Netns::create().unwrap();
    assert_ne!(ns.inode().unwrap(), before);
    let inside = in_netns(&ns, || Netns::current()?.inode()).unwrap();
    assert_eq!(inside, ns.inode().unwrap());
    assert_eq!(Netns::current().unwrap().inode().unwrap(), before, "the calling thread did not move");
    // Nested: from inside one namespace into another and back out.
    let other = Netns::create().unwrap();
    let (a, b) = in_netns(&ns, || {
        let b = in_netns(&other, || Netns::current()?.inode())?;
        Ok((Netns::current()?.inode()?, b))
    })
    .unwrap();
    assert_eq!((a, b), (ns.inode().unwrap(), other.inode().unwrap()));
    // A socket opened inside keeps working in that namespace after the thread is gone.
    let mut nl = in_netns(&ns, Netlink::open).unwrap();
    link::create_veth(&mut nl, &VethSpec::new("s0", "s1")).unwrap();
    assert_eq!(link_names(&ns), ["lo", "s0", "s1"]);
    // Errors inside come out as they are; panics are resumed.
    let err = in_netns(&ns, || -> conductor_network::Result<()> { Err(Error::Invalid("inside".into())) }).unwrap_err();
    assert_eq!(err.to_string(), "inside");
    let panicked = std::panic::catch_unwind(|| in_netns(&ns, || -> conductor_network::Result<()> { panic!("boom") }));
    assert!(panicked.is_err());
}

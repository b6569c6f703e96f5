//! Every netlink change emits a `conductor::explain` event, also from the threads that work inside
//! other namespaces. Its own test binary: it installs a global subscriber.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use conductor_network::{attach, detach, in_netns, Allocator, Netns, PoolConfig};

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn attach_and_detach_explain_each_step() {
    let Some(()) = need_root("attach_and_detach_explain_each_step") else { return };
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt().with_max_level(tracing::Level::DEBUG).with_writer(move || writer.clone()).finish();
    let host = Netns::create().unwrap();
    let container = Netns::create().unwrap();
    let dir = TempDir::new("explain");
    let alloc = Allocator::new(&dir.0, PoolConfig::default()).unwrap().allocate("ex").unwrap();
    tracing::subscriber::with_default(subscriber, || {
        in_netns(&host, || attach(&container, &alloc)).unwrap();
        assert!(in_netns(&host, || detach("ex-outside")).unwrap());
    });
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let explain: Vec<&str> = text.lines().filter(|l| l.contains("conductor::explain")).collect();
    let has = |needles: &[&str]| explain.iter().any(|l| needles.iter().all(|n| l.contains(n)));
    assert!(has(&["setns"]), "{text}");
    assert!(has(&["RTM_NEWLINK", "veth", "ex-outside", "ex-inside"]), "{text}");
    assert!(has(&["RTM_NEWADDR", "ex-outside", "192.168.1.1/24"]), "{text}");
    assert!(has(&["RTM_NEWADDR", "ex-inside", "192.168.1.2/24"]), "{text}");
    assert!(has(&["RTM_SETLINK", "link=\"lo\"", "up"]) || has(&["RTM_SETLINK", "link=lo", "up"]), "{text}");
    assert!(has(&["RTM_SETLINK", "ex-inside", "up"]), "{text}");
    assert!(has(&["RTM_NEWROUTE", "192.168.1.1", "ex-inside"]), "{text}");
    assert!(has(&["RTM_DELLINK", "ex-outside"]), "{text}");
}

//! What `up` does, decided from the file and what runs (pure, so it is unit tested): a service
//! whose definition hash matches a running container is kept; a changed (or exited) one is
//! recreated; a missing one created; a container of the stack whose service left the file is
//! removed. Removals come first (they free host ports), then services in start order.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::file::{Service, Stack};

/// Labels that tie a container to its stack (`RunOptions::labels`).
pub const LABEL_STACK: &str = "io.conductor.stack";
pub const LABEL_SERVICE: &str = "io.conductor.stack.service";
pub const LABEL_HASH: &str = "io.conductor.stack.hash";
/// The stack file (absolute): a stack renamed in its file still finds its old containers.
pub const LABEL_FILE: &str = "io.conductor.stack.file";

/// A container of the stack as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    pub container: String,
    /// The stack it was created for: another name is this file's stack before a rename.
    pub stack: String,
    pub service: String,
    pub hash: String,
    pub running: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Create(String),
    /// Stop the old container, then create (the service's definition changed, or it exited).
    Recreate(String),
    Keep(String),
    /// A container whose service is no longer in the file.
    Remove(String),
}

/// The definition hash: everything that shapes the container. `inputs` adds what the file
/// does not hold: the image's build time and the copied files' contents.
pub fn hash(svc: &Service, inputs: &str) -> String {
    #[derive(Serialize)]
    struct Def<'a> {
        svc: &'a Service,
        inputs: &'a str,
    }
    // Readiness and start order are how `up` proceeds, not what the container is.
    let mut s = svc.clone();
    s.ready = None;
    s.depends_on.clear();
    let json = serde_json::to_vec(&Def { svc: &s, inputs }).expect("serializes");
    let d = Sha256::digest(&json);
    d.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// `hashes`: each service's current hash, by service name.
pub fn plan(stack: &Stack, hashes: &BTreeMap<String, String>, existing: &[Existing]) -> Vec<Action> {
    let wanted: BTreeSet<&str> = stack.services.iter().map(|s| s.name.as_str()).collect();
    let mut actions: Vec<Action> = existing
        .iter()
        .filter(|e| {
            e.stack != stack.name
                || !wanted.contains(e.service.as_str())
                || stack.service(&e.service).is_some_and(|s| s.container != e.container)
        })
        .map(|e| Action::Remove(e.container.clone()))
        .collect();
    for s in &stack.services {
        let now = existing.iter().find(|e| e.container == s.container && e.stack == stack.name);
        actions.push(match now {
            None => Action::Create(s.name.clone()),
            Some(e) if e.running && hashes.get(&s.name) == Some(&e.hash) => Action::Keep(s.name.clone()),
            Some(_) => Action::Recreate(s.name.clone()),
        });
    }
    actions
}

/// Peer pairs to (re)connect after the actions: every pair with a side that is new.
pub fn peerings(stack: &Stack, actions: &[Action]) -> Vec<(String, String)> {
    let fresh: BTreeSet<&str> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Create(s) | Action::Recreate(s) => Some(s.as_str()),
            _ => None,
        })
        .collect();
    let mut pairs = BTreeSet::new();
    for s in &stack.services {
        for p in &s.peers {
            if fresh.contains(s.name.as_str()) || fresh.contains(p.as_str()) {
                let (a, b) = if s.name < *p { (&s.name, p) } else { (p, &s.name) };
                pairs.insert((a.clone(), b.clone()));
            }
        }
    }
    pairs.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn stack(text: &str) -> Stack {
        crate::file::parse(Path::new("/tmp/st.toml"), text).unwrap()
    }

    const TWO: &str =
        "[services.a]\nimage = \"bb\"\npeers = [\"b\"]\n[services.b]\nimage = \"bb\"\ncommand = [\"sleep\", \"1\"]\n";

    fn hashes(s: &Stack) -> BTreeMap<String, String> {
        s.services.iter().map(|v| (v.name.clone(), hash(v, ""))).collect()
    }

    fn existing(s: &Stack, name: &str, running: bool) -> Existing {
        let svc = s.service(name).unwrap();
        Existing { container: svc.container.clone(), stack: s.name.clone(), service: name.into(), hash: hash(svc, ""), running }
    }

    #[test]
    fn fresh_stack_creates_everything() {
        let s = stack(TWO);
        let a = plan(&s, &hashes(&s), &[]);
        assert_eq!(a, [Action::Create("a".into()), Action::Create("b".into())]);
        assert_eq!(peerings(&s, &a), [("a".to_string(), "b".to_string())]);
    }

    #[test]
    fn converges() {
        let s = stack(TWO);
        let now = [existing(&s, "a", true), existing(&s, "b", true)];
        let a = plan(&s, &hashes(&s), &now);
        assert_eq!(a, [Action::Keep("a".into()), Action::Keep("b".into())], "up twice changes nothing");
        assert!(peerings(&s, &a).is_empty());

        // b's command changes: only b is recreated, and peered again with a.
        let changed = stack(&TWO.replace("\"1\"", "\"2\""));
        let a = plan(&changed, &hashes(&changed), &now);
        assert_eq!(a, [Action::Keep("a".into()), Action::Recreate("b".into())]);
        assert_eq!(peerings(&changed, &a).len(), 1);

        // An exited container is recreated; a service gone from the file is removed.
        let now = [existing(&s, "a", false), existing(&s, "b", true)];
        let only_a = stack("[services.a]\nimage = \"bb\"\n");
        let a = plan(&only_a, &hashes(&only_a), &now);
        assert_eq!(a, [Action::Remove("st-b".into()), Action::Recreate("a".into())]);
    }

    /// `name` changed in the file: the containers made under the old name are removed (they
    /// hold the host ports the new ones need), then everything is created under the new one.
    #[test]
    fn renamed_stack_replaces_its_old_containers() {
        let s = stack(TWO);
        let now = [existing(&s, "a", true), existing(&s, "b", true)];
        let renamed = stack(&format!("name = \"nu\"\n{TWO}"));
        let a = plan(&renamed, &hashes(&renamed), &now);
        assert_eq!(
            a,
            [
                Action::Remove("st-a".into()),
                Action::Remove("st-b".into()),
                Action::Create("a".into()),
                Action::Create("b".into())
            ]
        );
    }

    #[test]
    fn hash_ignores_readiness_and_order_but_not_inputs() {
        let s = stack(TWO);
        let b = s.service("b").unwrap();
        let mut r = b.clone();
        r.depends_on = vec!["a".into()];
        assert_eq!(hash(b, "x"), hash(&r, "x"));
        assert_ne!(hash(b, "x"), hash(b, "y"));
        let mut e = b.clone();
        e.env.push("A=1".into());
        assert_ne!(hash(b, ""), hash(&e, ""));
    }
}

//! Carrying a stack out through the engine's public API: `up` (build missing images, plan,
//! remove / create / recreate, peer, wait for readiness), `down`, and what `ps` and `logs` show.
//! One lock per stack serialises two `up`s of it.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use conductor_engine::{Engine, NetRequest, RunOptions, Summary};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::file::{Check, Service, Stack};
use crate::plan::{self, Action, Existing, LABEL_FILE, LABEL_HASH, LABEL_SERVICE, LABEL_STACK};

/// How long `stop` waits for a service's SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// The stack's containers, as the engine lists them.
pub fn containers(engine: &Engine, stack: &str) -> Vec<Summary> {
    engine.list(true).into_iter().filter(|c| c.labels.get(LABEL_STACK).map(String::as_str) == Some(stack)).collect()
}

/// The stack's containers and those its file made under another stack name (before a rename
/// of `name`).
fn containers_of_file(engine: &Engine, stack: &str, file: &Path) -> Vec<Summary> {
    engine.list(true).into_iter().filter(|c| belongs(&c.labels, stack, file)).collect()
}

fn belongs(labels: &BTreeMap<String, String>, stack: &str, file: &Path) -> bool {
    labels.get(LABEL_STACK).map(String::as_str) == Some(stack)
        || (labels.contains_key(LABEL_STACK) && labels.get(LABEL_FILE).map(Path::new) == Some(file))
}

/// `stack up`: converge; `say` gets one line per step. Returns the actions taken.
pub fn up(engine: &Engine, stack: &Stack, say: &mut dyn FnMut(&str)) -> Result<Vec<Action>> {
    let _lock = conductor_engine::record::lock(&engine.paths, &format!(".stack-{}", stack.name))?;
    for s in &stack.services {
        ensure_image(engine, s, say)?;
    }
    let mut hashes = BTreeMap::new();
    for s in &stack.services {
        hashes.insert(s.name.clone(), plan::hash(s, &inputs(engine, s)?));
    }
    let existing: Vec<Existing> = containers_of_file(engine, &stack.name, &stack.file)
        .into_iter()
        .map(|c| Existing {
            stack: c.labels.get(LABEL_STACK).cloned().unwrap_or_default(),
            service: c.labels.get(LABEL_SERVICE).cloned().unwrap_or_default(),
            hash: c.labels.get(LABEL_HASH).cloned().unwrap_or_default(),
            running: c.running,
            container: c.name,
        })
        .collect();
    let actions = plan::plan(stack, &hashes, &existing);
    for a in &actions {
        match a {
            Action::Remove(c) => {
                remove(engine, c)?;
                say(&format!("{c}: removed (no longer in the file)"));
            }
            Action::Keep(s) => {
                say(&format!("{}: unchanged", stack.service(s).map_or(s.as_str(), |v| &v.container)));
            }
            Action::Create(s) | Action::Recreate(s) => {
                let svc = stack.service(s).expect("planned from the stack");
                if matches!(a, Action::Recreate(_)) {
                    remove(engine, &svc.container)?;
                }
                start(engine, stack, svc, &hashes[s])?;
                for (x, y) in plan::peerings(stack, &actions).iter().filter(|(x, y)| x == s || y == s) {
                    let other = if x == s { y } else { x };
                    if let Some(o) = stack.service(other).filter(|o| is_running(engine, &o.container)) {
                        engine.peer(&svc.container, &o.container)?;
                    }
                }
                say(&format!("{}: {}", svc.container, if matches!(a, Action::Create(_)) { "created" } else { "recreated" }));
                if let Some(r) = &svc.ready {
                    wait_ready(engine, svc, &r.check, Duration::from_secs(r.timeout_secs))?;
                    say(&format!("{}: ready", svc.container));
                }
            }
        }
    }
    Ok(actions)
}

/// Stop and remove a container; one already gone (removed since it was listed) is fine. True
/// when it was there.
fn remove(engine: &Engine, container: &str) -> Result<bool> {
    match engine.stop(container, STOP_TIMEOUT) {
        Ok(()) => Ok(true),
        Err(conductor_engine::Error::NoContainer(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn is_running(engine: &Engine, container: &str) -> bool {
    engine.list(false).iter().any(|c| c.name == container)
}

/// Build a service's image when it has a build and the image is missing.
fn ensure_image(engine: &Engine, s: &Service, say: &mut dyn FnMut(&str)) -> Result<()> {
    if engine.images.exists(&s.image)? {
        return Ok(());
    }
    let Some(b) = &s.build else {
        return Err(Error::Invalid(format!(
            "service {}: no image {:?} (build it, or give the service a build)",
            s.name, s.image
        )));
    };
    say(&format!("{}: building image {}", s.name, s.image));
    let opts = conductor_image::BuildOpts {
        suite: b.suite.clone(),
        variant: b.variant.clone(),
        include: b.include.clone(),
        mirror: b.mirror.clone(),
        ..Default::default()
    };
    engine.images.build_debootstrap(&s.image, &opts, &mut conductor_image::progress::Silent)?;
    Ok(())
}

/// What the hash covers beyond the file: the image's build time and the copied files.
fn inputs(engine: &Engine, s: &Service) -> Result<String> {
    let mut h = Sha256::new();
    h.update(engine.images.get(&s.image)?.created.to_rfc3339());
    for c in &s.copy {
        digest_tree(&c.src, &mut h)?;
    }
    Ok(h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect())
}

fn digest_tree(p: &Path, h: &mut Sha256) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let io = |err| Error::Io { what: format!("read {}", p.display()), err };
    let m = std::fs::symlink_metadata(p).map_err(io)?;
    h.update(format!("{}\0{:o}\0", p.display(), m.mode()));
    if m.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(p).map_err(io)?.flatten().map(|e| e.path()).collect();
        entries.sort();
        for e in entries {
            digest_tree(&e, h)?;
        }
    } else if m.is_symlink() {
        h.update(std::fs::read_link(p).map_err(io)?.as_os_str().as_encoded_bytes());
    } else if m.is_file() {
        h.update(std::fs::read(p).map_err(io)?);
    }
    Ok(())
}

fn start(engine: &Engine, stack: &Stack, s: &Service, hash: &str) -> Result<()> {
    let labels = BTreeMap::from([
        (LABEL_STACK.to_string(), stack.name.clone()),
        (LABEL_SERVICE.to_string(), s.name.clone()),
        (LABEL_HASH.to_string(), hash.to_string()),
        (LABEL_FILE.to_string(), stack.file.display().to_string()),
    ]);
    let opts = RunOptions {
        env: s.env.clone(),
        volumes: s.volumes.clone(),
        workdir: s.workdir.clone(),
        detach: true,
        network: Some(NetRequest { internet: s.internet, ports: s.ports.clone() }),
        copy: s.copy.clone(),
        restart: s.restart,
        labels,
        ..Default::default()
    };
    engine.run(&s.image, &s.container, &s.command, opts)?;
    Ok(())
}

/// Poll the service's check from the host until it passes, the container exits, or `timeout`.
fn wait_ready(engine: &Engine, s: &Service, check: &Check, timeout: Duration) -> Result<()> {
    let ip = engine
        .network_of(&s.container)?
        .map(|r| r.ip())
        .ok_or_else(|| Error::Invalid(format!("service {}: no network to check readiness on", s.name)))?;
    let end = Instant::now() + timeout;
    loop {
        let last = match probe(ip, check) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if !is_running(engine, &s.container) && s.restart.mode == conductor_engine::restart::RestartMode::No {
            return Err(Error::Invalid(format!(
                "service {}: the container exited before it was ready (see `conductor stack logs`)",
                s.name
            )));
        }
        if Instant::now() >= end {
            return Err(Error::Invalid(format!("service {}: not ready after {}s: {last}", s.name, timeout.as_secs())));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One readiness probe: a TCP connect, or an HTTP GET answered with a status below 400.
fn probe(ip: Ipv4Addr, check: &Check) -> std::result::Result<(), String> {
    let port = match check {
        Check::Tcp(p) | Check::Http { port: p, .. } => *p,
    };
    let addr = SocketAddr::from((ip, port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).map_err(|e| format!("tcp {addr}: {e}"))?;
    let Check::Http { path, .. } = check else { return Ok(()) };
    s.set_read_timeout(Some(Duration::from_secs(2))).map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {ip}\r\n\r\n").map_err(|e| format!("http {addr}: {e}"))?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).map_err(|e| format!("http {addr}{path}: {e}"))?;
    let status = std::str::from_utf8(&head[9..12]).ok().and_then(|c| c.parse::<u16>().ok()).unwrap_or(0);
    if (200..400).contains(&status) {
        Ok(())
    } else {
        Err(format!("http {addr}{path}: status {status}"))
    }
}

/// `stack down`: stop (and so remove) every container of the stack, and those `file` made
/// under an earlier stack name, in reverse start order.
pub fn down(engine: &Engine, stack: &str, file: &Path, say: &mut dyn FnMut(&str)) -> Result<()> {
    let _lock = conductor_engine::record::lock(&engine.paths, &format!(".stack-{stack}"))?;
    let mut list = containers_of_file(engine, stack, file);
    newest_first(&mut list);
    // One that cannot be removed does not keep the others running: the first error at the end.
    let mut first_err = None;
    for c in list {
        match remove(engine, &c.name) {
            Ok(true) => say(&format!("{}: removed", c.name)),
            Ok(false) => say(&format!("{}: already gone", c.name)),
            Err(e) => {
                say(&format!("{}: {e}", c.name));
                first_err.get_or_insert(e);
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// `up` creates in dependency order, so newest first stops dependents before what they depend
/// on. (The engine's RFC 3339 UTC timestamps, of one fixed width, sort as text.)
fn newest_first(list: &mut [Summary]) {
    list.sort_by(|a, b| b.created.cmp(&a.created));
}

/// `stack logs`: every service's log, each line prefixed with the service's name; with
/// `follow`, all at once until every container has exited.
pub fn logs(engine: &Engine, stack: &str, follow: bool) -> Result<()> {
    let list = containers(engine, stack);
    let width = list.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let res: Vec<Result<()>> = std::thread::scope(|sc| {
        let handles: Vec<_> = list
            .iter()
            .map(|c| {
                let prefix = format!("{:<width$} | ", c.name);
                let run = move || -> Result<()> {
                    let mut out = Prefixed { prefix, pending: Vec::new() };
                    engine.logs(&c.name, None, follow, &mut out)?;
                    out.flush().map_err(|err| Error::Io { what: "write logs".into(), err })
                };
                if follow {
                    Ok(sc.spawn(run))
                } else {
                    Err(run())
                }
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h {
                Ok(h) => h.join().unwrap_or_else(|_| Err(Error::Invalid("a log reader panicked".into()))),
                Err(r) => r,
            })
            .collect()
    });
    res.into_iter().collect()
}

/// Writes whole lines to stdout, each with a prefix (so lines of several services never mix).
struct Prefixed {
    prefix: String,
    pending: Vec<u8>,
}

impl Write for Prefixed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        while let Some(i) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=i).collect();
            let mut out = std::io::stdout().lock();
            out.write_all(self.prefix.as_bytes())?;
            out.write_all(&line)?;
            out.flush()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.pending.is_empty() {
            self.pending.push(b'\n');
            self.write(&[])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(test: &str) -> (Engine, std::path::PathBuf) {
        let base = std::env::temp_dir().join(format!("cnd-stack-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let e = Engine::open(conductor_engine::Paths::new(&base.join("data"), &base.join("run"))).unwrap();
        (e, base)
    }

    /// A container removed since `up` or `down` listed it (by a `conductor stop`, say) is no
    /// error: the stack goes on converging, or down on removing the others.
    #[test]
    fn a_container_already_gone_is_no_error() {
        let (e, base) = engine("gone");
        assert!(!remove(&e, "st-gone").unwrap());
        assert!(e.stop("st-gone", STOP_TIMEOUT).is_err(), "the engine itself still refuses it");
        let mut said = Vec::new();
        down(&e, "st", Path::new("/tmp/st.toml"), &mut |l| said.push(l.to_string())).unwrap();
        assert!(said.is_empty(), "{said:?}");
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn down_stops_the_newest_first() {
        let at = |name: &str, created: &str| Summary {
            name: name.into(),
            image: String::new(),
            command: String::new(),
            created: created.into(),
            status: String::new(),
            running: true,
            pid: 0,
            exit_code: None,
            restart_count: 0,
            labels: BTreeMap::new(),
        };
        // Listed by name; started counter (a dependency), then external, then web.
        let mut list = vec![
            at("s-counter", "2026-12-08T02:00:01.000000001Z"),
            at("s-external", "2026-12-08T02:00:02.500000000Z"),
            at("s-web", "2026-12-08T02:00:02.000000000Z"),
        ];
        newest_first(&mut list);
        let names: Vec<&str> = list.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["s-external", "s-web", "s-counter"]);
    }

    #[test]
    fn a_file_owns_what_it_made_under_an_old_name() {
        let file = Path::new("/srv/web.toml");
        let labels = |stack: &str, f: Option<&str>| {
            let mut l = BTreeMap::from([(LABEL_STACK.to_string(), stack.to_string())]);
            l.extend(f.map(|f| (LABEL_FILE.to_string(), f.to_string())));
            l
        };
        assert!(belongs(&labels("web", None), "web", file));
        assert!(belongs(&labels("old", Some("/srv/web.toml")), "web", file), "renamed in its file");
        assert!(!belongs(&labels("other", Some("/srv/other.toml")), "web", file));
        assert!(!belongs(&BTreeMap::from([(LABEL_FILE.to_string(), "/srv/web.toml".to_string())]), "web", file));
    }
}

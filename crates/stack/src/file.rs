//! The stack file: parsed (unknown keys refused), then checked as a whole (images, names,
//! ports, peers, the depends_on graph) into a [`Stack`] whose services are in start order.
//! Every error is one line, `FILE:LINE: what`: toml gives byte spans, turned into lines here.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use conductor_engine::cp::CopySpec;
use conductor_engine::options::{self, Volume};
use conductor_engine::RestartPolicy;
use conductor_network::firewall::PortSpec;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::error::{Error, Result};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    name: Option<Spanned<String>>,
    #[serde(default)]
    services: BTreeMap<String, Spanned<RawService>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    image: Option<String>,
    build: Option<Build>,
    #[serde(default)]
    command: Vec<String>,
    #[serde(default)]
    copy: Vec<RawCopy>,
    #[serde(default)]
    volumes: Vec<Spanned<String>>,
    #[serde(default)]
    env: BTreeMap<String, Spanned<String>>,
    workdir: Option<String>,
    #[serde(default)]
    internet: bool,
    #[serde(default)]
    ports: Vec<Spanned<String>>,
    #[serde(default)]
    peers: Vec<Spanned<String>>,
    #[serde(default)]
    depends_on: Vec<Spanned<String>>,
    ready: Option<Spanned<RawReady>>,
    restart: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCopy {
    src: Spanned<String>,
    dst: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReady {
    tcp: Option<u16>,
    http: Option<u16>,
    path: Option<String>,
    /// Seconds.
    timeout: Option<u64>,
}

/// A debootstrap build (`conductor build`'s options).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Build {
    #[serde(default = "bookworm")]
    pub suite: String,
    pub variant: Option<String>,
    #[serde(default)]
    pub include: Vec<String>,
    pub mirror: Option<String>,
}

fn bookworm() -> String {
    "bookworm".into()
}

/// How `up` tells that a service is ready (and its dependents may start).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Check {
    Tcp(u16),
    Http { port: u16, path: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ready {
    pub check: Check,
    pub timeout_secs: u64,
}

/// One service, resolved: paths absolute, peers both ways, `${peer.X}` substituted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Service {
    pub name: String,
    /// `<stack>-<service>`.
    pub container: String,
    pub image: String,
    pub build: Option<Build>,
    /// Empty: the image's command.
    pub command: Vec<String>,
    /// `KEY=VALUE`, sorted.
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub copy: Vec<CopySpec>,
    pub volumes: Vec<Volume>,
    pub internet: bool,
    pub ports: Vec<PortSpec>,
    /// Services this one reaches by name (and that reach it), sorted.
    pub peers: Vec<String>,
    pub depends_on: Vec<String>,
    pub ready: Option<Ready>,
    pub restart: RestartPolicy,
}

#[derive(Debug, Clone)]
pub struct Stack {
    pub name: String,
    /// The stack file.
    pub file: PathBuf,
    /// In start order: each after what it depends on.
    pub services: Vec<Service>,
}

impl Stack {
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }
}

/// Read and check a stack file.
pub fn load(path: &Path) -> Result<Stack> {
    let text = std::fs::read_to_string(path).map_err(|err| Error::Io { what: format!("read {}", path.display()), err })?;
    parse(path, &text)
}

/// Names of stacks and services: DNS labels, so that they are valid Kubernetes names too.
fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 30
        && n.starts_with(|c: char| c.is_ascii_lowercase())
        && !n.ends_with('-')
        && n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The default stack name: the file's stem.
pub fn default_name(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

struct Ctx<'a> {
    file: String,
    text: &'a str,
}

impl Ctx<'_> {
    fn line(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())].bytes().filter(|b| *b == b'\n').count() + 1
    }

    fn err(&self, span: Range<usize>, msg: impl Into<String>) -> Error {
        Error::File { file: self.file.clone(), line: self.line(span.start), msg: msg.into() }
    }
}

/// Parse `text` (the contents of `path`).
pub fn parse(path: &Path, text: &str) -> Result<Stack> {
    let cx = Ctx { file: path.display().to_string(), text };
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| cx.line(s.start)).unwrap_or(1);
        Error::File { file: cx.file.clone(), line, msg: e.message().trim().replace('\n', " ") }
    })?;
    let name = match &raw.name {
        Some(n) if !valid_name(n.get_ref()) => {
            return Err(cx.err(n.span(), format!("stack name {:?}: use a-z, 0-9 and -, starting with a letter", n.get_ref())))
        }
        Some(n) => n.get_ref().clone(),
        None if valid_name(&default_name(path)) => default_name(path),
        None => return Err(cx.err(0..0, format!("the file name {:?} is no valid stack name: set `name`", default_name(path)))),
    };
    if raw.services.is_empty() {
        return Err(cx.err(0..0, "no [services.NAME] tables"));
    }
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let base = std::path::absolute(if base.as_os_str().is_empty() { Path::new(".") } else { &base })
        .map_err(|err| Error::Io { what: format!("resolve {}", path.display()), err })?;
    let mut services = Vec::new();
    for (sname, raw_svc) in &raw.services {
        services.push(service(&cx, &name, &base, sname, raw_svc, &raw.services)?);
    }
    check_ports(&cx, &raw.services)?;
    symmetric_peers(&mut services);
    substitute_peers(&cx, &name, &raw.services, &mut services)?;
    let order = start_order(&cx, &raw.services)?;
    let mut by_name: BTreeMap<String, Service> = services.into_iter().map(|s| (s.name.clone(), s)).collect();
    let services = order.iter().filter_map(|n| by_name.remove(n)).collect();
    Ok(Stack { name, file: std::path::absolute(path).unwrap_or(path.into()), services })
}

fn service(
    cx: &Ctx<'_>,
    stack: &str,
    base: &Path,
    sname: &str,
    raw: &Spanned<RawService>,
    all: &BTreeMap<String, Spanned<RawService>>,
) -> Result<Service> {
    let (span, r) = (raw.span(), raw.get_ref());
    if !valid_name(sname) {
        return Err(cx.err(span, format!("service name {sname:?}: use a-z, 0-9 and -, starting with a letter")));
    }
    let image = match (&r.image, &r.build) {
        (Some(i), _) => i.clone(),
        (None, Some(_)) => format!("{stack}-{sname}"),
        (None, None) => return Err(cx.err(span, format!("service {sname}: no image (give `image` or `build`)"))),
    };
    let known = |list: &[Spanned<String>], what: &str| -> Result<Vec<String>> {
        let mut v = Vec::new();
        for p in list {
            let n = p.get_ref();
            if !all.contains_key(n) {
                return Err(cx.err(p.span(), format!("service {sname}: {what} {n:?} is not a service of this stack")));
            }
            if n == sname {
                return Err(cx.err(p.span(), format!("service {sname}: {what} itself")));
            }
            v.push(n.clone());
        }
        Ok(v)
    };
    let peers = known(&r.peers, "peer")?;
    let depends_on = known(&r.depends_on, "depends_on")?;
    let mut copy = Vec::new();
    for c in &r.copy {
        let src = base.join(c.src.get_ref());
        if !src.exists() {
            return Err(cx.err(c.src.span(), format!("service {sname}: copy source {} does not exist", src.display())));
        }
        if !c.dst.starts_with('/') {
            return Err(cx.err(c.src.span(), format!("service {sname}: copy dst {:?} must be absolute", c.dst)));
        }
        copy.push(CopySpec { src, dst: c.dst.clone().into() });
    }
    let mut volumes = Vec::new();
    for v in &r.volumes {
        let abs = match v.get_ref().split_once(':') {
            Some((h, rest)) if !h.starts_with('/') => format!("{}:{rest}", base.join(h).display()),
            _ => v.get_ref().clone(),
        };
        volumes.push(options::parse_volume(&abs).map_err(|e| cx.err(v.span(), format!("service {sname}: {e}")))?);
    }
    let mut env = Vec::new();
    for (k, v) in &r.env {
        env.push(
            options::parse_env(&format!("{k}={}", v.get_ref())).map_err(|e| cx.err(v.span(), format!("service {sname}: {e}")))?,
        );
    }
    let mut ports = Vec::new();
    for p in &r.ports {
        ports.push(parse_port(p.get_ref()).map_err(|e| cx.err(p.span(), format!("service {sname}: {e}")))?);
    }
    let restart = match &r.restart {
        Some(s) => RestartPolicy::parse(s.get_ref()).map_err(|e| cx.err(s.span(), format!("service {sname}: {e}")))?,
        None => RestartPolicy::default(),
    };
    let ready = r.ready.as_ref().map(|rd| ready(cx, sname, rd)).transpose()?;
    Ok(Service {
        name: sname.into(),
        container: format!("{stack}-{sname}"),
        image,
        build: r.build.clone(),
        command: r.command.clone(),
        env,
        workdir: r.workdir.clone(),
        copy,
        volumes,
        internet: r.internet,
        ports,
        peers,
        depends_on,
        ready,
        restart,
    })
}

/// `8080-3000` (the seed's CPORT-HPORT) or `3000:8080[/tcp|/udp]` (Docker's).
fn parse_port(s: &str) -> std::result::Result<PortSpec, String> {
    let r = if s.contains(':') { PortSpec::parse_docker(s) } else { PortSpec::parse_seed(s) };
    r.map_err(|e| e.to_string())
}

fn ready(cx: &Ctx<'_>, sname: &str, rd: &Spanned<RawReady>) -> Result<Ready> {
    let r = rd.get_ref();
    let check = match (r.tcp, r.http) {
        (Some(p), None) if r.path.is_none() => Check::Tcp(p),
        (None, Some(p)) => Check::Http { port: p, path: r.path.clone().unwrap_or_else(|| "/".into()) },
        _ => return Err(cx.err(rd.span(), format!("service {sname}: ready takes one of tcp = PORT or http = PORT (with path)"))),
    };
    let path_ok = match &check {
        Check::Http { path, .. } => path.starts_with('/') && !path.contains(char::is_whitespace),
        Check::Tcp(_) => true,
    };
    if !path_ok {
        return Err(cx.err(rd.span(), format!("service {sname}: ready path must start with / and hold no spaces")));
    }
    Ok(Ready { check, timeout_secs: r.timeout.unwrap_or(30) })
}

/// A host port may be forwarded to one container only.
fn check_ports(cx: &Ctx<'_>, all: &BTreeMap<String, Spanned<RawService>>) -> Result<()> {
    let mut seen: BTreeMap<(String, u16), String> = BTreeMap::new();
    for (sname, svc) in all {
        for p in &svc.get_ref().ports {
            let Ok(spec) = parse_port(p.get_ref()) else { continue };
            if let Some(first) = seen.insert((spec.proto.to_string(), spec.host_port), sname.clone()) {
                let msg =
                    format!("service {sname}: host port {}/{} is already used by service {first}", spec.host_port, spec.proto);
                return Err(cx.err(p.span(), msg));
            }
        }
    }
    Ok(())
}

/// `peers` works both ways: list it on either side.
fn symmetric_peers(services: &mut [Service]) {
    let pairs: Vec<(String, String)> =
        services.iter().flat_map(|s| s.peers.iter().map(|p| (p.clone(), s.name.clone())).collect::<Vec<_>>()).collect();
    for s in services.iter_mut() {
        let mut set: BTreeSet<String> = s.peers.drain(..).collect();
        set.extend(pairs.iter().filter(|(a, _)| *a == s.name).map(|(_, b)| b.clone()));
        s.peers = set.into_iter().collect();
    }
}

/// `${peer.NAME}` -> `<stack>-NAME` in command and env; NAME_HOST for each peer in env.
fn substitute_peers(
    cx: &Ctx<'_>,
    stack: &str,
    all: &BTreeMap<String, Spanned<RawService>>,
    services: &mut [Service],
) -> Result<()> {
    for s in services.iter_mut() {
        let span = all[&s.name].span();
        let sub = |v: &str| -> Result<String> {
            expand(v, stack, &s.peers)
                .map_err(|n| cx.err(span.clone(), format!("service {}: ${{peer.{n}}} is not a peer of it", s.name)))
        };
        let command = s.command.iter().map(|a| sub(a)).collect::<Result<Vec<_>>>()?;
        let mut env = s.env.iter().map(|e| sub(e)).collect::<Result<Vec<_>>>()?;
        for p in &s.peers {
            env.push(format!("{}_HOST={stack}-{p}", p.to_ascii_uppercase().replace('-', "_")));
        }
        env.sort();
        s.command = command;
        s.env = env;
    }
    Ok(())
}

/// Expand `${peer.NAME}`; Err(NAME) for a name that is not in `peers`.
pub(crate) fn expand(v: &str, stack: &str, peers: &[String]) -> std::result::Result<String, String> {
    let mut out = String::new();
    let mut rest = v;
    while let Some(i) = rest.find("${peer.") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 7..];
        let Some(end) = after.find('}') else { break };
        let n = &after[..end];
        if !peers.iter().any(|p| p == n) {
            return Err(n.to_string());
        }
        out.push_str(&format!("{stack}-{n}"));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Services in an order where each comes after what it depends on; a cycle is an error at the
/// depends_on entry that closes it.
fn start_order(cx: &Ctx<'_>, all: &BTreeMap<String, Spanned<RawService>>) -> Result<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    fn visit(
        cx: &Ctx<'_>,
        all: &BTreeMap<String, Spanned<RawService>>,
        n: &str,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
        out: &mut Vec<String>,
    ) -> Result<()> {
        marks.insert(n.into(), Mark::Active);
        path.push(n.into());
        for d in &all[n].get_ref().depends_on {
            match marks[d.get_ref()] {
                Mark::Done => {}
                Mark::Active => {
                    let from = path.iter().position(|p| p == d.get_ref()).unwrap_or(0);
                    let cycle = [&path[from..], &[d.get_ref().clone()]].concat().join(" -> ");
                    return Err(cx.err(d.span(), format!("depends_on cycle: {cycle}")));
                }
                Mark::New => visit(cx, all, d.get_ref(), marks, path, out)?,
            }
        }
        path.pop();
        marks.insert(n.into(), Mark::Done);
        out.push(n.into());
        Ok(())
    }
    let mut marks: BTreeMap<String, Mark> = all.keys().map(|k| (k.clone(), Mark::New)).collect();
    let mut out = Vec::new();
    for n in all.keys() {
        if marks[n] == Mark::New {
            visit(cx, all, n, &mut marks, &mut Vec::new(), &mut out)?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "matrix"

[services.external]
image = "py"
command = ["bash", "/srv/run.sh", "http://${peer.counter}:8080/"]
ports = ["8080-3000"]
peers = ["counter"]
depends_on = ["counter"]
restart = "on-failure:3"

[services.counter]
build = { variant = "minbase", include = ["python3"] }
command = ["python3", "-m", "http.server", "8080"]
internet = true
ready = { http = 8080, path = "/health", timeout = 5 }
"#;

    fn err(text: &str) -> String {
        parse(Path::new("/tmp/s.toml"), text).unwrap_err().to_string()
    }

    #[test]
    fn good_file_resolves() {
        let s = parse(Path::new("/tmp/x.toml"), GOOD).unwrap();
        assert_eq!(s.name, "matrix");
        let names: Vec<&str> = s.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["counter", "external"], "dependencies first");
        let (c, e) = (&s.services[0], &s.services[1]);
        assert_eq!(c.image, "matrix-counter", "a build's default image name");
        assert_eq!(c.build.as_ref().unwrap().suite, "bookworm");
        assert_eq!(c.peers, ["external"], "peers are symmetric");
        assert_eq!(c.ready.as_ref().unwrap().check, Check::Http { port: 8080, path: "/health".into() });
        assert_eq!(e.container, "matrix-external");
        assert_eq!(e.command[2], "http://matrix-counter:8080/");
        assert_eq!(e.env, ["COUNTER_HOST=matrix-counter"]);
        assert_eq!((e.ports[0].container_port, e.ports[0].host_port), (8080, 3000));
        assert_eq!(e.restart.to_string(), "on-failure:3");
    }

    #[test]
    fn name_defaults_to_the_file_stem() {
        let s = parse(Path::new("/tmp/web.toml"), "[services.a]\nimage = \"bb\"\n").unwrap();
        assert_eq!((s.name.as_str(), s.services[0].container.as_str()), ("web", "web-a"));
        assert!(err("[services.A]\nimage = \"bb\"\n").contains("service name \"A\""));
    }

    #[test]
    fn unknown_keys_name_their_line() {
        let e = err("[services.a]\nimage = \"bb\"\nimagee = \"x\"\n");
        assert!(e.starts_with("/tmp/s.toml:3: unknown field `imagee`"), "{e}");
        let e = err("nmae = \"x\"\n[services.a]\nimage = \"bb\"\n");
        assert!(e.starts_with("/tmp/s.toml:1: unknown field `nmae`"), "{e}");
        let e = err("[services.a]\nimage = \"bb\"\nready = { tcp = 80, wait = 3 }\n");
        assert!(e.starts_with("/tmp/s.toml:3:"), "{e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }

    #[test]
    fn missing_image() {
        let e = err("[services.a]\nimage = \"bb\"\n\n[services.b]\ncommand = [\"true\"]\n");
        assert!(e.starts_with("/tmp/s.toml:4: service b: no image"), "{e}"); // the [services.b] header
    }

    #[test]
    fn depends_on_cycle() {
        let e = err("[services.a]\nimage = \"bb\"\ndepends_on = [\"b\"]\n[services.b]\nimage = \"bb\"\ndepends_on = [\"c\"]\n\
             [services.c]\nimage = \"bb\"\ndepends_on = [\"a\"]\n");
        assert!(e.starts_with("/tmp/s.toml:9: depends_on cycle: a -> b -> c -> a"), "{e}");
        assert!(err("[services.a]\nimage = \"bb\"\ndepends_on = [\"a\"]\n").contains("depends_on itself"));
    }

    #[test]
    fn host_port_twice() {
        let e = err("[services.a]\nimage = \"bb\"\nports = [\"80-3000\"]\n[services.b]\nimage = \"bb\"\nports = [\"3000:81\"]\n");
        assert!(e.starts_with("/tmp/s.toml:6: service b: host port 3000/tcp is already used by service a"), "{e}");
        let e = err("[services.a]\nimage = \"bb\"\nports = [\"80-3000\", \"81-3000\"]\n");
        assert!(e.contains(":3: service a: host port 3000/tcp is already used by service a"), "{e}");
        // Another protocol is another port.
        parse(Path::new("/tmp/s.toml"), "[services.a]\nimage = \"bb\"\nports = [\"80-3000\", \"3000:80/udp\"]\n").unwrap();
        assert!(err("[services.a]\nimage = \"bb\"\nports = [\"3000\"]\n").contains(":3: service a:"));
    }

    #[test]
    fn peer_that_is_no_service() {
        let e = err("[services.a]\nimage = \"bb\"\npeers = [\n  \"b\",\n  \"nope\",\n]\n[services.b]\nimage = \"bb\"\n");
        assert!(e.starts_with("/tmp/s.toml:5: service a: peer \"nope\" is not a service of this stack"), "{e}");
        let e = err("[services.a]\nimage = \"bb\"\ncommand = [\"${peer.b}\"]\n[services.b]\nimage = \"bb\"\n");
        assert!(e.contains("${peer.b} is not a peer of it"), "{e}");
        let e = err("[services.a]\nimage = \"bb\"\ndepends_on = [\"x\"]\n");
        assert!(e.starts_with("/tmp/s.toml:3: service a: depends_on \"x\""), "{e}");
    }

    #[test]
    fn bad_values() {
        assert!(err("[services.a]\nimage = \"bb\"\nrestart = \"sometimes\"\n")
            .starts_with("/tmp/s.toml:3: service a: invalid restart"));
        assert!(err("[services.a]\nimage = \"bb\"\nready = { tcp = 1, http = 2 }\n").contains(":3: service a: ready takes one"));
        assert!(err("[services.a]\nimage = \"bb\"\nenv = { \"1X\" = \"v\" }\n").contains(":3: service a: invalid -e"));
        assert!(err("[services.a]\nimage = \"bb\"\ncopy = [{ src = \"/nonexistent-x\", dst = \"/x\" }]\n").contains(":3:"));
        assert!(err("[services.a]\nimage = 5\n").starts_with("/tmp/s.toml:2:"));
        assert!(err("").contains("no [services.NAME]"));
    }

    #[test]
    fn expand_peers() {
        let peers = vec!["db".to_string()];
        assert_eq!(expand("x ${peer.db}:5 ${peer.db}", "s", &peers).unwrap(), "x s-db:5 s-db");
        assert_eq!(expand("$HOME ${other}", "s", &peers).unwrap(), "$HOME ${other}");
        assert_eq!(expand("${peer.web}", "s", &peers).unwrap_err(), "web");
    }
}

//! `build`: a Debian image made by `debootstrap`, the one external tool of the image layer.
//!
//! Two caches make a repeated build cheap. debootstrap's `--cache-dir` keeps the downloaded
//! .debs (`<cache_dir>/debs`), but debootstrap still fetches the archive's indices and unpacks
//! and configures every package each time. So the finished rootfs is kept too, as a tarball
//! keyed by suite, variant, packages, mirror and architecture (`<cache_dir>/rootfs`): building
//! the same thing again unpacks it and needs no network, like Docker's build cache. `refresh`
//! skips that cache (and renews it), for newer packages.

use std::collections::{HashSet, VecDeque};
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use crate::error::{Context, Error, Result};
use crate::image::{Image, ImageConfig};
use crate::progress::{Progress, Unit};
use crate::store::Store;
use crate::{apt_sources, atomic, import, pack};

/// What to debootstrap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildOpts {
    /// A Debian (or derivative) suite or codename.
    pub suite: String,
    /// debootstrap's `--variant` (e.g. "minbase"); None for its default.
    pub variant: Option<String>,
    /// Extra packages (`--include`).
    pub include: Vec<String>,
    /// None: the archive apt is configured with on this host.
    pub mirror: Option<String>,
    /// Holds `debs/` and `rootfs/`; created if missing.
    pub cache_dir: PathBuf,
    /// Replace an existing image of the same name (atomically, once the new one is complete).
    pub replace: bool,
    /// Run debootstrap even when a cached rootfs exists (then cache the new one).
    pub refresh: bool,
}

impl Default for BuildOpts {
    fn default() -> Self {
        BuildOpts {
            suite: "bookworm".into(),
            variant: None,
            include: Vec::new(),
            mirror: None,
            cache_dir: PathBuf::from("/var/cache/conductor/debootstrap"),
            replace: false,
            refresh: false,
        }
    }
}

/// A container never runs an init: keep package scripts from starting services (exit 101 is
/// "action forbidden by policy", see invoke-rc.d(8)).
const POLICY_RC_D: &str = "#!/bin/sh\n# Written by conductor: containers start no services on package installs.\nexit 101\n";

impl Store {
    /// Build image `name` with debootstrap (network on first use; see the module notes).
    pub fn build_debootstrap(&self, name: &str, opts: &BuildOpts, progress: &mut dyn Progress) -> Result<Image> {
        let res = self.debootstrap_inner(name, opts, progress);
        progress.finish();
        res
    }

    fn debootstrap_inner(&self, name: &str, opts: &BuildOpts, progress: &mut dyn Progress) -> Result<Image> {
        self.check_free(name, opts.replace)?;
        validate(opts)?;
        let mirror = match &opts.mirror {
            Some(m) => m.trim_end_matches('/').to_string(),
            None => apt_sources::default_mirror(&opts.suite)?,
        };
        check_mirror(&mirror)?;
        let cache_dir = std::path::absolute(&opts.cache_dir).ctx(|| format!("resolve {}", opts.cache_dir.display()))?;
        let (debs, rootfs_dir) = (cache_dir.join("debs"), cache_dir.join("rootfs"));
        for d in [&debs, &rootfs_dir] {
            std::fs::create_dir_all(d).ctx(|| format!("create cache directory {}", d.display()))?;
        }
        let cached = rootfs_dir.join(cache_name(opts, &mirror));
        // One debootstrap at a time per cache: a second build of the same thing waits and then
        // unpacks what the first cached, instead of downloading it again alongside (and two
        // debootstraps must not share the .deb cache at once).
        let _cache_lock = lock_cache(&cache_dir)?;

        let mut staging = self.stage(name)?;
        let layer = staging.layer(0);
        let mut source = describe(opts, &mirror);
        let use_cache = !opts.refresh && cached.is_file();
        if use_cache {
            progress.message(&format!("using the rootfs cached in {}", cached.display()));
            unpack_cached(&cached, &layer, progress)?;
            source.push_str(" (cached rootfs)");
        } else {
            run(&args(opts, &mirror, &debs, &layer), progress)?;
        }
        // Also on a cached rootfs: the fixes may have changed since it was cached.
        fix_for_containers(&layer)?;
        if !use_cache {
            progress.message(&format!("caching the rootfs in {}", cached.display()));
            if let Err(e) = save_cache(&layer, &cached) {
                // The image is fine without it; the next build just runs debootstrap again.
                progress.message(&format!("W: could not cache the rootfs: {e}"));
                tracing::warn!("could not cache the rootfs: {e}");
            }
        }
        let config = ImageConfig { cmd: vec!["/bin/bash".into()], ..ImageConfig::default() };
        self.commit(&mut staging, name, config, source, opts.replace)
    }
}

/// Refuse what debootstrap would take for an option or a path, before running it.
fn validate(opts: &BuildOpts) -> Result<()> {
    let word = |s: &str| {
        s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || "+.-_".contains(c))
    };
    if !word(&opts.suite) {
        return Err(Error::Invalid(format!("invalid suite {:?}", opts.suite)));
    }
    if let Some(v) = opts.variant.as_deref().filter(|v| !word(v)) {
        return Err(Error::Invalid(format!("invalid debootstrap variant {v:?}")));
    }
    if let Some(p) = opts.include.iter().find(|p| !is_package(p)) {
        return Err(Error::Invalid(format!("invalid package name {p:?}")));
    }
    Ok(())
}

fn check_mirror(mirror: &str) -> Result<()> {
    if ["http://", "https://", "ftp://", "file:/"].iter().any(|p| mirror.starts_with(p)) {
        Ok(())
    } else {
        Err(Error::Invalid(format!("mirror {mirror:?}: not an http, https, ftp or file URI")))
    }
}

/// A Debian package name (policy 5.6.1), optionally with an architecture (`libc6:amd64`).
fn is_package(s: &str) -> bool {
    let name = s.split(':').next().unwrap_or_default();
    name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+.-".contains(c))
}

fn includes(opts: &BuildOpts) -> Vec<&str> {
    let mut v: Vec<&str> = opts.include.iter().map(String::as_str).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// debootstrap's command line.
fn args(opts: &BuildOpts, mirror: &str, debs: &Path, target: &Path) -> Vec<OsString> {
    let mut a: Vec<OsString> = Vec::new();
    if let Some(v) = &opts.variant {
        a.push(format!("--variant={v}").into());
    }
    let inc = includes(opts);
    if !inc.is_empty() {
        a.push(format!("--include={}", inc.join(",")).into());
    }
    let mut cache = OsString::from("--cache-dir=");
    cache.push(debs);
    a.extend([cache, opts.suite.clone().into(), target.into(), mirror.into()]);
    a
}

/// The rootfs cache file of a build: everything that changes debootstrap's result is in the key.
fn cache_name(opts: &BuildOpts, mirror: &str) -> String {
    let variant = opts.variant.as_deref().unwrap_or("default");
    let spec = format!(
        "suite={}\nvariant={variant}\ninclude={}\nmirror={mirror}\narch={}\n",
        opts.suite,
        includes(opts).join(","),
        std::env::consts::ARCH
    );
    let hash = Sha256::digest(spec.as_bytes());
    let hex: String = hash[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{variant}-{hex}.tar", opts.suite)
}

fn describe(opts: &BuildOpts, mirror: &str) -> String {
    let mut s = format!("debootstrap {}", opts.suite);
    if let Some(v) = &opts.variant {
        s += &format!(" --variant={v}");
    }
    let inc = includes(opts);
    if !inc.is_empty() {
        s += &format!(" --include={}", inc.join(","));
    }
    s + " from " + mirror
}

fn unpack_cached(cached: &Path, layer: &Path, progress: &mut dyn Progress) -> Result<()> {
    let t = import::open(cached)?;
    progress.stage("unpacking", Some(t.len), Unit::Bytes);
    import::unpack(t.stream, layer, |p| progress.advance(t.read.get(), &p.to_string_lossy()))
        .map_err(|reason| Error::Archive { path: cached.into(), reason })?;
    Ok(())
}

fn lock_cache(cache_dir: &Path) -> Result<nix::fcntl::Flock<std::fs::File>> {
    let p = cache_dir.join(".lock");
    let f = std::fs::File::options().create(true).truncate(false).write(true).open(&p).ctx(|| format!("open {}", p.display()))?;
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| std::io::Error::from(e))
        .ctx(|| format!("lock {}", p.display()))
}

/// Write the cache tarball next to its final name and rename it into place, so a crash or a
/// full disk never leaves a truncated cache entry behind.
fn save_cache(layer: &Path, cached: &Path) -> std::io::Result<()> {
    let tmp = cached.with_extension(format!("tmp-{}", std::process::id()));
    let res = (|| {
        let f = std::fs::File::create(&tmp)?;
        let w = pack::pack(layer, std::io::BufWriter::new(f))?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, cached)?;
        atomic::sync_dir(cached.parent().unwrap_or(Path::new("/")))
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// Run debootstrap, turning its output into progress; on failure the error carries its last
/// `E:` line (or last line).
fn run(args: &[OsString], progress: &mut dyn Progress) -> Result<()> {
    tracing::debug!(target: "conductor::explain", step = "exec", program = "debootstrap", args = ?args);
    let mut child = Command::new("debootstrap")
        .args(args)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                Error::Invalid("debootstrap is not installed (Debian package \"debootstrap\")".into())
            }
            _ => Error::Io { what: "start debootstrap".into(), source: e },
        })?;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let pipes: [Box<dyn Read + Send>; 2] =
        [Box::new(child.stdout.take().expect("piped")), Box::new(child.stderr.take().expect("piped"))];
    let readers: Vec<_> = pipes
        .into_iter()
        .map(|pipe| {
            let tx = tx.clone();
            std::thread::spawn(move || forward_lines(pipe, &tx))
        })
        .collect();
    drop(tx);

    let mut tracker = Tracker::default();
    let mut tail = VecDeque::new();
    let mut last_error = None;
    for line in rx {
        tracing::debug!(target: "conductor::image", "debootstrap: {line}");
        tracker.feed(&line, progress);
        if let Line::Error(e) = parse_line(&line) {
            last_error = Some(e.to_string());
        }
        if !line.trim().is_empty() {
            tail.push_back(line);
            if tail.len() > 1 {
                tail.pop_front();
            }
        }
    }
    for r in readers {
        let _ = r.join();
    }
    let status = child.wait().ctx(|| "wait for debootstrap".into())?;
    if status.success() {
        return Ok(());
    }
    let detail = last_error.or_else(|| tail.pop_back()).unwrap_or_else(|| "no output".into());
    Err(Error::Debootstrap { status: format!("failed ({status})"), detail })
}

/// Send each line of `pipe` (lossily decoded: output need not be UTF-8) until EOF.
fn forward_lines(pipe: Box<dyn Read + Send>, tx: &std::sync::mpsc::Sender<String>) {
    let mut r = BufReader::new(pipe);
    let mut buf = Vec::new();
    while matches!(r.read_until(b'\n', &mut buf), Ok(n) if n > 0) {
        let _ = tx.send(String::from_utf8_lossy(&buf).trim_end().to_string());
        buf.clear();
    }
}

/// One line of debootstrap's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// "I: <Step> <package>[ <version>|...]".
    Package(Step, &'a str),
    /// Other "I:" lines ("Resolving dependencies of required packages...").
    Info(&'a str),
    Warning(&'a str),
    Error(&'a str),
    /// Output of the tools debootstrap runs.
    Other(&'a str),
}

/// The per-package steps debootstrap reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Retrieving,
    Validating,
    Extracting,
    Unpacking,
    Configuring,
}

/// Classify a line. Package lines are told from phase lines by shape: "Retrieving libc6 2.36-9"
/// and "Unpacking libc6:amd64..." name one package ("Retrieving" and "Validating" add its
/// version); "Retrieving Packages" or "Unpacking the base system..." do not.
pub fn parse_line(line: &str) -> Line<'_> {
    let line = line.trim_end();
    if let Some(w) = line.strip_prefix("W: ") {
        return Line::Warning(w);
    }
    if let Some(e) = line.strip_prefix("E: ") {
        return Line::Error(e);
    }
    let Some(msg) = line.strip_prefix("I: ") else {
        return Line::Other(line);
    };
    let Some((verb, rest)) = msg.split_once(' ') else {
        return Line::Info(msg);
    };
    let step = match verb {
        "Retrieving" => Step::Retrieving,
        "Validating" => Step::Validating,
        "Extracting" => Step::Extracting,
        "Unpacking" => Step::Unpacking,
        "Configuring" => Step::Configuring,
        _ => return Line::Info(msg),
    };
    let words: Vec<&str> = rest.trim().trim_end_matches("...").split_whitespace().collect();
    let versioned = matches!(step, Step::Retrieving | Step::Validating);
    match words.as_slice() {
        [pkg] | [pkg, _] if is_package(pkg) && (words.len() == 2) == versioned => {
            Line::Package(step, pkg.split(':').next().unwrap_or(pkg))
        }
        _ => Line::Info(msg),
    }
}

/// Turns debootstrap's lines into stages: downloading (Retrieving and Validating, one count
/// per package), extracting, unpacking, configuring. Stage lengths are estimates from earlier
/// stages: debootstrap announces no totals.
#[derive(Default)]
pub(crate) struct Tracker {
    stage: Option<&'static str>,
    done: u64,
    downloaded: HashSet<String>,
    extracted: u64,
    /// Past "Unpacking the base system...": only the packages not extracted before remain.
    base: bool,
}

impl Tracker {
    pub(crate) fn feed(&mut self, line: &str, p: &mut dyn Progress) {
        match parse_line(line) {
            Line::Package(step, pkg) => self.package(step, pkg, p),
            Line::Info(msg) => {
                self.base |= msg.starts_with("Unpacking the base system");
                p.message(line.trim_end());
            }
            Line::Warning(_) | Line::Error(_) => p.message(line),
            Line::Other(_) => {}
        }
    }

    fn package(&mut self, step: Step, pkg: &str, p: &mut dyn Progress) {
        let stage = match step {
            Step::Retrieving | Step::Validating => "downloading",
            Step::Extracting => "extracting",
            Step::Unpacking => "unpacking",
            Step::Configuring => "configuring",
        };
        if self.stage != Some(stage) {
            self.stage = Some(stage);
            self.done = 0;
            p.stage(stage, self.total(step), Unit::Items);
        }
        if stage == "downloading" {
            self.downloaded.insert(pkg.to_string());
            self.done = self.downloaded.len() as u64;
        } else {
            self.done += 1;
        }
        if step == Step::Extracting {
            self.extracted = self.done;
        }
        p.advance(self.done, pkg);
    }

    fn total(&self, step: Step) -> Option<u64> {
        let downloaded = self.downloaded.len() as u64;
        let n = match step {
            Step::Retrieving | Step::Validating => 0,
            Step::Extracting => downloaded,
            _ if self.base => downloaded.saturating_sub(self.extracted),
            _ => self.extracted,
        };
        (n > 0).then_some(n)
    }
}

/// What containers need of a fresh debootstrap: world-writable sticky /tmp and /var/tmp,
/// regular /etc/resolv.conf and /etc/hostname for the engine to replace (debootstrap copies
/// the host's), a policy-rc.d so installing a package does not start its service, and no
/// leftover .debs (they are in the cache).
pub(crate) fn fix_for_containers(root: &Path) -> Result<()> {
    for d in ["tmp", "var/tmp"] {
        let p = root.join(d);
        std::fs::create_dir_all(&p).ctx(|| format!("create {}", p.display()))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o1777)).ctx(|| format!("chmod {}", p.display()))?;
    }
    write_in(root, "etc/resolv.conf", "# Replaced by the container engine when a container starts.\n", 0o644)?;
    write_in(root, "etc/hostname", "localhost\n", 0o644)?;
    write_in(root, "usr/sbin/policy-rc.d", POLICY_RC_D, 0o755)?;
    let archives = root.join("var/cache/apt/archives");
    if let Ok(rd) = std::fs::read_dir(&archives) {
        for e in rd.flatten() {
            if e.path().extension().is_some_and(|x| x == "deb") {
                std::fs::remove_file(e.path()).ctx(|| format!("remove {}", e.path().display()))?;
            }
        }
    }
    Ok(())
}

/// Replace `root/rel` with a regular file, whatever was there (a symlink is replaced, not
/// followed); its directory must resolve inside `root`.
fn write_in(root: &Path, rel: &str, content: &str, mode: u32) -> Result<()> {
    let path = root.join(rel);
    let parent = path.parent().expect("rel has a parent");
    std::fs::create_dir_all(parent).ctx(|| format!("create {}", parent.display()))?;
    let (rp, rr) = (parent.canonicalize(), root.canonicalize());
    if !matches!((&rp, &rr), (Ok(p), Ok(r)) if p.starts_with(r)) {
        return Err(Error::Invalid(format!("{}: leads outside the image", parent.display())));
    }
    if std::fs::symlink_metadata(&path).is_ok() {
        std::fs::remove_file(&path).ctx(|| format!("remove {}", path.display()))?;
    }
    std::fs::write(&path, content).ctx(|| format!("write {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).ctx(|| format!("chmod {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_package_lines() {
        use Step::*;
        assert_eq!(parse_line("I: Retrieving libc6 2.36-9+deb12u10"), Line::Package(Retrieving, "libc6"));
        assert_eq!(parse_line("I: Validating bsdutils 1:2.38.1-5+deb12u3"), Line::Package(Validating, "bsdutils"));
        assert_eq!(parse_line("I: Extracting libstdc++6..."), Line::Package(Extracting, "libstdc++6"));
        assert_eq!(parse_line("I: Unpacking libc6:amd64..."), Line::Package(Unpacking, "libc6"));
        assert_eq!(parse_line("I: Configuring libc-bin...\n"), Line::Package(Configuring, "libc-bin"));
    }

    #[test]
    fn parses_phase_and_other_lines() {
        for info in [
            "I: Retrieving InRelease ",
            "I: Validating Packages ",
            "I: Retrieving Packages",
            "I: Unpacking required packages...",
            "I: Unpacking the base system...",
            "I: Configuring the base system...",
            "I: Resolving dependencies of required packages...",
            "I: Base system installed successfully.",
            "I: Extracting",
        ] {
            assert!(matches!(parse_line(info), Line::Info(_)), "{info}: {:?}", parse_line(info));
        }
        assert_eq!(parse_line("W: Retrying failed download of x"), Line::Warning("Retrying failed download of x"));
        assert_eq!(parse_line("E: Couldn't find these debs: nope"), Line::Error("Couldn't find these debs: nope"));
        assert_eq!(parse_line("dpkg: warning: something"), Line::Other("dpkg: warning: something"));
        assert!(matches!(parse_line("I: Retrieving libc6"), Line::Info(_)), "a package line without version");
        assert!(matches!(parse_line("I: Unpacking libc6 2.36"), Line::Info(_)), "unpacking has no version");
    }

    #[derive(Default)]
    struct Record(Vec<String>);

    impl Progress for Record {
        fn stage(&mut self, name: &str, total: Option<u64>, _: Unit) {
            self.0.push(format!("stage {name} {total:?}"));
        }
        fn advance(&mut self, done: u64, item: &str) {
            self.0.push(format!("{done} {item}"));
        }
        fn message(&mut self, line: &str) {
            self.0.push(format!("msg {line}"));
        }
        fn finish(&mut self) {}
    }

    #[test]
    fn tracker_drives_stages() {
        let out = "I: Retrieving InRelease \n\
            I: Retrieving aa 1\nI: Validating aa 1\nI: Retrieving bb 1\nI: Validating bb 1\nI: Validating cc 2\n\
            I: Extracting aa...\nI: Extracting bb...\n\
            I: Unpacking required packages...\nI: Unpacking aa:amd64...\nI: Unpacking bb...\n\
            I: Configuring required packages...\nI: Configuring aa...\n\
            I: Unpacking the base system...\nI: Unpacking cc...\nI: Configuring cc...\n\
            dpkg chatter";
        let mut t = Tracker::default();
        let mut r = Record::default();
        for l in out.lines() {
            t.feed(l, &mut r);
        }
        let want = [
            "msg I: Retrieving InRelease",
            "stage downloading None",
            "1 aa",
            "1 aa",
            "2 bb",
            "2 bb",
            "3 cc",
            "stage extracting Some(3)",
            "1 aa",
            "2 bb",
            "msg I: Unpacking required packages...",
            "stage unpacking Some(2)",
            "1 aa",
            "2 bb",
            "msg I: Configuring required packages...",
            "stage configuring Some(2)",
            "1 aa",
            "msg I: Unpacking the base system...",
            "stage unpacking Some(1)",
            "1 cc",
            "stage configuring Some(1)",
            "1 cc",
        ];
        assert_eq!(r.0, want);
    }

    #[test]
    fn command_line_and_cache_key() {
        let opts = BuildOpts {
            variant: Some("minbase".into()),
            include: vec!["procps".into(), "iproute2".into(), "procps".into()],
            ..BuildOpts::default()
        };
        let a = args(&opts, "http://archive.invalid/debian", Path::new("/c/debs"), Path::new("/t"));
        let want = [
            "--variant=minbase",
            "--include=iproute2,procps",
            "--cache-dir=/c/debs",
            "bookworm",
            "/t",
            "http://archive.invalid/debian",
        ];
        assert_eq!(a, want.map(OsString::from));

        let name = cache_name(&opts, "http://archive.invalid/debian");
        assert!(name.starts_with("bookworm-minbase-") && name.ends_with(".tar"), "{name}");
        let reordered = BuildOpts { include: vec!["iproute2".into(), "procps".into()], ..opts.clone() };
        assert_eq!(cache_name(&reordered, "http://archive.invalid/debian"), name, "include order does not matter");
        assert_ne!(cache_name(&opts, "http://other.invalid/debian"), name);
        assert_ne!(cache_name(&BuildOpts { variant: None, ..opts.clone() }, "http://archive.invalid/debian"), name);
    }

    #[test]
    fn validates_options() {
        let bad = |o: BuildOpts| validate(&o).unwrap_err().to_string();
        assert!(bad(BuildOpts { suite: "--foo".into(), ..Default::default() }).contains("\"--foo\""));
        assert!(bad(BuildOpts { variant: Some("-x".into()), ..Default::default() }).contains("variant"));
        assert!(bad(BuildOpts { include: vec!["Bad Pkg".into()], ..Default::default() }).contains("\"Bad Pkg\""));
        validate(&BuildOpts { include: vec!["libc6:amd64".into(), "g++".into()], ..Default::default() }).unwrap();
        assert!(check_mirror("cdrom:/x").is_err());
        check_mirror("file:///srv/mirror").unwrap();
    }

    #[test]
    fn fixes_a_rootfs_for_containers() {
        let d = std::env::temp_dir().join(format!("cnd-image-fix-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("etc")).unwrap();
        std::fs::create_dir_all(d.join("var/cache/apt/archives/partial")).unwrap();
        std::fs::write(d.join("var/cache/apt/archives/x_1_all.deb"), "deb").unwrap();
        std::os::unix::fs::symlink("/run/systemd/resolve/stub-resolv.conf", d.join("etc/resolv.conf")).unwrap();
        fix_for_containers(&d).unwrap();
        let md = |p: &str| std::fs::symlink_metadata(d.join(p)).unwrap();
        assert_eq!(md("tmp").permissions().mode() & 0o7777, 0o1777);
        assert_eq!(md("var/tmp").permissions().mode() & 0o7777, 0o1777);
        assert!(md("etc/resolv.conf").is_file());
        assert_eq!(std::fs::read_to_string(d.join("etc/hostname")).unwrap(), "localhost\n");
        assert_eq!(md("usr/sbin/policy-rc.d").permissions().mode() & 0o777, 0o755);
        assert!(std::fs::read_to_string(d.join("usr/sbin/policy-rc.d")).unwrap().contains("exit 101"));
        assert!(!d.join("var/cache/apt/archives/x_1_all.deb").exists());
        assert!(d.join("var/cache/apt/archives/partial").is_dir());
        std::fs::remove_dir_all(&d).unwrap();
    }
}

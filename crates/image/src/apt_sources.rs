//! The Debian mirror apt is configured with, so debootstrap uses the same one: no host name is
//! built in. Reads the one-line format (`/etc/apt/sources.list`, `sources.list.d/*.list`) and
//! deb822 (`sources.list.d/*.sources`), in apt's order.

use std::path::Path;

use crate::error::{Context, Error, Result};

/// One (type, URI) pair of a sources entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// "deb" or "deb-src".
    pub kind: String,
    pub uri: String,
    pub suites: Vec<String>,
    pub components: Vec<String>,
}

/// The mirror to debootstrap `suite` from, per the host's apt configuration.
pub fn default_mirror(suite: &str) -> Result<String> {
    let etc = Path::new("/etc/apt");
    let sources = read_dir(etc)?;
    let host = host_codename();
    main_archive(&sources, suite, host.as_deref()).map(str::to_string).ok_or_else(|| {
        Error::Invalid(format!(
            "no Debian archive for {suite:?} in {}/sources.list or sources.list.d: give a mirror",
            etc.display()
        ))
    })
}

/// All entries under an apt configuration directory (`/etc/apt`): sources.list first, then the
/// files of sources.list.d by name, as apt reads them.
pub fn read_dir(etc_apt: &Path) -> Result<Vec<Source>> {
    let mut out = Vec::new();
    let main = etc_apt.join("sources.list");
    if let Ok(text) = std::fs::read_to_string(&main) {
        out.extend(parse_list(&text));
    }
    let d = etc_apt.join("sources.list.d");
    let mut files: Vec<_> = match std::fs::read_dir(&d) {
        Ok(rd) => rd.filter_map(|e| e.ok()).map(|e| e.path()).collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    for f in files {
        let parse: fn(&str) -> Vec<Source> = match f.extension().and_then(|e| e.to_str()) {
            Some("list") => parse_list,
            Some("sources") => parse_deb822,
            _ => continue,
        };
        let text = std::fs::read_to_string(&f).ctx(|| format!("read {}", f.display()))?;
        out.extend(parse(&text));
    }
    Ok(out)
}

/// The one-line format: `deb [ options ] uri suite [component...]`, `#` comments.
pub fn parse_list(text: &str) -> Vec<Source> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Source> {
    let line = line.split('#').next().unwrap_or_default();
    let mut rest = line.trim();
    let kind = rest.split_whitespace().next()?;
    rest = rest[kind.len()..].trim_start();
    if let Some(opts) = rest.strip_prefix('[') {
        rest = opts.split_once(']')?.1;
    }
    let mut words = rest.split_whitespace();
    let uri = words.next()?;
    let suite = words.next()?;
    Some(Source { kind: kind.into(), uri: uri.into(), suites: vec![suite.into()], components: words.map(String::from).collect() })
}

/// deb822 stanzas (`Types:`, `URIs:`, `Suites:`, `Components:`, `Enabled:`), separated by blank
/// lines; one `Source` per type and URI.
pub fn parse_deb822(text: &str) -> Vec<Source> {
    let mut out = Vec::new();
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines().chain(std::iter::once("")) {
        if line.starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            out.extend(stanza(&fields));
            fields.clear();
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = fields.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            fields.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    out
}

fn stanza(fields: &[(String, String)]) -> Vec<Source> {
    let get = |k: &str| -> Vec<String> {
        fields.iter().filter(|(f, _)| f == k).flat_map(|(_, v)| v.split_whitespace().map(String::from)).collect()
    };
    let enabled = get("enabled");
    if enabled.first().is_some_and(|v| v.eq_ignore_ascii_case("no")) {
        return Vec::new();
    }
    let (suites, components) = (get("suites"), get("components"));
    let mut out = Vec::new();
    for kind in get("types") {
        for uri in get("uris") {
            out.push(Source { kind: kind.clone(), uri, suites: suites.clone(), components: components.clone() });
        }
    }
    out
}

/// The URI of the archive that carries `suite` itself: the first binary ("deb") entry that lists
/// it, and failing that the one listing the host's own release (a Debian mirror carries every
/// suite). Security, updates and backports entries never qualify (their suites are
/// `<name>-security` etc.), nor do schemes debootstrap cannot fetch from.
pub fn main_archive<'a>(sources: &'a [Source], suite: &str, host_codename: Option<&str>) -> Option<&'a str> {
    let usable = |s: &&Source| {
        s.kind == "deb"
            && ["http://", "https://", "ftp://", "file:"].iter().any(|p| s.uri.starts_with(p))
            && !s.uri.trim_end_matches('/').ends_with("-security")
    };
    let wanted = std::iter::once(suite).chain(host_codename);
    wanted
        .flat_map(|w| sources.iter().filter(usable).filter(move |s| s.suites.iter().any(|x| x == w)))
        .map(|s| s.uri.trim_end_matches('/'))
        .next()
}

/// VERSION_CODENAME from /etc/os-release.
fn host_codename() -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|v| v.trim_matches('"').to_string())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = "\
# The main archive, after a comment and a blank line

deb-src http://src.invalid/debian bookworm main
deb http://security.invalid/debian-security bookworm-security main
deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] http://archive.invalid/debian/ bookworm main contrib # trailing
deb http://archive.invalid/debian bookworm-updates main
deb [ arch=amd64 ] http://other.invalid/debian bookworm main
";

    const DEB822: &str = "\
Types: deb
# http://snapshot.invalid/archive/debian/20250520T000000Z
URIs: http://archive.invalid/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
# http://snapshot.invalid/archive/debian-security/20250520T000000Z
URIs: http://archive.invalid/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
";

    #[test]
    fn one_line_format() {
        let s = parse_list(LIST);
        assert_eq!(s.len(), 5);
        assert_eq!(s[0].kind, "deb-src");
        assert_eq!(s[2].uri, "http://archive.invalid/debian/");
        assert_eq!(s[2].suites, ["bookworm"]);
        assert_eq!(s[2].components, ["main", "contrib"]);
        assert_eq!(s[4].uri, "http://other.invalid/debian", "spaced [ options ]");
    }

    #[test]
    fn deb822_format() {
        let s = parse_deb822(DEB822);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].uri, "http://archive.invalid/debian");
        assert_eq!(s[0].suites, ["bookworm", "bookworm-updates"]);
        assert_eq!(s[1].suites, ["bookworm-security"]);
    }

    #[test]
    fn deb822_multiple_uris_types_continuations_and_disabled() {
        let text = "types: deb deb-src\nURIs: http://a.invalid/debian\n http://b.invalid/debian\nSuites: trixie\n\n\
                    Enabled: no\nTypes: deb\nURIs: http://off.invalid/debian\nSuites: trixie\n";
        let s = parse_deb822(text);
        let pairs: Vec<_> = s.iter().map(|x| (x.kind.as_str(), x.uri.as_str())).collect();
        assert_eq!(
            pairs,
            [
                ("deb", "http://a.invalid/debian"),
                ("deb", "http://b.invalid/debian"),
                ("deb-src", "http://a.invalid/debian"),
                ("deb-src", "http://b.invalid/debian")
            ]
        );
    }

    #[test]
    fn main_archive_skips_src_security_and_updates() {
        let mut s = parse_list(
            "deb http://security.invalid/debian-security bookworm-security main\n\
                                deb http://archive.invalid/debian bookworm-updates main\n",
        );
        assert_eq!(main_archive(&s, "bookworm", None), None);
        s.extend(parse_list(LIST));
        assert_eq!(main_archive(&s, "bookworm", None), Some("http://archive.invalid/debian"));
        // A suite nobody lists: the mirror of the host's release.
        assert_eq!(main_archive(&s, "trixie", Some("bookworm")), Some("http://archive.invalid/debian"));
        assert_eq!(main_archive(&s, "trixie", None), None);
    }

    #[test]
    fn main_archive_ignores_third_party_and_odd_schemes() {
        let s = parse_list(
            "deb cdrom:[Debian 12]/ bookworm main\n\
                            deb https://thirdparty.invalid/apt cloud-sdk-bookworm main\n\
                            deb https://nodes.invalid/node_20.x nodistro main\n\
                            deb https://archive.invalid/debian bookworm main\n",
        );
        assert_eq!(main_archive(&s, "bookworm", None), Some("https://archive.invalid/debian"));
    }

    #[test]
    fn reads_a_directory_in_apt_order() {
        let dir = std::env::temp_dir().join(format!("cnd-image-apt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sources.list.d")).unwrap();
        std::fs::write(dir.join("sources.list.d/debian.sources"), DEB822).unwrap();
        std::fs::write(dir.join("sources.list.d/a.list"), "deb http://first.invalid/debian sid main\n").unwrap();
        std::fs::write(dir.join("sources.list.d/x.list.disabled"), "deb http://no.invalid/debian bookworm main\n").unwrap();
        let s = read_dir(&dir).unwrap();
        let uris: Vec<_> = s.iter().map(|x| x.uri.as_str()).collect();
        assert_eq!(
            uris,
            ["http://first.invalid/debian", "http://archive.invalid/debian", "http://archive.invalid/debian-security"]
        );
        assert_eq!(main_archive(&s, "bookworm", None), Some("http://archive.invalid/debian"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

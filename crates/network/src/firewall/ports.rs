//! Transport protocols and port specifications: the seed's `-e CPORT-HPORT` and Docker's
//! `-p HPORT:CPORT[/tcp|udp]`.

use std::fmt;
use std::str::FromStr;

use super::FirewallError;

/// The transport protocol of an exposed port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    #[default]
    Tcp,
    Udp,
}

impl Proto {
    /// The name nftables uses for the protocol (an `inet_proto` value).
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Proto {
    type Err = FirewallError;

    fn from_str(s: &str) -> Result<Proto, FirewallError> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            _ => Err(FirewallError::Invalid(format!("unknown protocol {s:?}: expected tcp or udp"))),
        }
    }
}

/// One exposed port: `host_port` on the host's addresses forwards to `container_port` in the
/// container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct PortSpec {
    pub proto: Proto,
    pub container_port: u16,
    pub host_port: u16,
}

impl PortSpec {
    /// The seed's `-e` form, `CPORT-HPORT` (container port first): `8080-3000` forwards host
    /// port 3000 to the container's port 8080. A `/tcp` or `/udp` suffix is accepted too.
    pub fn parse_seed(spec: &str) -> Result<PortSpec, FirewallError> {
        let (ports, proto) = split_proto(spec)?;
        let (c, h) = ports.split_once('-').ok_or_else(|| bad(spec, "expected CPORT-HPORT, e.g. 8080-3000"))?;
        Ok(PortSpec { proto, container_port: port(spec, c)?, host_port: port(spec, h)? })
    }

    /// Docker's `-p` form, `HPORT:CPORT[/tcp|udp]` (host port first): `3000:8080/udp` forwards
    /// host port 3000 to the container's port 8080 over UDP.
    pub fn parse_docker(spec: &str) -> Result<PortSpec, FirewallError> {
        let (ports, proto) = split_proto(spec)?;
        let (h, c) = ports.split_once(':').ok_or_else(|| bad(spec, "expected HPORT:CPORT[/tcp|udp], e.g. 3000:8080"))?;
        Ok(PortSpec { proto, container_port: port(spec, c)?, host_port: port(spec, h)? })
    }
}

impl PortSpec {
    /// Whether a program of this network namespace listens on (or has bound) the host port: a
    /// DNAT of it would take that program's traffic. Tried with a bind to the wildcard
    /// address, which such a socket refuses.
    pub fn host_port_taken(&self) -> bool {
        let addr = (std::net::Ipv4Addr::UNSPECIFIED, self.host_port);
        let r = match self.proto {
            Proto::Tcp => std::net::TcpListener::bind(addr).map(drop),
            Proto::Udp => std::net::UdpSocket::bind(addr).map(drop),
        };
        matches!(r, Err(e) if e.kind() == std::io::ErrorKind::AddrInUse)
    }
}

impl fmt::Display for PortSpec {
    /// Docker's form, which names the protocol: `3000:8080/tcp`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.host_port, self.container_port, self.proto)
    }
}

fn bad(spec: &str, reason: impl Into<String>) -> FirewallError {
    FirewallError::PortSpec { spec: spec.to_string(), reason: reason.into() }
}

fn split_proto(spec: &str) -> Result<(&str, Proto), FirewallError> {
    match spec.split_once('/') {
        None => Ok((spec, Proto::Tcp)),
        Some((ports, p)) => {
            let proto = p.parse::<Proto>().map_err(|_| bad(spec, format!("unknown protocol {p:?}: expected tcp or udp")))?;
            Ok((ports, proto))
        }
    }
}

/// A port number, 1 to 65535.
fn port(spec: &str, s: &str) -> Result<u16, FirewallError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(bad(spec, "a port is missing"));
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(spec, format!("port {s:?} is not a number")));
    }
    match s.parse::<u32>() {
        Ok(0) => Err(bad(spec, "port 0 is not a usable port (1-65535)")),
        Ok(n) if n <= 65535 => Ok(n as u16),
        _ => Err(bad(spec, format!("port {s} is out of range (1-65535)"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_form_is_container_port_first() {
        let p = PortSpec::parse_seed("8080-3000").unwrap();
        assert_eq!(p, PortSpec { proto: Proto::Tcp, container_port: 8080, host_port: 3000 });
        let p = PortSpec::parse_seed("53-5353/udp").unwrap();
        assert_eq!(p, PortSpec { proto: Proto::Udp, container_port: 53, host_port: 5353 });
    }

    #[test]
    fn docker_form_is_host_port_first() {
        let p = PortSpec::parse_docker("3000:8080").unwrap();
        assert_eq!(p, PortSpec { proto: Proto::Tcp, container_port: 8080, host_port: 3000 });
        let p = PortSpec::parse_docker("3000:8080/udp").unwrap();
        assert_eq!(p, PortSpec { proto: Proto::Udp, container_port: 8080, host_port: 3000 });
        let p = PortSpec::parse_docker("1:65535/TCP").unwrap();
        assert_eq!(p, PortSpec { proto: Proto::Tcp, container_port: 65535, host_port: 1 });
        assert_eq!(p.to_string(), "1:65535/tcp");
    }

    fn err(r: Result<PortSpec, FirewallError>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn a_listening_port_is_taken() {
        let l = std::net::TcpListener::bind(("0.0.0.0", 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(PortSpec { proto: Proto::Tcp, container_port: 80, host_port: port }.host_port_taken());
        drop(l);
        assert!(!PortSpec { proto: Proto::Tcp, container_port: 80, host_port: port }.host_port_taken());
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        assert!(
            err(PortSpec::parse_seed("0-3000")).contains("port 0 is not a usable port"),
            "{}",
            err(PortSpec::parse_seed("0-3000"))
        );
        assert!(err(PortSpec::parse_docker("70000:80")).contains("port 70000 is out of range (1-65535)"));
        assert!(err(PortSpec::parse_docker("99999999999:80")).contains("out of range"));
        assert!(err(PortSpec::parse_docker("http:80")).contains("port \"http\" is not a number"));
        assert!(err(PortSpec::parse_docker("-1:80")).contains("is not a number"));
        assert!(err(PortSpec::parse_docker("3000:")).contains("a port is missing"));
        assert!(err(PortSpec::parse_docker("3000")).contains("expected HPORT:CPORT"));
        assert!(err(PortSpec::parse_seed("3000:80")).contains("expected CPORT-HPORT"));
        assert!(err(PortSpec::parse_docker("3000:80/sctp")).contains("unknown protocol \"sctp\""));
        let e = err(PortSpec::parse_seed("80-x"));
        assert!(e.starts_with("invalid port spec \"80-x\""), "{e}");
    }
}

//! conductor's configuration file (TOML): `$CONDUCTOR_CONFIG`, else `/etc/conductor/conductor.toml`.
//! A missing file means the defaults; a file with a mistake is an error naming the file and line,
//! never silently ignored.
//!
//! ```toml
//! [network]
//! pool = "192.168.0.0/16"          # where container subnets come from
//! subnet_prefix = 24               # each container's subnet
//! default_interface = "enp1s0"     # what -i masquerades out of (the seed's DEFAULT_IFC); default: the default route's
//! table = "conductor"              # conductor's nftables table (family inet)
//! ```

use std::path::{Path, PathBuf};

use conductor_network::{Ipv4Net, PoolConfig};
use serde::Deserialize;

use crate::error::{Error, Result};

pub const DEFAULT_PATH: &str = "/etc/conductor/conductor.toml";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub network: NetworkConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    pub pool: Ipv4Net,
    pub subnet_prefix: u8,
    pub default_interface: Option<String>,
    pub table: String,
}

impl Default for NetworkConfig {
    fn default() -> NetworkConfig {
        let p = PoolConfig::default();
        NetworkConfig {
            pool: p.pool,
            subnet_prefix: p.prefix,
            default_interface: None,
            table: conductor_network::firewall::DEFAULT_TABLE.into(),
        }
    }
}

impl NetworkConfig {
    pub fn pool_config(&self) -> PoolConfig {
        PoolConfig { pool: self.pool, prefix: self.subnet_prefix }
    }
}

impl Config {
    /// The file `$CONDUCTOR_CONFIG` names, else the default path.
    pub fn path() -> PathBuf {
        std::env::var_os("CONDUCTOR_CONFIG").map(PathBuf::from).unwrap_or_else(|| DEFAULT_PATH.into())
    }

    pub fn load() -> Result<Config> {
        Config::load_from(&Config::path())
    }

    pub fn load_from(path: &Path) -> Result<Config> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(err) => return Err(Error::Io { what: format!("read {}", path.display()), err }),
        };
        Config::parse(&text).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))
    }

    /// Parse and check the values; the message says where the mistake is.
    pub fn parse(text: &str) -> std::result::Result<Config, String> {
        let c: Config = toml::from_str(text).map_err(|e| one_line(&e))?;
        c.network.pool_config().validate().map_err(|e| format!("[network]: {e}"))?;
        if let Some(ifc) = &c.network.default_interface {
            conductor_network::names::validate(ifc)
                .map_err(|e| format!("[network] default_interface {ifc:?} is not an interface name ({e})"))?;
        }
        Ok(c)
    }
}

/// toml's message spans several lines (a source excerpt); keep "line N, column M" and the reason.
fn one_line(e: &toml::de::Error) -> String {
    let msg = e.message().trim();
    match e.span() {
        Some(_) => {
            let first = e.to_string();
            let at = first.lines().next().unwrap_or_default().trim_start_matches("TOML parse error at ").to_string();
            format!("{at}: {msg}")
        }
        None => msg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_seeds() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.network.pool.to_string(), "192.168.0.0/16");
        assert_eq!(c.network.subnet_prefix, 24);
        assert_eq!(c.network.default_interface, None);
        assert_eq!(c.network.table, "conductor");
    }

    #[test]
    fn values_are_read() {
        let c =
            Config::parse("[network]\npool = \"10.20.0.0/16\"\nsubnet_prefix = 28\ndefault_interface = \"enp1s0\"\n").unwrap();
        assert_eq!(c.network.pool_config().prefix, 28);
        assert_eq!(c.network.default_interface.as_deref(), Some("enp1s0"));
        assert_eq!(c.network.table, "conductor", "an absent key keeps its default");
    }

    #[test]
    fn mistakes_name_the_line() {
        let e = Config::parse("[network]\n\npoool = \"10.0.0.0/8\"\n").unwrap_err();
        assert!(e.contains("line 3") && e.contains("poool"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        let e = Config::parse("[network]\npool = \"10.0.0.300/8\"\n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        let e = Config::parse("[network]\nsubnet_prefix = 31\n").unwrap_err();
        assert!(e.contains("/30"), "{e}");
        let e = Config::parse("[network]\ndefault_interface = \"a/b\"\n").unwrap_err();
        assert!(e.contains("not an interface name"), "{e}");
    }

    #[test]
    fn a_missing_file_is_the_defaults() {
        let c = Config::load_from(Path::new("/nonexistent/conductor.toml")).unwrap();
        assert_eq!(c.network.table, "conductor");
    }
}

//! Stacks: several containers described in one TOML file, brought to that description by
//! `conductor stack up` and removed by `stack down`; `stack kube` turns the same file into
//! Kubernetes manifests.
//!
//! ```toml
//! name = "matrix"                 # optional; default: the file's stem
//!
//! [services.counter]
//! build = { suite = "bookworm", variant = "minbase", include = ["procps", "iproute2", "python3"] }
//! image = "matrix-py"             # the image to run (with build: the name it is built under, once)
//! command = ["bash", "/srv/counter-service/run.sh"]
//! copy = [{ src = "counter-service", dst = "/srv/" }]   # host paths relative to the file
//! volumes = ["./data:/data:ro"]   # HOST:CONTAINER[:ro]
//! env = { LOG = "1" }
//! internet = true                 # addnetwork's -i
//! ready = { http = 8080, path = "/health", timeout = 30 }   # or { tcp = 8080 }
//! restart = "on-failure:5"        # no | on-failure[:MAX] | always[:MAX]
//!
//! [services.external]
//! image = "matrix-py"
//! command = ["bash", "/srv/external-service/run.sh", "http://${peer.counter}:8080/"]
//! ports = ["8080-3000"]           # the seed's CPORT-HPORT, or Docker's "3000:8080[/tcp]"
//! peers = ["counter"]             # reach each other by name, both ways
//! depends_on = ["counter"]        # started once counter is ready
//! ```
//!
//! Every service gets a network (its own subnet, host-only unless `internet`). Containers are
//! named `<stack>-<service>`; `${peer.NAME}` in `command` and `env` values is that peer's host
//! name, and each peer's is also in the environment as `NAME_HOST`. On Kubernetes the same names
//! are the Services' names, so a command works unchanged in both places.
//!
//! The parts: [`file`] parses and validates (every error names its line, before anything is
//! created), [`plan`] decides what `up` does (pure), [`deploy`] carries it out through the
//! engine, [`kube`] writes the manifests.

pub mod deploy;
pub mod error;
pub mod file;
pub mod kube;
pub mod plan;

pub use error::{Error, Result};
pub use file::{Service, Stack};

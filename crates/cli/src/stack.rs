//! `conductor stack ...` and `conductor cp`: argument shapes and output; the work is in
//! conductor-stack and the engine.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use conductor_engine::Engine;
use conductor_stack::{deploy, file, kube};

#[derive(clap::Subcommand)]
pub enum StackCmd {
    /// Create, recreate or remove containers until they match FILE (unchanged ones keep running).
    Up { file: PathBuf },
    /// Stop and remove every container of the stack (with its network).
    Down { file: PathBuf },
    /// The stack's containers.
    Ps {
        #[arg(long, value_parser = ["table", "json"], default_value = "table")]
        format: String,
        file: PathBuf,
    },
    /// Every service's output, each line prefixed with its container.
    Logs {
        #[arg(short, long)]
        follow: bool,
        file: PathBuf,
    },
    /// Kubernetes manifests for the stack (Deployments and Services).
    Kube {
        #[arg(long, value_parser = ["yaml", "json"], default_value = "yaml")]
        format: String,
        file: PathBuf,
    },
}

pub fn run(engine: &Engine, cmd: StackCmd) -> Result<i32> {
    let say = &mut |l: &str| eprintln!("{l}");
    match cmd {
        StackCmd::Up { file } => {
            let stack = file::load(&file)?;
            deploy::up(engine, &stack, say)?;
        }
        StackCmd::Down { file } => {
            let stack = file::load(&file)?;
            deploy::down(engine, &stack.name, &stack.file, say)?
        }
        StackCmd::Ps { format, file } => ps(engine, &file::load(&file)?.name, format == "json")?,
        StackCmd::Logs { follow, file } => deploy::logs(engine, &file::load(&file)?.name, follow)?,
        StackCmd::Kube { format, file } => {
            let stack = file::load(&file)?;
            print!("{}", if format == "json" { kube::to_json(&stack) } else { kube::to_yaml(&stack)? });
        }
    }
    Ok(0)
}

fn ps(engine: &Engine, stack: &str, json: bool) -> Result<()> {
    let rows: Vec<serde_json::Value> = deploy::containers(engine, stack)
        .into_iter()
        .map(|c| {
            let net = engine.network_of(&c.name).ok().flatten();
            serde_json::json!({
                "Name": c.name,
                "Service": c.labels.get(conductor_stack::plan::LABEL_SERVICE),
                "Status": c.status,
                "Restarts": c.restart_count,
                "Address": net.as_ref().map(|n| n.ip().to_string()),
                "Ports": net.map(|n| n.ports.iter().map(|p| p.to_string()).collect::<Vec<_>>()).unwrap_or_default(),
            })
        })
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!("{:<24} {:<16} {:<14} {:<9} {:<16} PORTS", "NAME", "SERVICE", "STATUS", "RESTARTS", "ADDRESS");
    for r in rows {
        let s = |k: &str| r[k].as_str().unwrap_or("-").to_string();
        let ports: Vec<&str> = r["Ports"].as_array().into_iter().flatten().filter_map(|p| p.as_str()).collect();
        println!(
            "{:<24} {:<16} {:<14} {:<9} {:<16} {}",
            s("Name"),
            s("Service"),
            s("Status"),
            r["Restarts"],
            s("Address"),
            if ports.is_empty() { "-".into() } else { ports.join(",") }
        );
    }
    Ok(())
}

/// `NAME:PATH` names a path in a container; anything else (including `./a:b`) is a host path.
fn container_side(arg: &str) -> Option<(&str, &str)> {
    let (name, path) = arg.split_once(':')?;
    (!name.is_empty() && !name.contains('/') && !name.starts_with('.')).then_some((name, path))
}

/// `cp SRC NAME:DST` or `cp NAME:SRC DST`.
pub fn cp(engine: &Engine, src: &str, dst: &str) -> Result<i32> {
    match (container_side(src), container_side(dst)) {
        (None, Some((name, path))) => engine.copy_to(name, Path::new(src), Path::new(&absolute_in(path)))?,
        (Some((name, path)), None) => engine.copy_from(name, Path::new(&absolute_in(path)), Path::new(dst))?,
        (Some(_), Some(_)) => bail!("cp: copying between two containers is not supported"),
        (None, None) => bail!("cp: one of SRC and DST must be NAME:PATH"),
    }
    Ok(0)
}

/// Container paths are relative to its root (Docker: to its working directory; ours is /).
fn absolute_in(p: &str) -> String {
    if p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_side_is_the_container() {
        assert_eq!(container_side("c1:/srv"), Some(("c1", "/srv")));
        assert_eq!(container_side("./a:b"), None);
        assert_eq!(container_side("/tmp/x"), None);
        assert_eq!(container_side("dir/a:b"), None);
        assert_eq!(absolute_in("srv/x"), "/srv/x");
    }
}

//! conductor-runtime: an OCI runtime with runc's command line, over the conductor-runtime library.

mod log;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use conductor_runtime::oci_spec::runtime::Process;
use conductor_runtime::{CreateOpts, ExecOpts};

#[derive(Parser)]
#[command(name = "conductor-runtime", about = "An OCI container runtime (runc-compatible command line)", disable_version_flag = true)]
struct Cli {
    /// Root directory for container state.
    #[arg(long, global = true, default_value = "/run/conductor-runtime")]
    root: PathBuf,
    /// Log file (default: stderr).
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: log::Format,
    /// Drive cgroups through systemd (not supported: cgroupfs is used; systemd-style paths accepted).
    #[arg(long, global = true)]
    systemd_cgroup: bool,
    /// Debug logging (includes every kernel step).
    #[arg(long, global = true)]
    debug: bool,
    /// Accepted for runc compatibility.
    #[arg(long, global = true, hide = true)]
    criu: Option<String>,
    /// Accepted for runc compatibility (go-runc passes --rootless=true|false|auto before the
    /// command): cgroup permission errors are reported either way. Not global: `spec` has its own.
    #[arg(long, hide = true)]
    rootless: Option<String>,
    /// Print the version.
    #[arg(short = 'v', long)]
    version: bool,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(clap::Args)]
struct CreateArgs {
    /// Bundle directory (holds config.json).
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Unix socket that receives the pty master (process.terminal).
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// File to write init's host pid to.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root.
    #[arg(long)]
    no_pivot: bool,
    /// Do not create a new session keyring.
    #[arg(long)]
    no_new_keyring: bool,
    /// Pass fds 3..3+N through to the container process.
    #[arg(long, default_value_t = 0)]
    preserve_fds: i32,
    id: String,
}

#[derive(Clone, Copy, clap::ValueEnum, PartialEq, Eq)]
enum ListFormat {
    Table,
    Json,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a container (init waits for start).
    Create(CreateArgs),
    /// Start a created container.
    Start { id: String },
    /// Create, start and wait for a container.
    Run {
        #[command(flatten)]
        c: CreateArgs,
        /// Return after start.
        #[arg(short, long)]
        detach: bool,
        /// Keep the container's state after it exits.
        #[arg(long)]
        keep: bool,
    },
    /// Print a container's state as JSON.
    State { id: String },
    /// Send a signal to a container's init (or all its processes).
    Kill {
        #[arg(short, long)]
        all: bool,
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Suspend every process of a running container.
    Pause { id: String },
    /// Resume a paused container.
    Resume { id: String },
    /// Delete a container.
    Delete {
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// List containers.
    List {
        #[arg(short, long, value_enum, default_value = "table")]
        format: ListFormat,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Run a new process in a container.
    Exec(ExecArgs),
    /// Show a container's processes.
    Ps {
        #[arg(short, long, value_enum, default_value = "table")]
        format: ListFormat,
        id: String,
        /// Options for ps(1) (default -ef).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Print the features this runtime supports (JSON).
    Features,
    /// Write a default config.json.
    Spec {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        #[arg(long)]
        rootless: bool,
    },
}

#[derive(clap::Args)]
struct ExecArgs {
    #[arg(long)]
    console_socket: Option<PathBuf>,
    #[arg(long)]
    cwd: Option<PathBuf>,
    #[arg(short, long)]
    env: Vec<String>,
    #[arg(short, long)]
    tty: bool,
    /// UID[:GID]
    #[arg(short, long)]
    user: Option<String>,
    #[arg(short = 'g', long)]
    additional_gids: Vec<u32>,
    /// A process.json to run instead of COMMAND.
    #[arg(short, long)]
    process: Option<PathBuf>,
    #[arg(short, long)]
    detach: bool,
    #[arg(long)]
    pid_file: Option<PathBuf>,
    #[arg(long)]
    no_new_privs: bool,
    #[arg(short, long)]
    cap: Vec<String>,
    #[arg(long, default_value_t = 0)]
    preserve_fds: i32,
    #[arg(long, hide = true)]
    process_label: Option<String>,
    #[arg(long, hide = true)]
    apparmor: Option<String>,
    #[arg(long, hide = true)]
    ignore_paused: bool,
    id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let logfile = match log::init(cli.log.as_deref(), cli.log_format, cli.debug) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("conductor-runtime: open log: {e}");
            return ExitCode::from(1);
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            let msg = format!("{e:#}");
            if let Some((mut f, format)) = logfile {
                let _ = f.write_all(log::render(format, "error", &msg).as_bytes());
            }
            eprintln!("conductor-runtime: {msg}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<i32> {
    if cli.version {
        println!("conductor-runtime version {}", env!("CARGO_PKG_VERSION"));
        println!("spec: {}", conductor_runtime::state::OCI_VERSION);
        return Ok(0);
    }
    let Some(cmd) = cli.cmd else { bail!("no command given (see --help)") };
    let systemd = cli.systemd_cgroup;
    if systemd {
        tracing::warn!("--systemd-cgroup: cgroups are managed through cgroupfs; systemd slice paths are mapped to it");
    }
    // Commands that put the runtime inside a container run from a sealed, read-only copy of
    // the binary (CVE-2019-5736).
    if matches!(cmd, Cmd::Create(_) | Cmd::Run { .. } | Cmd::Exec(_)) {
        // Only on the first pass (the sealed re-exec runs main again).
        if !conductor_sys::sealed_exe::is_sealed() {
            conductor_cgroups::warmup::warm_up();
        }
        if let Err(e) = conductor_sys::sealed_exe::reexec_sealed() {
            bail!("re-exec from a read-only mount of the runtime binary: {e}");
        }
    }
    let root = cli.root;
    match cmd {
        Cmd::Create(c) => {
            conductor_runtime::create(create_opts(&root, c, systemd))?;
        }
        Cmd::Start { id } => conductor_runtime::start(&root, &id)?,
        Cmd::Run { c, detach, keep } => return run_container(&root, c, detach, keep, systemd),
        Cmd::State { id } => println!("{}", serde_json::to_string_pretty(&conductor_runtime::state(&root, &id)?)?),
        Cmd::Kill { all, id, signal } => {
            let sig = conductor_sys::signal::parse(&signal).with_context(|| format!("unknown signal {signal:?}"))?;
            conductor_runtime::kill(&root, &id, sig, all)?;
        }
        Cmd::Pause { id } => conductor_runtime::lifecycle::pause(&root, &id)?,
        Cmd::Resume { id } => conductor_runtime::lifecycle::resume(&root, &id)?,
        Cmd::Delete { force, id } => conductor_runtime::delete(&root, &id, force)?,
        Cmd::List { format, quiet } => list(&root, format, quiet)?,
        Cmd::Exec(e) => return exec(&root, e),
        Cmd::Ps { format, id, ps_args } => ps(&root, &id, format, ps_args)?,
        Cmd::Features => println!("{}", serde_json::to_string_pretty(&conductor_runtime::features::features())?),
        Cmd::Spec { bundle, rootless } => {
            let path = bundle.join("config.json");
            if path.exists() {
                bail!("{} already exists; remove it first", path.display());
            }
            let v = conductor_runtime::features::default_spec(rootless, nix::unistd::getuid().as_raw(), nix::unistd::getgid().as_raw());
            std::fs::write(&path, serde_json::to_string_pretty(&v)? + "\n").with_context(|| format!("write {}", path.display()))?;
        }
    }
    Ok(0)
}

fn create_opts(root: &Path, c: CreateArgs, systemd_cgroup: bool) -> CreateOpts {
    CreateOpts {
        systemd_cgroup,
        root: root.to_path_buf(),
        id: c.id,
        bundle: c.bundle,
        pid_file: c.pid_file,
        console_socket: c.console_socket,
        console_fd: None,
        no_pivot: c.no_pivot,
        no_new_keyring: c.no_new_keyring,
        preserve_fds: c.preserve_fds,
    }
}

/// Foreground or detached `run`. In the foreground with a terminal and no console socket, the
/// runtime holds the pty master itself and proxies it to its own stdio.
fn run_container(root: &Path, c: CreateArgs, detach: bool, keep: bool, systemd: bool) -> Result<i32> {
    let terminal = conductor_runtime::config::load(&c.bundle)?.spec.process().as_ref().and_then(|p| p.terminal()).unwrap_or(false);
    let mut opts = create_opts(root, c, systemd);
    let id = opts.id.clone();
    let mut master_rx = None;
    if terminal && opts.console_socket.is_none() {
        if detach {
            bail!("cannot allocate a terminal for a detached container without --console-socket");
        }
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        opts.console_fd = Some(a.into());
        master_rx = Some(b);
    }
    let pid = conductor_runtime::create(opts)?;
    let tty = match master_rx {
        Some(rx) => Some(conductor_sys::pty::recv_fd(&rx).context("receive pty master")?.0),
        None => None,
    };
    if let Err(e) = conductor_runtime::start(root, &id) {
        let _ = conductor_runtime::delete(root, &id, true);
        return Err(e.into());
    }
    if detach {
        return Ok(0);
    }
    let code = conductor_runtime::wait::foreground(pid, tty)?;
    if !keep {
        conductor_runtime::delete(root, &id, true)?;
    }
    Ok(code)
}

fn list(root: &Path, format: ListFormat, quiet: bool) -> Result<()> {
    let all = conductor_runtime::list(root);
    if quiet {
        all.iter().for_each(|s| println!("{}", s.id));
    } else if format == ListFormat::Json {
        println!("{}", serde_json::to_string(&all)?);
    } else {
        println!("{:<20} {:<8} {:<10} {:<40} {:<32} OWNER", "ID", "PID", "STATUS", "BUNDLE", "CREATED");
        for s in all {
            let owner = if s.owner.is_empty() { "root" } else { &s.owner };
            println!("{:<20} {:<8} {:<10} {:<40} {:<32} {owner}", s.id, s.pid, s.status.to_string(), s.bundle.display(), s.created);
        }
    }
    Ok(())
}

fn ps(root: &Path, id: &str, format: ListFormat, args: Vec<String>) -> Result<()> {
    let pids = conductor_runtime::pids(root, id)?;
    if format == ListFormat::Json {
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(());
    }
    let args = if args.is_empty() { vec!["-ef".to_string()] } else { args };
    let out = std::process::Command::new("ps").args(&args).output().context("run ps")?;
    if !out.status.success() {
        bail!("ps {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header.split_whitespace().position(|h| h == "PID").context("ps output has no PID column")?;
    println!("{header}");
    for l in lines {
        if l.split_whitespace().nth(col).and_then(|p| p.parse::<i32>().ok()).is_some_and(|p| pids.contains(&p)) {
            println!("{l}");
        }
    }
    Ok(())
}

fn exec(root: &Path, e: ExecArgs) -> Result<i32> {
    let process = match &e.process {
        Some(p) => conductor_runtime::exec::load_process(p)?,
        None => exec_process(root, &e)?,
    };
    let terminal = process.terminal().unwrap_or(false);
    let mut console_fd = None;
    let mut master_rx = None;
    if terminal && e.console_socket.is_none() {
        if e.detach {
            bail!("cannot allocate a terminal for a detached exec without --console-socket");
        }
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        console_fd = Some(a.into());
        master_rx = Some(b);
    }
    let pid = conductor_runtime::exec(ExecOpts {
        root: root.to_path_buf(),
        id: e.id.clone(),
        process,
        console_socket: e.console_socket,
        console_fd,
        pid_file: e.pid_file,
        preserve_fds: e.preserve_fds,
    })?;
    if e.detach {
        return Ok(0);
    }
    let tty = match master_rx {
        Some(rx) => Some(conductor_sys::pty::recv_fd(&rx).context("receive pty master")?.0),
        None => None,
    };
    Ok(conductor_runtime::wait::foreground(pid, tty)?)
}

/// The process for `exec ID COMMAND...`: the container's own process settings with the
/// command-line overrides (as runc does).
fn exec_process(root: &Path, e: &ExecArgs) -> Result<Process> {
    if e.command.is_empty() {
        bail!("exec: no command given (pass COMMAND or --process)");
    }
    let dir = conductor_runtime::state::Dir::open(root, &e.id)?;
    let raw = std::fs::read(dir.file(conductor_runtime::state::CONFIG))?;
    let spec = conductor_runtime::config::parse(&raw).map_err(anyhow::Error::msg)?;
    let mut p = spec.process().clone().context("container has no process")?;
    p.set_args(Some(e.command.clone()));
    p.set_terminal(Some(e.tty));
    if let Some(cwd) = &e.cwd {
        p.set_cwd(cwd.clone());
    }
    let mut env = p.env().clone().unwrap_or_default();
    for kv in &e.env {
        let key = kv.split('=').next().unwrap_or_default();
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    if let Some(u) = &e.user {
        let (uid, gid) = u.split_once(':').map(|(a, b)| (a, Some(b))).unwrap_or((u, None));
        let uid: u32 = uid.parse().with_context(|| format!("--user {u:?}: not numeric"))?;
        p.user_mut().set_uid(uid);
        if let Some(g) = gid {
            p.user_mut().set_gid(g.parse().with_context(|| format!("--user {u:?}: not numeric"))?);
        }
    }
    if !e.additional_gids.is_empty() {
        p.user_mut().set_additional_gids(Some(e.additional_gids.clone()));
    }
    if e.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if !e.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for c in &e.cap {
            let cap = c.trim_start_matches("CAP_").parse().with_context(|| format!("--cap {c:?}: unknown capability"))?;
            let add = |s: Option<_>| {
                let mut s: std::collections::HashSet<_> = s.unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            caps.set_bounding(add(caps.bounding().clone()));
            caps.set_effective(add(caps.effective().clone()));
            caps.set_permitted(add(caps.permitted().clone()));
        }
        p.set_capabilities(Some(caps));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn runc_global_flags_as_go_runc_passes_them() {
        let args = ["conductor-runtime", "--root", "/r", "--log", "/l", "--log-format", "json", "--rootless=false", "delete", "x"];
        let cli = Cli::try_parse_from(args).unwrap();
        assert!(matches!(cli.cmd, Some(Cmd::Delete { ref id, force: false }) if id == "x"));
        let cli = Cli::try_parse_from(["conductor-runtime", "spec", "--rootless"]).unwrap();
        assert!(matches!(cli.cmd, Some(Cmd::Spec { rootless: true, .. })));
    }
}

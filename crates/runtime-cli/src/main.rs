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
#[command(
    name = "conductor-runtime",
    about = "An OCI container runtime (runc-compatible command line)",
    disable_version_flag = true
)]
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
    /// Change a container's resource limits (merged onto those in force).
    Update(UpdateArgs),
    /// Show a container's resource usage and OOM events as JSON lines.
    Events {
        /// Print the container's stats once and exit.
        #[arg(long)]
        stats: bool,
        /// Time between stats events (Go-style duration: 500ms, 5s, 1m).
        #[arg(long, default_value = "5s", value_parser = parse_duration)]
        interval: std::time::Duration,
        id: String,
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

/// runc's `update` flags. Sizes take runc's suffixes (k, m, g, t, p; binary; optional `i`/`b`);
/// -1 means unlimited. Values are checked before anything is written.
#[derive(clap::Args)]
struct UpdateArgs {
    /// JSON file with linux.resources to apply ('-' for stdin); excludes the other flags.
    #[arg(short, long, conflicts_with_all = UPDATE_FLAGS)]
    resources: Option<String>,
    /// Memory limit (bytes, or with a suffix).
    #[arg(long, allow_hyphen_values = true)]
    memory: Option<String>,
    /// Memory soft limit.
    #[arg(long, allow_hyphen_values = true)]
    memory_reservation: Option<String>,
    /// Total memory plus swap; -1 for unlimited swap.
    #[arg(long, allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// CPU shares (relative weight).
    #[arg(long = "cpu-share", visible_alias = "cpu-shares", allow_hyphen_values = true)]
    cpu_share: Option<String>,
    /// CFS quota in microseconds per period; -1 for none.
    #[arg(long, allow_hyphen_values = true)]
    cpu_quota: Option<String>,
    /// CFS period in microseconds.
    #[arg(long, allow_hyphen_values = true)]
    cpu_period: Option<String>,
    /// CFS burst in microseconds.
    #[arg(long, allow_hyphen_values = true)]
    cpu_burst: Option<String>,
    /// Realtime period in microseconds (cgroup v1).
    #[arg(long, allow_hyphen_values = true)]
    cpu_rt_period: Option<String>,
    /// Realtime runtime in microseconds (cgroup v1).
    #[arg(long, allow_hyphen_values = true)]
    cpu_rt_runtime: Option<String>,
    /// CPUs to run on, e.g. 0-1,3.
    #[arg(long)]
    cpuset_cpus: Option<String>,
    /// Memory nodes to use.
    #[arg(long)]
    cpuset_mems: Option<String>,
    /// Maximum number of processes; -1 for none.
    #[arg(long, allow_hyphen_values = true)]
    pids_limit: Option<String>,
    /// Block IO weight (10-1000).
    #[arg(long, allow_hyphen_values = true)]
    blkio_weight: Option<String>,
    /// Obsolete in runc; ignored.
    #[arg(long, hide = true)]
    kernel_memory: Option<String>,
    /// Obsolete in runc; ignored.
    #[arg(long, hide = true)]
    kernel_memory_tcp: Option<String>,
    id: String,
}

const UPDATE_FLAGS: [&str; 15] = [
    "memory",
    "memory_reservation",
    "memory_swap",
    "cpu_share",
    "cpu_quota",
    "cpu_period",
    "cpu_burst",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpuset_cpus",
    "cpuset_mems",
    "pids_limit",
    "blkio_weight",
    "kernel_memory",
    "kernel_memory_tcp",
];

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
        Cmd::Update(u) => {
            let r = update_resources(&u)?;
            conductor_runtime::update(&root, &u.id, &r)?;
        }
        Cmd::Events { stats, interval, id } => {
            conductor_runtime::events(&root, &id, stats, interval, &mut std::io::stdout().lock())?;
        }
        Cmd::Features => println!("{}", serde_json::to_string_pretty(&conductor_runtime::features::features())?),
        Cmd::Spec { bundle, rootless } => {
            let path = bundle.join("config.json");
            if path.exists() {
                bail!("{} already exists; remove it first", path.display());
            }
            let v = conductor_runtime::features::default_spec(
                rootless,
                nix::unistd::getuid().as_raw(),
                nix::unistd::getgid().as_raw(),
            );
            std::fs::write(&path, serde_json::to_string_pretty(&v)? + "\n")
                .with_context(|| format!("write {}", path.display()))?;
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
    let terminal =
        conductor_runtime::config::load(&c.bundle)?.spec.process().as_ref().and_then(|p| p.terminal()).unwrap_or(false);
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
            println!(
                "{:<20} {:<8} {:<10} {:<40} {:<32} {owner}",
                s.id,
                s.pid,
                s.status.to_string(),
                s.bundle.display(),
                s.created
            );
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
    let user = e
        .user
        .as_deref()
        .map(|u| {
            let (uid, gid) = u.split_once(':').map(|(a, b)| (a, Some(b))).unwrap_or((u, None));
            let num = |s: &str| s.parse::<u32>().with_context(|| format!("--user {u:?}: not numeric"));
            Ok::<_, anyhow::Error>((num(uid)?, gid.map(num).transpose()?))
        })
        .transpose()?;
    let overrides =
        conductor_runtime::exec::Overrides { args: e.command.clone(), tty: e.tty, cwd: e.cwd.clone(), env: e.env.clone(), user };
    let mut p = conductor_runtime::exec::process_for(root, &e.id, &overrides)?;
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

/// The resources an `update` asks for: the --resources JSON, or the flags.
fn update_resources(u: &UpdateArgs) -> Result<conductor_runtime::oci_spec::runtime::LinuxResources> {
    if let Some(src) = &u.resources {
        let raw = if src == "-" {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).context("read resources from stdin")?;
            buf
        } else {
            std::fs::read(src).with_context(|| format!("read {src}"))?
        };
        return conductor_runtime::update::parse_resources(&raw).map_err(|e| anyhow::anyhow!("--resources {src}: {e}"));
    }
    if u.kernel_memory.is_some() || u.kernel_memory_tcp.is_some() {
        tracing::warn!("--kernel-memory and --kernel-memory-tcp are obsolete and ignored");
    }
    let mut r = serde_json::json!({});
    let mut set = |section: &str, field: &str, v: serde_json::Value| r[section][field] = v;
    for (flag, v, field) in [
        ("memory", &u.memory, "limit"),
        ("memory-reservation", &u.memory_reservation, "reservation"),
        ("memory-swap", &u.memory_swap, "swap"),
    ] {
        if let Some(v) = v {
            set("memory", field, parse_size(v).with_context(|| format!("invalid value for --{flag}: {v:?}"))?.into());
        }
    }
    for (flag, v, field) in [
        ("cpu-share", &u.cpu_share, "shares"),
        ("cpu-period", &u.cpu_period, "period"),
        ("cpu-rt-period", &u.cpu_rt_period, "realtimePeriod"),
        ("cpu-burst", &u.cpu_burst, "burst"),
    ] {
        if let Some(v) = v {
            let n: u64 = v.parse().map_err(|e| anyhow::anyhow!("invalid value for --{flag}: {v:?}: {e}"))?;
            set("cpu", field, n.into());
        }
    }
    for (flag, v, field) in [("cpu-quota", &u.cpu_quota, "quota"), ("cpu-rt-runtime", &u.cpu_rt_runtime, "realtimeRuntime")] {
        if let Some(v) = v {
            let n: i64 = v.parse().map_err(|e| anyhow::anyhow!("invalid value for --{flag}: {v:?}: {e}"))?;
            set("cpu", field, n.into());
        }
    }
    for (v, field) in [(&u.cpuset_cpus, "cpus"), (&u.cpuset_mems, "mems")] {
        if let Some(v) = v {
            set("cpu", field, v.clone().into());
        }
    }
    if let Some(v) = &u.pids_limit {
        let n: i64 = v.parse().map_err(|e| anyhow::anyhow!("invalid value for --pids-limit: {v:?}: {e}"))?;
        set("pids", "limit", n.into());
    }
    if let Some(v) = &u.blkio_weight {
        let n: u16 = v.parse().map_err(|e| anyhow::anyhow!("invalid value for --blkio-weight: {v:?}: {e}"))?;
        // runc: 0 leaves the weight alone.
        if n != 0 {
            set("blockIO", "weight", n.into());
        }
    }
    if r.as_object().is_some_and(|o| o.is_empty()) {
        bail!("update: nothing to change (give --resources or a limit flag; see --help)");
    }
    Ok(serde_json::from_value(r)?)
}

/// A size as runc (go-units' RAMInBytes) reads it: a number (fractions allowed), an optional
/// space, a k/m/g/t/p multiplier of 1024, an optional `i` and an optional `b`; "-1" = unlimited.
fn parse_size(s: &str) -> Result<i64> {
    if s.trim() == "-1" {
        return Ok(-1);
    }
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let t = t.strip_suffix('i').unwrap_or(t);
    let (num, mult) = match t.chars().last() {
        Some(c @ ('k' | 'm' | 'g' | 't' | 'p')) => {
            let exp = "kmgtp".find(c).unwrap_or(0) as i32 + 1;
            (&t[..t.len() - 1], 1024f64.powi(exp))
        }
        _ => (t, 1.0),
    };
    let num = num.trim_end_matches(' ');
    if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit() || c == '.') || num.starts_with('.') {
        bail!("expected a size such as 1048576, 512m or 1g (or -1 for unlimited)");
    }
    let n: f64 = num.parse().map_err(|_| anyhow::anyhow!("expected a size such as 1048576, 512m or 1g"))?;
    let bytes = n * mult;
    if !bytes.is_finite() || bytes >= i64::MAX as f64 {
        bail!("too large");
    }
    Ok(bytes as i64)
}

/// A Go-style duration ("300ms", "5s", "1m30s", "1.5h"), as runc's --interval takes.
fn parse_duration(s: &str) -> std::result::Result<std::time::Duration, String> {
    let bad = || format!("{s:?} is not a duration such as 500ms, 5s or 1m");
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut secs = 0f64;
    while !rest.is_empty() {
        let n_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let n: f64 = rest[..n_end].parse().map_err(|_| bad())?;
        rest = &rest[n_end..];
        let u_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = match &rest[..u_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        secs += n * unit;
        rest = &rest[u_end..];
    }
    std::time::Duration::try_from_secs_f64(secs).map_err(|_| bad())
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
    fn sizes_as_runc_reads_them() {
        assert_eq!(parse_size("1048576").unwrap(), 1 << 20);
        assert_eq!(parse_size("32m").unwrap(), 32 << 20);
        assert_eq!(parse_size("32MiB").unwrap(), 32 << 20);
        assert_eq!(parse_size("1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_size("1 kb").unwrap(), 1024);
        assert_eq!(parse_size("-1").unwrap(), -1);
        for bad in ["", "x", "-2", "1x", "m", "1mm", ".5m", "99999999999p"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn go_durations() {
        use std::time::Duration;
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("300ms").unwrap(), Duration::from_millis(300));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        for bad in ["", "5", "s", "5x", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn update_flags_build_resources() {
        let args = "r update --memory 32m --memory-swap=-1 --cpu-quota -1 --cpu-period 100000 --cpu-shares 512 \
                    --cpuset-cpus 0 --pids-limit 20 --blkio-weight 300 c1";
        let cli = Cli::try_parse_from(args.split_whitespace()).unwrap();
        let Some(Cmd::Update(u)) = cli.cmd else { panic!() };
        let r = serde_json::to_value(update_resources(&u).unwrap()).unwrap();
        assert_eq!(
            r,
            serde_json::json!({
                "memory": {"limit": 33554432, "swap": -1},
                "cpu": {"quota": -1, "period": 100000, "shares": 512, "cpus": "0"},
                "pids": {"limit": 20},
                "blockIO": {"weight": 300}
            })
        );
        let cli = Cli::try_parse_from(["r", "update", "--cpu-period", "x", "c1"]).unwrap();
        let Some(Cmd::Update(u)) = cli.cmd else { panic!() };
        assert!(update_resources(&u).unwrap_err().to_string().starts_with("invalid value for --cpu-period: \"x\""));
        assert!(Cli::try_parse_from(["r", "update", "--resources", "-", "--memory", "1m", "c1"]).is_err());
    }

    #[test]
    fn runc_global_flags_as_go_runc_passes_them() {
        let args =
            ["conductor-runtime", "--root", "/r", "--log", "/l", "--log-format", "json", "--rootless=false", "delete", "x"];
        let cli = Cli::try_parse_from(args).unwrap();
        assert!(matches!(cli.cmd, Some(Cmd::Delete { ref id, force: false }) if id == "x"));
        let cli = Cli::try_parse_from(["conductor-runtime", "spec", "--rootless"]).unwrap();
        assert!(matches!(cli.cmd, Some(Cmd::Spec { rootless: true, .. })));
    }
}

//! conductor: a daemonless container engine (the seed's Task 3 tool, done properly).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use conductor_engine::resources::{ContainerStats, StatsSample};
use conductor_engine::{options, Engine, ExecOptions, Outcome, Paths, ResourceUpdate, RunOptions};

mod stack;

#[derive(Parser)]
#[command(name = "conductor", about = "A container engine: images, containers, networks", version)]
struct Cli {
    /// Data directory (images, containers); default /var/lib/conductor or $CONDUCTOR_ROOT.
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    /// Run-time state directory; default /run/conductor or $CONDUCTOR_RUNROOT.
    #[arg(long, global = true)]
    runroot: Option<PathBuf>,
    /// Print each kernel-level step (clone flags, setns, mounts, pivot_root, cgroup writes,
    /// netlink and nftables changes) to stderr as it is taken.
    #[arg(long, global = true)]
    explain: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build a Debian image with debootstrap.
    Build {
        image: String,
        #[arg(long, default_value = "bookworm")]
        suite: String,
        #[arg(long)]
        variant: Option<String>,
        /// Extra packages, comma separated.
        #[arg(long, value_delimiter = ',')]
        include: Vec<String>,
        /// Debian mirror (default: the one apt is configured with).
        #[arg(long)]
        mirror: Option<String>,
    },
    /// Import a root filesystem tarball (plain or gzip) as an image.
    Import { tarball: PathBuf, image: String },
    /// List images.
    Images,
    /// Remove an image (refused while a container uses it).
    Rmi { image: String },
    /// Run a command in a new container.
    Run(Box<RunArgs>),
    /// List containers.
    Ps {
        /// Include exited containers.
        #[arg(short, long)]
        all: bool,
        #[arg(long, value_parser = ["table", "json"], default_value = "table")]
        format: String,
    },
    /// Show a container's configuration and state as JSON.
    Inspect {
        /// A Go-template subset: `{{.State.Pid}}`, `{{json .Network}}`.
        #[arg(short, long)]
        format: Option<String>,
        name: String,
    },
    /// Copy files between a container and the host: `cp SRC NAME:DST` or `cp NAME:SRC DST`.
    Cp { src: String, dst: String },
    /// Stacks: several services from one TOML file (see README, "Stacks").
    Stack {
        #[command(subcommand)]
        cmd: stack::StackCmd,
    },
    /// Run a command in a running container.
    Exec(ExecArgs),
    /// Show a container's output.
    Logs {
        #[arg(short, long)]
        follow: bool,
        #[arg(long)]
        tail: Option<usize>,
        name: String,
    },
    /// Send a signal to a container.
    Kill {
        name: String,
        #[arg(default_value = "KILL")]
        signal: String,
    },
    /// Stop a container (SIGTERM, SIGKILL after the timeout) and remove all of its state.
    #[command(alias = "rm")]
    Stop {
        #[arg(short = 't', long = "time", default_value_t = 10)]
        time: u64,
        name: String,
    },
    /// Change a running container's limits.
    Update {
        /// CPU limit in CPUs, e.g. 1.5.
        #[arg(long, allow_hyphen_values = true)]
        cpus: Option<String>,
        /// Memory limit, e.g. 256m.
        #[arg(short, long, allow_hyphen_values = true)]
        memory: Option<String>,
        /// Maximum number of processes (-1: unlimited).
        #[arg(long, allow_hyphen_values = true)]
        pids_limit: Option<String>,
        name: String,
    },
    /// Freeze every process of a container.
    Pause { name: String },
    /// Resume a paused container.
    Unpause { name: String },
    /// Show containers' CPU, memory and process counts (default: all running ones).
    Stats {
        /// Print one sample and exit instead of redrawing every second.
        #[arg(long)]
        no_stream: bool,
        #[arg(long, value_parser = ["table", "json"], default_value = "table")]
        format: String,
        names: Vec<String>,
    },
    /// Remove whatever crashed commands left behind.
    Prune,
    /// Connect a running container to the host: a veth pair, its own subnet, a default route.
    Addnetwork {
        name: String,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Let two networked containers reach each other (by address and by name).
    Peer { a: String, b: String },
    /// Container networks.
    Network {
        #[command(subcommand)]
        cmd: NetworkCmd,
    },
    /// Images (beyond build, import, images, rmi).
    Image {
        #[command(subcommand)]
        cmd: ImageCmd,
    },
    /// The seed's exercises, from kernel primitives.
    Lab {
        #[command(subcommand)]
        cmd: LabCmd,
    },
}

#[derive(Subcommand)]
enum ImageCmd {
    /// An image holding PROGRAM and its shared-library closure (and each --add PATH), nothing else.
    FromBinary {
        image: String,
        program: PathBuf,
        /// Another file or directory to include (with the libraries of any ELF files in it).
        #[arg(long = "add", value_name = "PATH")]
        add: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum LabCmd {
    /// Task 1: a child in new UTS and PID namespaces (clone3), a second one joined into them
    /// (pidfd_open + setns).
    Namespaces,
}

#[derive(Subcommand)]
enum NetworkCmd {
    /// List containers' networks.
    Ls {
        #[arg(long, value_parser = ["table", "json"], default_value = "table")]
        format: String,
    },
}

#[derive(clap::Args, Default)]
struct NetArgs {
    /// Let the container reach beyond the host (masqueraded out of the default-route interface).
    #[arg(short, long)]
    internet: bool,
    /// The seed's CPORT-HPORT[/udp]: container port CPORT is host port HPORT.
    #[arg(short, long = "expose", value_name = "CPORT-HPORT")]
    expose: Vec<String>,
    /// Docker's HPORT:CPORT[/tcp|/udp].
    #[arg(short, long = "publish", value_name = "HPORT:CPORT")]
    publish: Vec<String>,
}

impl NetArgs {
    fn request(&self) -> Result<conductor_engine::NetRequest> {
        use conductor_network::firewall::PortSpec;
        let mut ports = Vec::new();
        for e in &self.expose {
            ports.push(PortSpec::parse_seed(e)?);
        }
        for p in &self.publish {
            ports.push(PortSpec::parse_docker(p)?);
        }
        Ok(conductor_engine::NetRequest { internet: self.internet, ports })
    }
}

#[derive(clap::Args)]
struct RunArgs {
    /// Run in the background and print nothing but the name.
    #[arg(short, long)]
    detach: bool,
    /// Environment variable KEY=VALUE.
    #[arg(short, long = "env")]
    env: Vec<String>,
    /// Bind mount HOST:CONTAINER[:ro].
    #[arg(short, long = "volume")]
    volume: Vec<String>,
    /// Working directory in the container.
    #[arg(short, long)]
    workdir: Option<String>,
    #[arg(long)]
    hostname: Option<String>,
    /// UID[:GID]
    #[arg(short, long)]
    user: Option<String>,
    /// CPU limit in CPUs, e.g. 0.5.
    #[arg(long, allow_hyphen_values = true)]
    cpus: Option<String>,
    /// Memory limit, e.g. 256m.
    #[arg(short, long, allow_hyphen_values = true)]
    memory: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    pids_limit: Option<String>,
    /// Mount the root filesystem read-only.
    #[arg(long)]
    read_only: bool,
    /// Run a minimal init as pid 1 that forwards signals and reaps zombies.
    #[arg(long)]
    init: bool,
    /// no | on-failure[:MAX] | always[:MAX]: what the monitor does when the program exits.
    #[arg(long, default_value = "no")]
    restart: String,
    /// `host`: share the host's PID namespace (the seed's Task 2a: only a new root).
    #[arg(long, value_name = "host")]
    pid: Option<String>,
    /// `host`: share the host's UTS namespace (hostname).
    #[arg(long, value_name = "host")]
    uts: Option<String>,
    /// `host`: share the host's IPC namespace.
    #[arg(long, value_name = "host")]
    ipc: Option<String>,
    /// Connect the container to the host before its program starts (as `addnetwork`).
    #[arg(long)]
    network: bool,
    /// With a network: reach beyond the host (addnetwork's -i).
    #[arg(long)]
    internet: bool,
    /// With a network: the seed's CPORT-HPORT (addnetwork's -e; -e is --env here, as in Docker).
    #[arg(long = "expose", value_name = "CPORT-HPORT")]
    expose: Vec<String>,
    /// With a network: Docker's HPORT:CPORT[/tcp|/udp].
    #[arg(short, long = "publish", value_name = "HPORT:CPORT")]
    publish: Vec<String>,
    image: String,
    name: String,
    /// Command and arguments (after --); default: the image's command.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(clap::Args)]
struct ExecArgs {
    #[arg(short, long)]
    detach: bool,
    #[arg(short, long = "env")]
    env: Vec<String>,
    #[arg(short, long)]
    workdir: Option<String>,
    #[arg(short, long)]
    user: Option<String>,
    name: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            // One line, not clap's usage block: what was wrong is all a script needs.
            let text = e.render().to_string();
            eprintln!("conductor: {}", text.lines().next().unwrap_or("invalid arguments").trim_start_matches("error: "));
            return ExitCode::from(125);
        }
    };
    if let Err(e) = logging(cli.explain) {
        eprintln!("conductor: --explain: {e}");
        return ExitCode::from(125);
    }
    match run(cli) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("conductor: {e:#}");
            ExitCode::from(125)
        }
    }
}

/// Warnings to stderr; with --explain, every step the libraries report too.
fn logging(explain: bool) -> std::io::Result<()> {
    use tracing_subscriber::filter::{filter_fn, LevelFilter};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::Layer;
    let warnings = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).without_time().with_filter(LevelFilter::WARN);
    let steps = if explain {
        let only_steps = filter_fn(|m| m.target() == conductor_sys::EXPLAIN);
        Some(conductor_engine::explain::to_stderr()?.with_filter(only_steps))
    } else {
        None
    };
    let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(warnings).with(steps));
    Ok(())
}

fn paths(cli: &Cli) -> Paths {
    let mut p = Paths::from_env();
    if let Some(r) = &cli.root {
        p.data = r.clone();
    }
    if let Some(r) = &cli.runroot {
        p.run = r.clone();
    }
    p
}

fn run(cli: Cli) -> Result<i32> {
    if let Cmd::Lab { cmd: LabCmd::Namespaces } = cli.cmd {
        // Needs a single-threaded process: before anything else runs.
        conductor_lab::namespaces::namespaces()?;
        return Ok(0);
    }
    if matches!(cli.cmd, Cmd::Run(_) | Cmd::Exec(_) | Cmd::Stack { cmd: stack::StackCmd::Up { .. } }) {
        // The container's init starts as a copy of this process: run it from a read-only
        // mount of the binary (CVE-2019-5736).
        conductor_sys::sealed_exe::reexec_sealed().context("re-exec from a read-only mount of conductor")?;
    }
    let engine = Engine::open(paths(&cli))?;
    match cli.cmd {
        Cmd::Build { image, suite, variant, include, mirror } => {
            let opts = conductor_image::BuildOpts { suite, variant, include, mirror, ..Default::default() };
            engine.images.build_debootstrap(&image, &opts, conductor_image::progress::for_stderr().as_mut())?;
            println!("{image}");
        }
        Cmd::Import { tarball, image } => {
            engine.images.import(&tarball, &image, conductor_image::progress::for_stderr().as_mut())?;
            println!("{image}");
        }
        Cmd::Images => {
            println!("{:<24} {:>10} CREATED", "NAME", "SIZE");
            for i in engine.images.list()? {
                println!("{:<24} {:>10} {}", i.name, human_size(i.size), i.created);
            }
        }
        Cmd::Rmi { image } => {
            engine.remove_image(&image)?;
            println!("{image}");
        }
        Cmd::Run(r) => return run_container(&engine, *r),
        Cmd::Ps { all, format } => {
            let list = engine.list(all);
            if format == "json" {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!("{:<20} {:<16} {:<30} {:<26} STATUS", "NAME", "IMAGE", "COMMAND", "CREATED");
                for c in list {
                    let created = c.created.get(..19).unwrap_or(&c.created).replace('T', " ");
                    println!("{:<20} {:<16} {:<30} {:<26} {}", c.name, c.image, truncate(&c.command, 30), created, c.status);
                }
            }
        }
        Cmd::Inspect { format: None, name } => println!("{}", serde_json::to_string_pretty(&engine.inspect(&name)?)?),
        Cmd::Inspect { format: Some(t), name } => {
            println!("{}", conductor_engine::template::render(&t, &engine.inspect(&name)?)?)
        }
        Cmd::Cp { src, dst } => return stack::cp(&engine, &src, &dst),
        Cmd::Stack { cmd } => return stack::run(&engine, cmd),
        Cmd::Exec(e) => return exec(&engine, e),
        Cmd::Logs { follow, tail, name } => engine.logs(&name, tail, follow, &mut std::io::stdout())?,
        Cmd::Kill { name, signal } => {
            let sig = conductor_sys::signal::parse(&signal).with_context(|| format!("unknown signal {signal:?}"))?;
            engine.kill(&name, sig)?;
        }
        Cmd::Stop { time, name } => {
            engine.stop(&name, Duration::from_secs(time))?;
            println!("{name}");
        }
        Cmd::Update { cpus, memory, pids_limit, name } => {
            let u = ResourceUpdate {
                cpus: cpus.as_deref().map(options::parse_cpus).transpose()?,
                memory: memory.as_deref().map(options::parse_memory).transpose()?,
                pids_limit: pids_limit.as_deref().map(options::parse_pids).transpose()?,
            };
            engine.update(&name, &u)?;
            println!("{name}");
        }
        Cmd::Pause { name } => {
            engine.pause(&name)?;
            println!("{name}");
        }
        Cmd::Unpause { name } => {
            engine.unpause(&name)?;
            println!("{name}");
        }
        Cmd::Stats { no_stream, format, names } => stats(&engine, no_stream, format == "json", names)?,
        Cmd::Prune => {
            for r in engine.prune() {
                println!("removed {r}");
            }
        }
        Cmd::Addnetwork { name, net } => {
            let rec = engine.add_network(&name, &net.request()?)?;
            let a = &rec.allocation;
            println!(
                "{name}: {} ({}) <-> {} ({}) in {}",
                a.ifnames.outside, a.host_ip, a.ifnames.inside, a.container_ip, a.subnet
            );
        }
        Cmd::Peer { a, b } => {
            engine.peer(&a, &b)?;
            println!("{a} <-> {b}");
        }
        Cmd::Network { cmd: NetworkCmd::Ls { format } } => network_ls(&engine, format == "json")?,
        Cmd::Image { cmd: ImageCmd::FromBinary { image, program, add } } => {
            engine.images.build_from_binary(&image, &program, &add, conductor_image::progress::for_stderr().as_mut())?;
            println!("{image}");
        }
        Cmd::Lab { cmd: LabCmd::Namespaces } => unreachable!("handled before the engine opens"),
    }
    Ok(0)
}

fn run_container(engine: &Engine, r: RunArgs) -> Result<i32> {
    let stdin_tty = std::io::stdin().is_terminal();
    let network = run_network(&r)?;
    let mut host_namespaces = Vec::new();
    for (opt, ns, v) in [("--pid", "pid", &r.pid), ("--uts", "uts", &r.uts), ("--ipc", "ipc", &r.ipc)] {
        if let Some(v) = v {
            if options::parse_host_namespace(opt, v)? {
                host_namespaces.push(ns.to_string());
            }
        }
    }
    let opts = RunOptions {
        env: r.env.iter().map(|e| options::parse_env(e)).collect::<Result<_, _>>()?,
        volumes: r.volume.iter().map(|v| options::parse_volume(v)).collect::<Result<_, _>>()?,
        workdir: r.workdir,
        hostname: r.hostname,
        user: r.user.as_deref().map(options::parse_user).transpose()?,
        cpus: r.cpus.as_deref().map(options::parse_cpus).transpose()?,
        memory: r.memory.as_deref().map(options::parse_memory).transpose()?,
        pids_limit: r.pids_limit.as_deref().map(options::parse_pids).transpose()?,
        read_only: r.read_only,
        init: r.init,
        tty: stdin_tty && !r.detach,
        interactive: !r.detach,
        detach: r.detach,
        network,
        host_namespaces,
        restart: conductor_engine::RestartPolicy::parse(&r.restart)?,
        ..Default::default()
    };
    let raw = opts.tty.then(|| conductor_sys::pty::make_raw(&std::io::stdin()).ok()).flatten();
    let res = engine.run(&r.image, &r.name, &r.command, opts);
    if let Some(old) = raw {
        let _ = nix::sys::termios::tcsetattr(std::io::stdin(), nix::sys::termios::SetArg::TCSANOW, &old);
    }
    match res? {
        Outcome::Detached => {
            println!("{}", r.name);
            Ok(0)
        }
        Outcome::Exited(code) => Ok(code),
    }
}

/// `run`'s network options: any of them asks for a network.
fn run_network(r: &RunArgs) -> Result<Option<conductor_engine::NetRequest>> {
    let want = r.network || r.internet || !r.expose.is_empty() || !r.publish.is_empty();
    let args = NetArgs { internet: r.internet, expose: r.expose.clone(), publish: r.publish.clone() };
    Ok(if want { Some(args.request()?) } else { None })
}

fn network_ls(engine: &Engine, json: bool) -> Result<()> {
    let nets = engine.networks();
    if json {
        let v: Vec<_> = nets.iter().map(|(n, r)| serde_json::json!({"Name": n, "Network": r})).collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("{:<20} {:<16} {:<16} {:<16} {:<10} {:<24} PEERS", "NAME", "ADDRESS", "GATEWAY", "HOST LINK", "INTERNET", "PORTS");
    for (n, r) in nets {
        let a = &r.allocation;
        let ports: Vec<String> = r.ports.iter().map(|p| p.to_string()).collect();
        println!(
            "{:<20} {:<16} {:<16} {:<16} {:<10} {:<24} {}",
            n,
            a.container_cidr().to_string(),
            a.host_ip.to_string(),
            a.ifnames.outside,
            r.internet.as_deref().unwrap_or("-"),
            if ports.is_empty() { "-".into() } else { ports.join(",") },
            if r.peers.is_empty() { "-".into() } else { r.peers.join(",") }
        );
    }
    Ok(())
}

fn exec(engine: &Engine, e: ExecArgs) -> Result<i32> {
    let opts = ExecOptions {
        env: e.env.iter().map(|v| options::parse_env(v)).collect::<Result<_, _>>()?,
        workdir: e.workdir,
        user: e.user.as_deref().map(options::parse_user).transpose()?,
        tty: std::io::stdin().is_terminal() && !e.detach,
        detach: e.detach,
    };
    match engine.exec(&e.name, &e.command, &opts)? {
        Outcome::Detached => Ok(0),
        Outcome::Exited(code) => Ok(code),
    }
}

/// `stats`: a table (or JSON lines) of every named, else every running, container; with
/// streaming, redrawn every second until interrupted, the CPU % taken over that second.
fn stats(engine: &Engine, no_stream: bool, json: bool, names: Vec<String>) -> Result<()> {
    let pick = || if names.is_empty() { engine.live_names() } else { names.clone() };
    if no_stream {
        let list = engine.stats_many(&pick(), Duration::from_millis(500))?;
        return print_stats(&list, json, false);
    }
    let sample_all = |names: &[String], strict: bool| -> Result<Vec<StatsSample>> {
        let mut v = Vec::new();
        for n in names {
            match engine.stats_sample(n) {
                Ok(s) => v.push(s),
                Err(e) if strict => return Err(e.into()),
                // A container that stopped meanwhile drops out of the stream.
                Err(_) => {}
            }
        }
        Ok(v)
    };
    let mut prev = sample_all(&pick(), true)?;
    let redraw = std::io::stdout().is_terminal() && !json;
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let cur = sample_all(&pick(), false)?;
        let rows: Vec<ContainerStats> = cur
            .iter()
            .map(|c| {
                prev.iter()
                    .find(|p| p.name == c.name)
                    .map_or_else(|| ContainerStats::between(c, c), |p| ContainerStats::between(p, c))
            })
            .collect();
        print_stats(&rows, json, redraw)?;
        if !names.is_empty() && rows.is_empty() {
            return Ok(());
        }
        prev = cur;
    }
}

fn print_stats(rows: &[ContainerStats], json: bool, redraw: bool) -> Result<()> {
    use std::io::Write;
    let mut out = String::new();
    if json {
        for r in rows {
            out += &serde_json::to_string(r)?;
            out.push('\n');
        }
    } else {
        if redraw {
            // Clear the screen and home the cursor, as `docker stats` does.
            out += "\x1b[2J\x1b[H";
        }
        out += &format!("{:<24} {:<8} {:<22} {:<8} {}\n", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS");
        for r in rows {
            let mem = format!("{} / {}", binary_size(r.memory_usage), binary_size(r.memory_limit));
            let (cpu, mem_pct) = (format!("{:.2}%", r.cpu_percent), format!("{:.2}%", r.memory_percent));
            out += &format!("{:<24} {:<8} {:<22} {:<8} {}\n", r.name, cpu, mem, mem_pct, r.pids);
        }
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

/// Sizes as `docker stats` prints them: binary units (KiB, MiB, GiB).
fn binary_size(b: u64) -> String {
    scaled(b, 1024.0, &["B", "KiB", "MiB", "GiB", "TiB"], 2)
}

/// Sizes as `docker images` prints them: decimal units.
fn human_size(b: u64) -> String {
    scaled(b, 1000.0, &["B", "KB", "MB", "GB"], 1)
}

fn scaled(b: u64, base: f64, units: &[&str], decimals: usize) -> String {
    let mut v = b as f64;
    let mut u = 0;
    while v >= base && u + 1 < units.len() {
        v /= base;
        u += 1;
    }
    if u == 0 {
        format!("{b}B")
    } else {
        format!("{v:.decimals$}{}", units[u])
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        assert_eq!(super::human_size(999), "999B");
        assert_eq!(super::human_size(2_048_000), "2.0MB");
        assert_eq!(super::binary_size(64 << 20), "64.00MiB");
        assert_eq!(super::binary_size(512), "512B");
    }
}

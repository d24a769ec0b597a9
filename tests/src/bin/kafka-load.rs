//! `kafka-load`: measures a Kafka server through its public protocol (REST and `/ws`) and
//! prints Markdown tables that compare it with the original. See `kafka_tests::load`.
//!
//! ```text
//! kafka-load --spawn --scenario all
//! kafka-load --server http://127.0.0.1:8000 --pid "$(pidof kafka-server)" --scenario echo --sessions 10 100
//! ```

use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use kafka_tests::load::report::Table;
use kafka_tests::load::soak::SoakConfig;
use kafka_tests::load::target::{RUN_AS_SERVER_ENV, SpawnedServer, Target, raise_open_files_limit};
use kafka_tests::load::{agent, echo, login, memory, payload, soak};

#[derive(Debug, Parser)]
#[command(name = "kafka-load", about = "Load, memory and soak measurements of a Kafka server")]
struct Cli {
    /// The server's base URL; loopback addresses only.
    #[arg(long, required_unless_present = "spawn", conflicts_with = "spawn")]
    server: Option<String>,
    /// Start the server (this executable re-run as `kafka-server`) on a temporary data directory.
    #[arg(long)]
    spawn: bool,
    /// The server's process ID, to read its RSS from /proc/PID/status.
    #[arg(long)]
    pid: Option<u32>,
    /// The server's database URL, for the soak's foreign-key check.
    #[arg(long)]
    database_url: Option<String>,
    #[arg(long, value_enum, default_value_t = Scenario::All)]
    scenario: Scenario,
    /// Seconds of each echo level and of the login measurement.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Concurrent echo sessions: one level per number.
    #[arg(long, num_args = 1.., default_values_t = [10, 100, 1000])]
    sessions: Vec<usize>,
    /// Sessions of the paced echo level (0: none), each sending one message per `--pace-ms`.
    #[arg(long, default_value_t = 1000)]
    paced_sessions: usize,
    #[arg(long, default_value_t = 500)]
    pace_ms: u64,
    /// Versions of the 200-line file: one payload measurement per number (each at least 2).
    #[arg(long, num_args = 1.., default_values_t = [10, 100, 1000])]
    versions: Vec<usize>,
    /// Concurrent clients of /auth/login.
    #[arg(long, default_value_t = 20)]
    login_clients: usize,
    /// Chats of the user who logs in.
    #[arg(long, default_value_t = 20)]
    login_chats: usize,
    /// Idle WebSockets opened for the memory measurement.
    #[arg(long, default_value_t = 10_000)]
    idle_sockets: usize,
    /// new_message runs per agent route.
    #[arg(long, default_value_t = 30)]
    agent_runs: usize,
    /// Seconds of the soak.
    #[arg(long, default_value_t = 60)]
    soak_duration: u64,
    /// Concurrent soak clients.
    #[arg(long, default_value_t = 8)]
    soak_clients: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Echo,
    Payload,
    Login,
    Memory,
    Agent,
    Soak,
    All,
}

impl Scenario {
    /// The scenarios to run, in order; the 10,000 sockets and the soak come last so that
    /// they do not disturb the others.
    fn expand(self) -> Vec<Scenario> {
        match self {
            Scenario::All => vec![
                Scenario::Echo,
                Scenario::Payload,
                Scenario::Login,
                Scenario::Agent,
                Scenario::Memory,
                Scenario::Soak,
            ],
            one => vec![one],
        }
    }
}

#[global_allocator]
static ALLOCATOR: kafka_server::Allocator = kafka_server::Allocator;

fn main() -> ExitCode {
    if std::env::var_os(RUN_AS_SERVER_ENV).is_some() {
        return kafka_server::cli::main();
    }
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("kafka-load: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("kafka-load: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the scenarios and prints their tables; false when one failed or found errors.
async fn run(cli: &Cli) -> anyhow::Result<bool> {
    let open_files = raise_open_files_limit();
    let spawned = match cli.spawn {
        true => Some(SpawnedServer::start().await?),
        false => None,
    };
    let target = match (&spawned, &cli.server) {
        (Some(spawned), _) => spawned.target.clone(),
        (None, Some(url)) => Target::new(&loopback_only(url)?, cli.pid, cli.database_url.clone()),
        (None, None) => bail!("give --server URL or --spawn"),
    };
    print_header(&target, spawned.is_some(), open_files);
    let mut all_passed = true;
    for scenario in cli.scenario.expand() {
        match run_scenario(scenario, cli, &target, open_files).await {
            Ok((table, passed)) => {
                println!("{table}");
                all_passed &= passed;
            }
            Err(error) => {
                println!("### {scenario:?}\n\nFailed: {error:#}\n");
                all_passed = false;
            }
        }
    }
    Ok(all_passed)
}

/// One scenario's table, and whether it passed (only the soak can fail without an error).
async fn run_scenario(
    scenario: Scenario,
    cli: &Cli,
    target: &Target,
    open_files: u64,
) -> anyhow::Result<(Table, bool)> {
    let duration = Duration::from_secs(cli.duration);
    let api = &target.api;
    let table = match scenario {
        Scenario::Echo => {
            let paced = (cli.paced_sessions > 0).then(|| echo::Paced {
                sessions: cli.paced_sessions,
                interval: Duration::from_millis(cli.pace_ms),
            });
            echo::run(api, &cli.sessions, duration, paced).await?
        }
        Scenario::Payload => payload::run(api, &cli.versions).await?,
        Scenario::Login => login::run(api, cli.login_clients, cli.login_chats, duration).await?,
        Scenario::Agent => agent::run(api, cli.agent_runs).await?,
        Scenario::Memory => memory::run(target, cli.idle_sockets, open_files).await?,
        Scenario::Soak => {
            let config = SoakConfig {
                clients: cli.soak_clients,
                duration: Duration::from_secs(cli.soak_duration),
            };
            let report = soak::run(target, &config).await?;
            return Ok((report.table(), report.is_clean()));
        }
        Scenario::All => bail!("`all` is expanded before running"),
    };
    Ok((table, true))
}

fn print_header(target: &Target, spawned: bool, open_files: u64) {
    let server = if spawned {
        "spawned: this executable re-run as kafka-server, on a temporary data directory"
    } else {
        "given by --server"
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("# kafka-load\n");
    println!("- server: {} ({server})", target.api.base());
    println!(
        "- RSS read from: {}",
        target.pid.map_or("unknown".into(), |pid| format!("/proc/{pid}/status"))
    );
    println!("- client and server share this machine: {cores} cores; open-files limit {open_files}\n");
}

/// The URL, if its host is a loopback address: load goes nowhere else.
fn loopback_only(url: &str) -> anyhow::Result<String> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("not a URL: {url}"))?;
    let host = parsed.host_str().unwrap_or_default();
    let is_loopback = host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !is_loopback {
        bail!("{url}: only loopback servers (127.0.0.0/8, ::1, localhost) are load targets");
    }
    Ok(url.to_owned())
}

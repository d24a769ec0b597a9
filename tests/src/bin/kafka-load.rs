//! `kafka-load`: measures a server that speaks the brief through its public protocol (REST
//! and `/ws`) and prints Markdown tables; `kafka-load compare` runs the same scenarios on
//! Kafka and the original side by side. See `kafka_tests::load`.
//!
//! ```text
//! kafka-load --spawn --scenario all
//! kafka-load --server http://127.0.0.1:8000 --pid "$(pidof kafka-server)" --scenario echo --sessions 10 100
//! kafka-load compare --spawn-kafka --spawn-original target/peer
//! kafka-load compare --kafka http://127.0.0.1:8001 --kafka-pid 123 --original http://127.0.0.1:8800 --original-pid 456
//! ```

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use kafka_tests::load::compare::{self, Server};
use kafka_tests::load::fake::{Fake, ORIGINAL_VALIDATOR_PORT};
use kafka_tests::load::report::Table;
use kafka_tests::load::soak::SoakConfig;
use kafka_tests::load::target::{RUN_AS_SERVER_ENV, SpawnedOriginal, SpawnedServer, Target, raise_open_files_limit};
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

/// `kafka-load compare`: two servers side by side, interleaved, with this one client.
#[derive(Debug, Parser)]
#[command(
    name = "kafka-load compare",
    about = "The same scenarios on Kafka and on the original, interleaved, side by side"
)]
struct CompareCli {
    /// Start Kafka on a temporary data directory (this executable re-run as kafka-server,
    /// or --kafka-bin).
    #[arg(long, conflicts_with = "kafka")]
    spawn_kafka: bool,
    /// The kafka-server executable to spawn (implies --spawn-kafka).
    #[arg(long, conflicts_with = "kafka")]
    kafka_bin: Option<PathBuf>,
    /// A running Kafka's base URL (loopback only), with --kafka-pid for its CPU and RSS.
    #[arg(long, required_unless_present_any = ["spawn_kafka", "kafka_bin"])]
    kafka: Option<String>,
    #[arg(long)]
    kafka_pid: Option<u32>,
    /// Start the original from a directory prepared by `../shared/peer/setup.sh DIR`.
    #[arg(long, conflicts_with = "original", value_name = "PEER_DIR")]
    spawn_original: Option<PathBuf>,
    /// A running original's base URL (loopback only), with --original-pid.
    #[arg(long, required_unless_present = "spawn_original")]
    original: Option<String>,
    #[arg(long)]
    original_pid: Option<u32>,
    /// Port of the fake validator the original calls (its default VALIDATION_ENDPOINT is
    /// 127.0.0.1:8802); 0 picks one, which only works for a spawned original.
    #[arg(long)]
    validator_port: Option<u16>,
    /// Concurrent WebSockets the original can serve (one pooled SQLite connection each).
    #[arg(long, default_value_t = 15)]
    original_max_sessions: usize,
    #[arg(long, value_enum, num_args = 1.., default_values_t = [
        compare::Scenario::Echo, compare::Scenario::Payload, compare::Scenario::Agent,
        compare::Scenario::Login, compare::Scenario::Many])]
    scenarios: Vec<compare::Scenario>,
    /// Repetitions of each scenario (each runs A then B).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Seconds of each echo level and of the login measurement.
    #[arg(long, default_value_t = 5)]
    duration: u64,
    /// The closed-loop echo level both servers run.
    #[arg(long, default_value_t = 10)]
    echo_sessions: usize,
    /// Closed-loop echo levels beyond the original's limit.
    #[arg(long, num_args = 1.., default_values_t = [100, 1000])]
    many_sessions: Vec<usize>,
    #[arg(long, default_value_t = 1000)]
    paced_sessions: usize,
    #[arg(long, default_value_t = 500)]
    pace_ms: u64,
    #[arg(long, default_value_t = 1000)]
    versions: usize,
    #[arg(long, default_value_t = 20)]
    login_clients: usize,
    #[arg(long, default_value_t = 20)]
    login_chats: usize,
    /// new_message runs per agent route and repetition.
    #[arg(long, default_value_t = 30)]
    agent_runs: usize,
}

#[global_allocator]
static ALLOCATOR: kafka_server::Allocator = kafka_server::Allocator;

fn main() -> ExitCode {
    if std::env::var_os(RUN_AS_SERVER_ENV).is_some() {
        return kafka_server::cli::main();
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("kafka-load: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let outcome = if args.get(1).is_some_and(|arg| arg == "compare") {
        args.remove(1);
        let cli = CompareCli::parse_from(args);
        runtime.block_on(run_compare(&cli))
    } else {
        let cli = Cli::parse_from(args);
        runtime.block_on(run(&cli))
    };
    match outcome {
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

/// Starts or finds both servers, runs the comparison and prints it.
async fn run_compare(cli: &CompareCli) -> anyhow::Result<bool> {
    raise_open_files_limit();
    let validator_port = match (cli.validator_port, &cli.spawn_original) {
        (Some(port), _) => port,
        (None, Some(_)) => 0,
        (None, None) => ORIGINAL_VALIDATOR_PORT,
    };
    let fake = Fake::start_on(validator_port).await?;
    let spawned_kafka = match (cli.spawn_kafka || cli.kafka_bin.is_some(), &cli.kafka) {
        (true, _) => Some(SpawnedServer::start_binary(cli.kafka_bin.as_deref()).await?),
        (false, _) => None,
    };
    let kafka = match (&spawned_kafka, &cli.kafka) {
        (Some(spawned), _) => spawned.target.clone(),
        (None, Some(url)) => Target::new(&loopback_only(url)?, cli.kafka_pid, None),
        (None, None) => bail!("give --kafka URL or --spawn-kafka"),
    };
    let spawned_original = match &cli.spawn_original {
        Some(dir) => Some(SpawnedOriginal::start(dir, &fake.validation_url()).await?),
        None => None,
    };
    let original = match (&spawned_original, &cli.original) {
        (Some(spawned), _) => spawned.target.clone(),
        (None, Some(url)) => Target::new(&loopback_only(url)?, cli.original_pid, None),
        (None, None) => bail!("give --original URL or --spawn-original DIR"),
    };
    let servers = [
        Server {
            name: "kafka".into(),
            target: kafka,
            max_sessions: None,
            lean_payload: true,
        },
        Server {
            name: "original".into(),
            target: original,
            max_sessions: Some(cli.original_max_sessions),
            lean_payload: false,
        },
    ];
    let config = compare::Config {
        scenarios: cli.scenarios.clone(),
        repeats: cli.repeat.max(1),
        duration: Duration::from_secs(cli.duration),
        echo_sessions: cli.echo_sessions,
        many_sessions: cli.many_sessions.clone(),
        paced_sessions: cli.paced_sessions,
        pace: Duration::from_millis(cli.pace_ms),
        versions: cli.versions.max(2),
        login_clients: cli.login_clients,
        login_chats: cli.login_chats,
        agent_runs: cli.agent_runs,
    };
    println!("# kafka-load compare\n");
    for server in &servers {
        let spawned = match server.name.as_str() {
            "kafka" if spawned_kafka.is_some() => "spawned on a temporary data directory",
            "original" if spawned_original.is_some() => "spawned: one uvicorn worker, on a copy of its source",
            _ => "given",
        };
        println!(
            "- {}: {} ({spawned}), CPU and RSS from {}",
            server.name,
            server.target.api.base(),
            server
                .target
                .pid
                .map_or("nowhere (no --*-pid)".into(), |pid| format!("/proc/{pid}"))
        );
    }
    println!(
        "- fake model and validator: {} and {}",
        fake.base_url(),
        fake.validation_url()
    );
    println!(
        "- {} repetitions, each scenario on kafka then original; {} s per echo level and login\n",
        config.repeats, cli.duration
    );
    let started = std::time::Instant::now();
    let report = compare::run(&servers, &fake, &config).await?;
    println!("{report}");
    println!(
        "\nWall time of the comparison: {:.0} s.",
        started.elapsed().as_secs_f64()
    );
    if let Some(original) = &spawned_original {
        println!("The original's log: {} (removed on exit).", original.log.display());
    }
    Ok(report.notes.iter().all(|note| !note.contains("failed:")))
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

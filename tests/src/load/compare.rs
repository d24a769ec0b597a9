//! Two servers side by side, in one run, with one client: every scenario runs on both,
//! interleaved (A, B, A, B… one repetition at a time), and the report gives both columns and
//! their ratio. Beside throughput and latency, each server's CPU time per operation
//! (`utime + stime` of `/proc/PID/stat`, from before the first connect until the server has
//! gone quiet after the last close, since the original saves a conversation on disconnect)
//! and its peak RSS during the measurement.
//!
//! On a machine where client and servers share the cores, the client's own speed caps what
//! a closed loop can show; the server's CPU per operation is what the server costs, whoever
//! drives it.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use super::agent::{self, Route};
use super::api::{Api, run_tag};
use super::echo;
use super::fake::Fake;
use super::login;
use super::payload::{self, Client};
use super::report::{megabytes, versus};
use super::target::{Target, cpu_seconds_of, peak_rss_of, reset_peak_rss};

/// How long the server's CPU must stay still to count as done with a measurement's work.
const QUIET: Duration = Duration::from_millis(300);
/// CPU allowed within `QUIET` that still counts as quiet (one or two clock ticks).
const QUIET_CPU_SECONDS: f64 = 0.025;
/// The longest wait for a server to go quiet (the original rewrites every closed chat).
const MAX_SETTLE: Duration = Duration::from_secs(180);

/// A server under comparison.
#[derive(Debug, Clone)]
pub struct Server {
    pub name: String,
    pub target: Target,
    /// Concurrent WebSockets it can serve (the original: 15, one pooled SQLite connection
    /// each); larger levels are reported as not served.
    pub max_sessions: Option<usize>,
    /// Whether it offers protocol 2's lean initial payload (`?v=2&lean=1`).
    pub lean_payload: bool,
}

impl Server {
    fn serves(&self, sessions: usize) -> bool {
        self.max_sessions.is_none_or(|max| sessions <= max)
    }

    fn no_service(&self) -> Cell {
        Cell::Missing(format!(
            "no service: more than {} sockets",
            self.max_sessions.unwrap_or_default()
        ))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    Echo,
    Payload,
    Agent,
    Login,
    /// Echo levels above the original's limit, and the paced level (Kafka only).
    Many,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub scenarios: Vec<Scenario>,
    pub repeats: usize,
    pub duration: Duration,
    /// The closed-loop echo level both servers run.
    pub echo_sessions: usize,
    /// Closed-loop levels beyond the original's limit.
    pub many_sessions: Vec<usize>,
    pub paced_sessions: usize,
    pub pace: Duration,
    pub versions: usize,
    pub login_clients: usize,
    pub login_chats: usize,
    pub agent_runs: usize,
}

/// How a metric's values are shown, and which way is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    PerSecond,
    Millis,
    /// CPU microseconds per operation.
    CpuMicros,
    /// CPU milliseconds per operation.
    CpuMillis,
    Bytes,
    Count,
    Seconds,
    /// Milliseconds shown without a ratio (e.g. the fake's own time: the servers make
    /// different numbers of calls).
    MillisNoRatio,
}

impl Unit {
    fn higher_is_better(self) -> bool {
        self == Unit::PerSecond
    }

    fn show(self, value: f64) -> String {
        match self {
            Unit::PerSecond => format!("{}/s", thousands(value)),
            Unit::Millis | Unit::MillisNoRatio => format!("{value:.2} ms"),
            Unit::CpuMicros => format!("{value:.1} µs"),
            Unit::CpuMillis => format!("{value:.2} ms"),
            Unit::Bytes => megabytes(value),
            Unit::Count => format!("{value:.0}"),
            Unit::Seconds => format!("{value:.1} s"),
        }
    }
}

/// One server's figures for a metric: a value per repetition, or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Values(Vec<f64>),
    Missing(String),
}

#[derive(Debug, Clone)]
pub struct Row {
    pub scenario: String,
    pub metric: String,
    pub unit: Unit,
    /// One per server.
    pub cells: Vec<Cell>,
}

/// The comparison's rows, in the order they were first recorded, and notes.
#[derive(Debug, Clone)]
pub struct Report {
    pub names: Vec<String>,
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
}

impl Report {
    fn new(servers: &[Server]) -> Self {
        Self {
            names: servers.iter().map(|s| s.name.clone()).collect(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn row_mut(&mut self, scenario: &str, metric: &str, unit: Unit) -> &mut Row {
        let at = match self
            .rows
            .iter()
            .position(|r| r.scenario == scenario && r.metric == metric)
        {
            Some(at) => at,
            None => {
                self.rows.push(Row {
                    scenario: scenario.to_owned(),
                    metric: metric.to_owned(),
                    unit,
                    cells: vec![Cell::Values(Vec::new()); self.names.len()],
                });
                self.rows.len() - 1
            }
        };
        &mut self.rows[at]
    }

    /// Adds a repetition's value of `metric` for server `server`.
    pub fn record(&mut self, server: usize, scenario: &str, metric: &str, unit: Unit, value: f64) {
        if let Cell::Values(values) = &mut self.row_mut(scenario, metric, unit).cells[server] {
            values.push(value);
        }
    }

    /// Says why server `server` has no figure for `metric`.
    pub fn missing(&mut self, server: usize, scenario: &str, metric: &str, unit: Unit, cell: Cell) {
        self.row_mut(scenario, metric, unit).cells[server] = cell;
    }

    /// The row's median for each server, if it has values.
    pub fn medians(row: &Row) -> Vec<Option<f64>> {
        row.cells
            .iter()
            .map(|cell| match cell {
                Cell::Values(values) if !values.is_empty() => Some(median(values)),
                _ => None,
            })
            .collect()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (first, second) = (&self.names[0], self.names.get(1).cloned().unwrap_or_default());
        write!(f, "| scenario | metric |")?;
        for name in &self.names {
            write!(f, " {name} (each run) |")?;
        }
        writeln!(f, " {first} vs {second} (medians) |")?;
        writeln!(f, "|---|---|{}---|", "---|".repeat(self.names.len()))?;
        for row in &self.rows {
            write!(f, "| {} | {} |", row.scenario, row.metric)?;
            for cell in &row.cells {
                match cell {
                    Cell::Values(values) if values.is_empty() => write!(f, " — |")?,
                    Cell::Values(values) => {
                        let shown: Vec<String> = values.iter().map(|&v| row.unit.show(v)).collect();
                        write!(f, " {} |", shown.join(" / "))?;
                    }
                    Cell::Missing(why) => write!(f, " {why} |")?,
                }
            }
            let ratio = match Report::medians(row).as_slice() {
                _ if matches!(row.unit, Unit::Count | Unit::Seconds | Unit::MillisNoRatio) => "—".to_owned(),
                [Some(a), Some(b), ..] => versus(*a, *b, row.unit.higher_is_better()),
                _ => "—".to_owned(),
            };
            writeln!(f, " {ratio} |")?;
        }
        for note in &self.notes {
            writeln!(f, "\n{note}")?;
        }
        Ok(())
    }
}

/// Runs the configured scenarios on every server, interleaved, and reports them.
pub async fn run(servers: &[Server], fake: &Fake, config: &Config) -> anyhow::Result<Report> {
    let mut report = Report::new(servers);
    for &scenario in &config.scenarios {
        let started = Instant::now();
        let outcome = match scenario {
            Scenario::Echo => echo_level(servers, config, config.echo_sessions, None, &mut report).await,
            Scenario::Payload => payload_scenario(servers, fake, config, &mut report).await,
            Scenario::Agent => agent_scenario(servers, fake, config, &mut report).await,
            Scenario::Login => login_scenario(servers, config, &mut report).await,
            Scenario::Many => many_scenario(servers, config, &mut report).await,
        };
        if let Err(error) = outcome {
            report.notes.push(format!("{scenario:?} failed: {error:#}"));
        }
        eprintln!(
            "kafka-load compare: {scenario:?} done in {:.0} s",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(report)
}

/// A server's CPU time and peak RSS over one measurement.
struct Meter {
    pid: Option<u32>,
    cpu_before: Option<f64>,
    peak_reset: bool,
}

struct Usage {
    cpu_seconds: Option<f64>,
    peak_rss: Option<u64>,
    settle: Duration,
}

impl Meter {
    fn start(target: &Target) -> Self {
        let pid = target.pid;
        Self {
            pid,
            peak_reset: pid.is_some_and(reset_peak_rss),
            cpu_before: pid.and_then(cpu_seconds_of),
        }
    }

    /// Waits until the server's CPU stays still for `QUIET` (it may still be saving what the
    /// measurement's sessions left), then reads CPU and peak RSS.
    async fn finish(self) -> Usage {
        let Some(pid) = self.pid else {
            return Usage {
                cpu_seconds: None,
                peak_rss: None,
                settle: Duration::ZERO,
            };
        };
        let started = Instant::now();
        let mut last = cpu_seconds_of(pid);
        while started.elapsed() < MAX_SETTLE {
            tokio::time::sleep(QUIET).await;
            let now = cpu_seconds_of(pid);
            let moved = match (last, now) {
                (Some(last), Some(now)) => now - last,
                _ => 0.0,
            };
            last = now;
            if moved <= QUIET_CPU_SECONDS {
                break;
            }
        }
        let settle = started.elapsed().saturating_sub(QUIET);
        Usage {
            cpu_seconds: last.zip(self.cpu_before).map(|(after, before)| after - before),
            peak_rss: self.peak_reset.then(|| peak_rss_of(pid)).flatten(),
            settle,
        }
    }
}

impl Usage {
    fn record(&self, report: &mut Report, server: usize, scenario: &str, operations: usize, unit: Unit) {
        if let Some(cpu) = self.cpu_seconds.filter(|_| operations > 0) {
            let per_op = cpu / operations as f64;
            let scale = if unit == Unit::CpuMillis { 1e3 } else { 1e6 };
            report.record(server, scenario, "server CPU per op", unit, per_op * scale);
        }
        if let Some(peak) = self.peak_rss {
            report.record(server, scenario, "server peak RSS", Unit::Bytes, peak as f64);
        }
    }
}

async fn echo_level(
    servers: &[Server],
    config: &Config,
    sessions: usize,
    pace: Option<Duration>,
    report: &mut Report,
) -> anyhow::Result<()> {
    let scenario = match pace {
        None => format!("echo, {sessions} sessions, closed loop"),
        Some(pace) => format!("echo, {sessions} sessions, 1 msg / {} ms each", pace.as_millis()),
    };
    let metrics: &[(&str, Unit)] = match pace {
        None => &[
            ("messages/s", Unit::PerSecond),
            ("p50", Unit::Millis),
            ("p99", Unit::Millis),
            ("server CPU per op", Unit::CpuMicros),
        ],
        Some(_) => &[("p99", Unit::Millis), ("server CPU per op", Unit::CpuMicros)],
    };
    for (index, server) in servers.iter().enumerate() {
        if !server.serves(sessions) {
            for &(metric, unit) in metrics {
                report.missing(index, &scenario, metric, unit, server.no_service());
            }
        }
    }
    for _ in 0..config.repeats {
        for (index, server) in servers.iter().enumerate().filter(|(_, s)| s.serves(sessions)) {
            let api = &server.target.api;
            let chats = api
                .user_with_chats(&format!("echo-{}@example.com", run_tag()), sessions)
                .await?
                .chat_ids;
            let meter = Meter::start(&server.target);
            let level = echo::measure(api, &chats, config.duration, pace).await;
            let usage = meter.finish().await;
            let summary = level.summary;
            if pace.is_none() {
                report.record(index, &scenario, "messages/s", Unit::PerSecond, summary.per_second);
                report.record(index, &scenario, "p50", Unit::Millis, ms(summary.p50));
            }
            report.record(index, &scenario, "p99", Unit::Millis, ms(summary.p99));
            usage.record(report, index, &scenario, summary.count, Unit::CpuMicros);
            report.record(index, &scenario, "errors", Unit::Count, level.errors.len() as f64);
            report.record(
                index,
                &scenario,
                "server busy after the last close",
                Unit::Seconds,
                usage.settle.as_secs_f64(),
            );
            if let Some(error) = level.errors.first() {
                report
                    .notes
                    .push(format!("{scenario}, {}: first error: {error:#}", server.name));
            }
        }
    }
    Ok(())
}

async fn many_scenario(servers: &[Server], config: &Config, report: &mut Report) -> anyhow::Result<()> {
    for &sessions in &config.many_sessions {
        echo_level(servers, config, sessions, None, report).await?;
    }
    if config.paced_sessions > 0 {
        echo_level(servers, config, config.paced_sessions, Some(config.pace), report).await?;
    }
    Ok(())
}

async fn payload_scenario(servers: &[Server], fake: &Fake, config: &Config, report: &mut Report) -> anyhow::Result<()> {
    let mut chats = Vec::new();
    for server in servers {
        let api = &server.target.api;
        let user = api
            .user_with_chats(&format!("payload-{}@example.com", run_tag()), 1)
            .await?;
        api.add_model(&user.user_id, agent::MODEL, &fake.base_url()).await?;
        let started = Instant::now();
        payload::make_versions(api, fake, &user.chat_ids[0], config.versions).await?;
        report.notes.push(format!(
            "{}: {} versions made in {:.1} s (agent new file and diff, then reverts; not measured).",
            server.name,
            config.versions,
            started.elapsed().as_secs_f64()
        ));
        chats.push(user.chat_ids[0].clone());
    }
    for client in [Client::Legacy, Client::V2Lean] {
        let scenario = format!("initial payload, {} versions, {}", config.versions, client.label());
        for _ in 0..config.repeats {
            for (index, server) in servers.iter().enumerate() {
                if client == Client::V2Lean && !server.lean_payload {
                    for (metric, unit) in [("connect to payload (median)", Unit::Millis), ("size", Unit::Bytes)] {
                        report.missing(index, &scenario, metric, unit, Cell::Missing("not offered".into()));
                    }
                    continue;
                }
                let meter = Meter::start(&server.target);
                let (time, bytes) = payload::measure(&server.target.api, &chats[index], client).await?;
                let usage = meter.finish().await;
                report.record(index, &scenario, "connect to payload (median)", Unit::Millis, ms(time));
                report.record(index, &scenario, "size", Unit::Bytes, bytes as f64);
                usage.record(report, index, &scenario, payload::REPEATS, Unit::CpuMillis);
            }
        }
    }
    Ok(())
}

async fn agent_scenario(servers: &[Server], fake: &Fake, config: &Config, report: &mut Report) -> anyhow::Result<()> {
    let mut sessions = Vec::new();
    for server in servers {
        sessions.push(agent::open_session(&server.target.api, fake).await?);
    }
    for route in Route::ALL {
        let scenario = format!("agent, instant model, {}", route.label());
        for _ in 0..config.repeats {
            for (index, server) in servers.iter().enumerate() {
                let meter = Meter::start(&server.target);
                let times = agent::measure(&mut sessions[index], fake, route, config.agent_runs).await?;
                let usage = meter.finish().await;
                report.record(
                    index,
                    &scenario,
                    "round trip (median)",
                    Unit::Millis,
                    ms(times.round_trip),
                );
                report.record(
                    index,
                    &scenario,
                    "fake model alone (median)",
                    Unit::MillisNoRatio,
                    ms(times.model_alone),
                );
                report.record(index, &scenario, "server overhead", Unit::Millis, ms(times.overhead()));
                report.record(
                    index,
                    &scenario,
                    "model + validation calls",
                    Unit::Count,
                    times.calls as f64,
                );
                usage.record(report, index, &scenario, config.agent_runs, Unit::CpuMillis);
            }
        }
    }
    for conn in sessions {
        conn.close().await;
    }
    Ok(())
}

async fn login_scenario(servers: &[Server], config: &Config, report: &mut Report) -> anyhow::Result<()> {
    let scenario = format!(
        "POST /auth/login, {} clients, {} chats",
        config.login_clients, config.login_chats
    );
    let mut emails = Vec::new();
    for server in servers {
        let email = format!("login-{}@example.com", run_tag());
        server.target.api.user_with_chats(&email, config.login_chats).await?;
        emails.push(email);
    }
    for _ in 0..config.repeats {
        for (index, server) in servers.iter().enumerate() {
            let api: &Api = &server.target.api;
            let meter = Meter::start(&server.target);
            let (summary, errors) = login::measure(api, &emails[index], config.login_clients, config.duration).await?;
            let usage = meter.finish().await;
            report.record(index, &scenario, "requests/s", Unit::PerSecond, summary.per_second);
            report.record(index, &scenario, "p50", Unit::Millis, ms(summary.p50));
            report.record(index, &scenario, "p99", Unit::Millis, ms(summary.p99));
            usage.record(report, index, &scenario, summary.count, Unit::CpuMicros);
            report.record(index, &scenario, "errors", Unit::Count, errors.len() as f64);
            if let Some(error) = errors.first() {
                report
                    .notes
                    .push(format!("{scenario}, {}: first error: {error:#}", server.name));
            }
        }
    }
    Ok(())
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// 12345.6 → "12,346".
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.abs());
    let mut grouped = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if value < 0.0 { format!("-{grouped}") } else { grouped }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_shows_every_run_and_the_ratio_of_medians() {
        let mut report = Report {
            names: vec!["kafka".into(), "original".into()],
            rows: Vec::new(),
            notes: Vec::new(),
        };
        for (a, b) in [(30_000.0, 10_000.0), (36_000.0, 12_000.0), (33_000.0, 11_000.0)] {
            report.record(0, "echo", "messages/s", Unit::PerSecond, a);
            report.record(1, "echo", "messages/s", Unit::PerSecond, b);
        }
        report.record(0, "echo, 100", "p99", Unit::Millis, 2.0);
        report.missing(1, "echo, 100", "p99", Unit::Millis, Cell::Missing("no service".into()));
        let shown = report.to_string();
        assert!(
            shown.contains(
                "| echo | messages/s | 30,000/s / 36,000/s / 33,000/s | 10,000/s / 12,000/s / 11,000/s | 3.0× better |"
            ),
            "{shown}"
        );
        assert!(
            shown.contains("| echo, 100 | p99 | 2.00 ms | no service | — |"),
            "{shown}"
        );
    }

    #[test]
    fn medians_and_thousands() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(thousands(1_234_567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
    }
}

//! The server under load: its URL and, when known, its process (for RSS) and database (for
//! the foreign-key check). `SpawnedServer` starts one on a temporary data directory.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tempfile::TempDir;
use tokio::process::{Child, Command};

use super::api::Api;

/// Set in a child's environment to make the `kafka-load` executable run as `kafka-server`.
/// Cargo builds only the binary it runs, so re-running this one is the way to be sure the
/// spawned server is the current code, with the real command line.
pub const RUN_AS_SERVER_ENV: &str = "KAFKA_LOAD_RUN_AS_SERVER";

/// How long a spawned server may take to answer `/healthz`.
const START_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct Target {
    pub api: Api,
    /// The server's process, whose RSS `/proc` reports.
    pub pid: Option<u32>,
    /// The server's database, opened read-side for the foreign-key check.
    pub database_url: Option<String>,
}

impl Target {
    pub fn new(base: &str, pid: Option<u32>, database_url: Option<String>) -> Self {
        Self {
            api: Api::new(base),
            pid,
            database_url,
        }
    }

    /// The server's resident set size, when its process is known and on this machine.
    pub fn rss_bytes(&self) -> Option<u64> {
        rss_of(self.pid?)
    }

    /// `PRAGMA foreign_key_check` violations, when the database is known.
    pub async fn foreign_key_violations(&self) -> anyhow::Result<Option<usize>> {
        let Some(url) = &self.database_url else {
            return Ok(None);
        };
        let violations = kafka_server::store::foreign_key_violations_at(url)
            .await
            .context("check the server's database")?;
        Ok(Some(violations))
    }
}

/// `VmRSS` of a process, from `/proc/PID/status` (Linux).
pub fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Raises this process's soft open-files limit to its hard limit and returns the new soft
/// limit. Children inherit it, so a spawned server gets the same room.
pub fn raise_open_files_limit() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX)
        .unwrap_or_else(|_| rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(0, |(soft, _)| soft))
}

/// A `kafka-server` process on a free loopback port over a temporary data directory; killed
/// and removed on drop.
pub struct SpawnedServer {
    pub target: Target,
    _child: Child,
    _data_dir: TempDir,
}

impl SpawnedServer {
    pub async fn start() -> anyhow::Result<Self> {
        let data_dir = tempfile::tempdir().context("create a data directory")?;
        let port = free_port()?;
        let log = std::fs::File::create(data_dir.path().join("server.log"))?;
        let child = Command::new(std::env::current_exe()?)
            .env(RUN_AS_SERVER_ENV, "1")
            .env("RUST_LOG", "warn")
            .args(["--bind", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(data_dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("spawn the server")?;
        let database_url = format!("sqlite://{}", data_dir.path().join("kafka.db").display());
        let target = Target::new(&format!("http://127.0.0.1:{port}"), child.id(), Some(database_url));
        wait_until_healthy(&target.api).await?;
        Ok(Self {
            target,
            _child: child,
            _data_dir: data_dir,
        })
    }
}

/// A port that was free a moment ago: bound, read, released.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn wait_until_healthy(api: &Api) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        if api.healthz().await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the spawned server did not answer /healthz within {START_TIMEOUT:?}")
}

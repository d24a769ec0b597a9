//! The server under load: its URL and, when known, its process (for RSS) and database (for
//! the foreign-key check). `SpawnedServer` starts one on a temporary data directory.

use std::path::{Path, PathBuf};
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

/// CPU time the process has used, user and system, its threads (live and ended) together:
/// `utime + stime` of `/proc/PID/stat`, in seconds. Counted in clock ticks (usually 10 ms).
pub fn cpu_seconds_of(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from its last ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of the line; `after_name` starts at field 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / clock_ticks_per_second() as f64)
}

/// `getconf CLK_TCK` (100 on Linux unless configured otherwise).
pub fn clock_ticks_per_second() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .filter(|&ticks| ticks > 0)
            .unwrap_or(100)
    })
}

/// `VmHWM` of a process (its peak RSS since start or since [`reset_peak_rss`]).
pub fn peak_rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Resets the process's peak RSS to its current RSS (`echo 5 > /proc/PID/clear_refs`, for
/// processes of this user); false if the kernel refused.
pub fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
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
    /// This executable re-run as `kafka-server`.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_binary(None).await
    }

    /// `binary` (a `kafka-server` executable), or this executable re-run as one.
    pub async fn start_binary(binary: Option<&Path>) -> anyhow::Result<Self> {
        let data_dir = tempfile::tempdir().context("create a data directory")?;
        let port = free_port()?;
        let log = std::fs::File::create(data_dir.path().join("server.log"))?;
        let mut command = match binary {
            Some(binary) => Command::new(binary),
            None => {
                let mut command = Command::new(std::env::current_exe()?);
                command.env(RUN_AS_SERVER_ENV, "1");
                command
            }
        };
        let child = command
            .env("RUST_LOG", "warn")
            .args(["--bind", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(data_dir.path())
            // Every load session comes from 127.0.0.1: lift the per-address cap (a defence
            // against one stranger) above the 10,000 idle sockets of the memory scenario.
            .args(["--max-connections-per-address", "20000", "--max-connections", "20000"])
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

/// The original backend (FastAPI, one uvicorn worker), as `setup.sh DIR` of the shared peer
/// directory prepares it (`DIR/venv`, `DIR/original-backend`), run from a copy of its source
/// on a temporary directory so that its database (`./my_database.db`) and uploads start
/// empty; its log (it prints a great deal, part of its cost) goes to that directory.
pub struct SpawnedOriginal {
    pub target: Target,
    pub log: PathBuf,
    _child: Child,
    _dir: TempDir,
}

impl SpawnedOriginal {
    pub async fn start(peer_dir: &Path, validation_url: &str) -> anyhow::Result<Self> {
        let uvicorn = peer_dir.join("venv/bin/uvicorn");
        let source = peer_dir.join("original-backend");
        if !uvicorn.is_file() || !source.is_dir() {
            bail!(
                "{} is not prepared: run ../shared/peer/setup.sh {} first",
                peer_dir.display(),
                peer_dir.display()
            );
        }
        let dir = tempfile::tempdir().context("create the original's directory")?;
        let root = dir.path().join("original-backend");
        copy_tree(&source.join("app"), &root.join("app"))?;
        std::fs::create_dir_all(root.join("uploads/files"))?;
        let port = free_port()?;
        let log_path = dir.path().join("original.log");
        let log = std::fs::File::create(&log_path)?;
        let child = Command::new(&uvicorn)
            .args(["app.main:app", "--host", "127.0.0.1", "--port", &port.to_string()])
            .current_dir(&root)
            .env("VALIDATION_ENDPOINT", validation_url)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("spawn the original (uvicorn)")?;
        let target = Target::new(&format!("http://127.0.0.1:{port}"), child.id(), None);
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        while !target.api.answers().await {
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "the original did not answer within {START_TIMEOUT:?}; see {}",
                    log_path.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Self {
            target,
            log: log_path,
            _child: child,
            _dir: dir,
        })
    }
}

/// Copies a directory tree of plain files (skipping Python's caches).
fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("read {}", from.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        if name == "__pycache__" {
            continue;
        }
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &to.join(&name))?;
        } else {
            std::fs::copy(entry.path(), to.join(&name))?;
        }
    }
    Ok(())
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

//! Server settings, from the command line or the environment (clap derive + env).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

const MIB: u64 = 1024 * 1024;

/// Options of `kafka-server` (and of the TUI's embedded server).
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Address to listen on. Loopback keeps the brief's open style; see the README for others.
    #[arg(long, env = "KAFKA_BIND", default_value = "127.0.0.1:8000")]
    pub bind: SocketAddr,
    /// Where the database and uploads live [default: the platform's data dir + /kafka].
    #[arg(long, env = "KAFKA_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL [default: sqlite://<data-dir>/kafka.db].
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Allowed CORS origins, comma-separated; `*` allows any origin (without credentials).
    #[arg(long, env = "KAFKA_CORS_ORIGINS", value_delimiter = ',', default_value = "*")]
    pub cors_origins: Vec<String>,
    /// Largest uploaded file, in MiB (REST and WebSocket).
    #[arg(long, env = "KAFKA_MAX_UPLOAD_MB", default_value_t = 25)]
    pub max_upload_mb: u64,
    /// Largest request body, in MiB (all files of one upload together).
    #[arg(long, env = "KAFKA_MAX_BODY_MB", default_value_t = 100)]
    pub max_body_mb: u64,
    /// Largest WebSocket message, in MiB.
    #[arg(long, env = "KAFKA_MAX_FRAME_MB", default_value_t = 32)]
    pub max_frame_mb: u64,
    /// Timeout of one call to a model, in seconds.
    #[arg(long, env = "KAFKA_LLM_TIMEOUT_SECS", default_value_t = 120)]
    pub llm_timeout_secs: u64,
}

/// Resolved settings the server runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub database_url: String,
    pub cors_origins: Vec<String>,
    pub max_upload_bytes: u64,
    pub max_body_bytes: u64,
    pub max_frame_bytes: usize,
    pub llm_timeout: Duration,
}

impl Settings {
    /// Defaults for a data directory: SQLite inside it, the documented limits.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        Self {
            database_url: sqlite_url(&data_dir),
            data_dir,
            cors_origins: vec!["*".into()],
            max_upload_bytes: 25 * MIB,
            max_body_bytes: 100 * MIB,
            max_frame_bytes: (32 * MIB) as usize,
            llm_timeout: Duration::from_secs(120),
        }
    }
}

impl ServerArgs {
    pub fn settings(&self) -> anyhow::Result<Settings> {
        let data_dir = match &self.data_dir {
            Some(dir) => dir.clone(),
            None => default_data_dir()?,
        };
        Ok(Settings {
            database_url: self.database_url.clone().unwrap_or_else(|| sqlite_url(&data_dir)),
            data_dir,
            cors_origins: self.cors_origins.clone(),
            max_upload_bytes: self.max_upload_mb * MIB,
            max_body_bytes: self.max_body_mb.max(self.max_upload_mb) * MIB,
            max_frame_bytes: (self.max_frame_mb * MIB) as usize,
            llm_timeout: Duration::from_secs(self.llm_timeout_secs),
        })
    }
}

/// `<platform data dir>/kafka`, e.g. `~/.local/share/kafka` on Linux.
pub fn default_data_dir() -> anyhow::Result<PathBuf> {
    dirs::data_dir()
        .map(|d| d.join("kafka"))
        .ok_or_else(|| anyhow::anyhow!("no data directory on this platform: pass --data-dir"))
}

fn sqlite_url(data_dir: &std::path::Path) -> String {
    format!("sqlite://{}", data_dir.join("kafka.db").display())
}

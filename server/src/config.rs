//! Server settings, from the command line or the environment (clap derive + env).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::agent::HostLookup;
use crate::auth::AuthMode;
use crate::connections::ConnectionLimits;
use crate::files::ExtractLimits;
use crate::secrets::Sealer;

const MIB: u64 = 1024 * 1024;
/// Model keys are sealed with this secret when it is set (read from the environment only, so
/// that it never shows in a process list).
const SECRET_KEY_ENV: &str = "KAFKA_SECRET_KEY";

/// `--sqlite-synchronous`: how SQLite makes a commit durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SqliteSynchronous {
    Normal,
    Full,
}

impl From<SqliteSynchronous> for crate::store::Synchronous {
    fn from(setting: SqliteSynchronous) -> Self {
        match setting {
            SqliteSynchronous::Normal => Self::Normal,
            SqliteSynchronous::Full => Self::Full,
        }
    }
}

/// `--upload-store`: where uploaded bytes live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UploadStore {
    /// `<data-dir>/uploads`.
    Dir,
    /// The database (PostgreSQL only), so that instances need no shared disk.
    Db,
}

/// `--auth`: who may call the API without a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthSetting {
    /// Open on a loopback address, tokens everywhere else.
    Auto,
    /// Every endpoint but login, health and docs needs a bearer token ("protected mode").
    Token,
    /// The brief's style: IDs in requests are trusted. Off loopback only with --insecure-open.
    Open,
}

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
    /// SQLite: `normal` (a commit survives a crash of the process) or `full` (it survives a
    /// power cut too: one fsync per group commit).
    #[arg(long, env = "KAFKA_SQLITE_SYNCHRONOUS", value_enum, default_value_t = SqliteSynchronous::Normal)]
    pub sqlite_synchronous: SqliteSynchronous,
    /// Web origins whose pages may use this server, comma-separated (`https://app.example`),
    /// besides loopback origins and the server's own; `*` allows any (without credentials).
    #[arg(long, env = "KAFKA_CORS_ORIGINS", value_delimiter = ',')]
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
    /// Longest chat message or agent prompt, in KiB (longer text belongs in a file).
    #[arg(long, env = "KAFKA_MAX_MESSAGE_KB", default_value_t = 1024)]
    pub max_message_kb: u64,
    /// Files in one upload request at most (REST; the WebSocket uploads one at a time).
    #[arg(long, env = "KAFKA_MAX_FILES_PER_UPLOAD", default_value_t = 100)]
    pub max_files_per_upload: usize,
    /// What one user may store, in MiB: uploads, conversation and file versions together
    /// (0: no limit).
    #[arg(long, env = "KAFKA_STORAGE_QUOTA_MB", default_value_t = 1024)]
    pub storage_quota_mb: u64,
    /// Open connections (HTTP and WebSocket) at most; past it new ones are closed at once.
    #[arg(long, env = "KAFKA_MAX_CONNECTIONS", default_value_t = 16_384)]
    pub max_connections: usize,
    /// Open connections from one client address at most.
    #[arg(long, env = "KAFKA_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 1_024)]
    pub max_connections_per_address: usize,
    /// Seconds a request's headers may take to arrive; also how long an idle keep-alive
    /// connection stays open.
    #[arg(long, env = "KAFKA_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub header_timeout_secs: u64,
    /// Time one uploaded PDF's text may take to read, in seconds (its reader process is
    /// killed then, and the upload is kept without text).
    #[arg(long, env = "KAFKA_PDF_TIMEOUT_SECS", default_value_t = 20)]
    pub pdf_timeout_secs: u64,
    /// Memory (address space) of the process that reads one PDF's text, in MiB.
    #[arg(long, env = "KAFKA_PDF_MEMORY_MB", default_value_t = 1024)]
    pub pdf_memory_mb: u64,
    /// Timeout of one call to a model, in seconds.
    #[arg(long, env = "KAFKA_LLM_TIMEOUT_SECS", default_value_t = 120)]
    pub llm_timeout_secs: u64,
    /// Longest wait for the next piece of a model's streamed answer, in seconds.
    #[arg(long, env = "KAFKA_LLM_IDLE_TIMEOUT_SECS", default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..))]
    pub llm_idle_timeout_secs: u64,
    /// Largest reply of one model call, in MiB; a longer one fails the call.
    #[arg(long, env = "KAFKA_MAX_MODEL_REPLY_MB", default_value_t = 8,
        value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub max_model_reply_mb: u64,
    /// In token mode, let models live on loopback, private, link-local and cloud-metadata
    /// addresses (refused by default: users could make the server call internal services).
    /// Open mode always allows them.
    #[arg(long, env = "KAFKA_ALLOW_PRIVATE_MODEL_HOSTS")]
    pub allow_private_model_hosts: bool,
    /// Who may call the API without a token.
    #[arg(long, env = "KAFKA_AUTH", value_enum, default_value_t = AuthSetting::Auto)]
    pub auth: AuthSetting,
    /// Allow `--auth open` on a non-loopback address (anyone who can reach the port can act as
    /// any user).
    #[arg(long, env = "KAFKA_INSECURE_OPEN")]
    pub insecure_open: bool,
    /// Lifetime of a login token, in days (1 to 3650).
    #[arg(long, env = "KAFKA_TOKEN_TTL_DAYS", default_value_t = 30)]
    pub token_ttl_days: u64,
    /// Reverse proxies whose `X-Forwarded-For` names the client for the login throttle
    /// (addresses, comma-separated). From any other peer the header is ignored.
    #[arg(long = "trusted-proxy", env = "KAFKA_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<IpAddr>,
    /// Where uploaded bytes live: `dir` (the data directory) or `db` (the database, PostgreSQL
    /// only) [default: db on PostgreSQL, dir on SQLite].
    #[arg(long, env = "KAFKA_UPLOAD_STORE", value_enum)]
    pub upload_store: Option<UploadStore>,
}

/// Resolved settings the server runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub database_url: String,
    pub sqlite_synchronous: crate::store::Synchronous,
    pub cors_origins: Vec<String>,
    pub max_upload_bytes: u64,
    pub max_body_bytes: u64,
    pub max_frame_bytes: usize,
    pub llm_timeout: Duration,
    /// Longest wait between the pieces of a streamed model answer.
    pub llm_idle_timeout: Duration,
    /// Largest reply body of one model call.
    pub max_model_reply_bytes: u64,
    /// Allows model hosts on internal addresses in token mode (open mode always does).
    pub allow_private_model_hosts: bool,
    /// How model host names are resolved: the system's resolver but in tests.
    pub model_host_lookup: HostLookup,
    pub auth: AuthMode,
    pub token_ttl: Duration,
    /// Peers whose `X-Forwarded-For` is believed (see `auth::client_address`).
    pub trusted_proxies: Vec<IpAddr>,
    /// Seals model keys at rest when `KAFKA_SECRET_KEY` is set.
    pub sealer: Sealer,
    /// Bounds of the child processes that read uploaded PDFs.
    pub extract_limits: ExtractLimits,
    /// Bounds on open connections and on slow request heads.
    pub connections: ConnectionLimits,
    /// Longest chat message or prompt, in bytes.
    pub max_message_bytes: usize,
    /// Files of one upload request at most.
    pub max_files_per_upload: usize,
    /// Bytes one user may store; `None`: no limit.
    pub storage_quota_bytes: Option<u64>,
    /// Where uploaded bytes live; `None`: by the database (see `UploadStore`).
    pub upload_store: Option<UploadStore>,
}

impl Settings {
    /// Defaults for a data directory: SQLite inside it, the documented limits.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        Self {
            database_url: sqlite_url(&data_dir),
            data_dir,
            sqlite_synchronous: crate::store::Synchronous::default(),
            cors_origins: Vec::new(),
            max_upload_bytes: 25 * MIB,
            max_body_bytes: 100 * MIB,
            max_frame_bytes: (32 * MIB) as usize,
            llm_timeout: Duration::from_secs(120),
            llm_idle_timeout: Duration::from_secs(60),
            max_model_reply_bytes: 8 * MIB,
            allow_private_model_hosts: false,
            model_host_lookup: HostLookup::system(),
            auth: AuthMode::Open,
            token_ttl: Duration::from_secs(30 * DAY_SECS),
            trusted_proxies: Vec::new(),
            sealer: Sealer::default(),
            extract_limits: ExtractLimits::default(),
            connections: ConnectionLimits::default(),
            max_message_bytes: MIB as usize,
            max_files_per_upload: crate::files::DEFAULT_MAX_FILES,
            storage_quota_bytes: Some(1024 * MIB),
            upload_store: None,
        }
    }
}

const DAY_SECS: u64 = 24 * 60 * 60;

impl ServerArgs {
    pub fn settings(&self) -> anyhow::Result<Settings> {
        let data_dir = match &self.data_dir {
            Some(dir) => dir.clone(),
            None => default_data_dir()?,
        };
        Ok(Settings {
            database_url: self.database_url.clone().unwrap_or_else(|| sqlite_url(&data_dir)),
            data_dir,
            sqlite_synchronous: self.sqlite_synchronous.into(),
            cors_origins: self.cors_origins.clone(),
            max_upload_bytes: self.max_upload_mb * MIB,
            max_body_bytes: self.max_body_mb.max(self.max_upload_mb) * MIB,
            max_frame_bytes: (self.max_frame_mb * MIB) as usize,
            llm_timeout: Duration::from_secs(self.llm_timeout_secs),
            llm_idle_timeout: Duration::from_secs(self.llm_idle_timeout_secs),
            max_model_reply_bytes: self.max_model_reply_mb * MIB,
            allow_private_model_hosts: self.allow_private_model_hosts,
            model_host_lookup: HostLookup::system(),
            auth: self.auth_mode()?,
            token_ttl: Duration::from_secs(self.token_ttl_days.clamp(1, 3650) * DAY_SECS),
            trusted_proxies: self.trusted_proxies.clone(),
            sealer: Sealer::new(std::env::var(SECRET_KEY_ENV).ok().as_deref()),
            extract_limits: ExtractLimits {
                cpu_secs: self.pdf_timeout_secs.max(1),
                wall: Duration::from_secs(self.pdf_timeout_secs.max(1)),
                memory_bytes: self.pdf_memory_mb.max(64) * MIB,
                ..ExtractLimits::default()
            },
            connections: ConnectionLimits {
                max_total: self.max_connections.max(1),
                max_per_address: self.max_connections_per_address.max(1),
                header_read_timeout: Duration::from_secs(self.header_timeout_secs.max(1)),
            },
            max_message_bytes: (self.max_message_kb.max(1) * 1024) as usize,
            max_files_per_upload: self.max_files_per_upload.max(1),
            storage_quota_bytes: Some(self.storage_quota_mb * MIB).filter(|&bytes| bytes > 0),
            upload_store: self.upload_store,
        })
    }

    /// Resolves `--auth` against the bind address; refuses open mode off loopback unless
    /// `--insecure-open` says the operator means it.
    fn auth_mode(&self) -> anyhow::Result<AuthMode> {
        let loopback = self.bind.ip().is_loopback();
        match (self.auth, loopback) {
            (AuthSetting::Token, _) | (AuthSetting::Auto, false) => Ok(AuthMode::Token),
            (AuthSetting::Auto, true) | (AuthSetting::Open, true) => Ok(AuthMode::Open),
            (AuthSetting::Open, false) if self.insecure_open => Ok(AuthMode::Open),
            (AuthSetting::Open, false) => anyhow::bail!(
                "refusing --auth open on {}: anyone who reaches this address could act as any user. \
                 Use --auth token (or auto), bind to 127.0.0.1, or pass --insecure-open if you mean it",
                self.bind
            ),
        }
    }

    /// Why the server runs without tokens off loopback, for the start-up log; `None` otherwise.
    pub fn insecure_warning(&self) -> Option<String> {
        (self.auth == AuthSetting::Open && self.insecure_open && !self.bind.ip().is_loopback()).then(|| {
            format!(
                "--insecure-open: serving {} WITHOUT tokens; any client that reaches it can read and change \
                 every user's data. Use it only on a trusted network.",
                self.bind
            )
        })
    }
}

impl Settings {
    /// Whether models may live on internal addresses: in open mode (a local tool, e.g. with
    /// Ollama on localhost), or when the operator allows it.
    pub fn private_model_hosts_allowed(&self) -> bool {
        self.auth == AuthMode::Open || self.allow_private_model_hosts
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ServerArgs,
    }

    fn mode(flags: &[&str]) -> anyhow::Result<AuthMode> {
        let cli = Cli::try_parse_from(std::iter::once("kafka-server").chain(flags.iter().copied()))?;
        cli.args.auth_mode()
    }

    #[test]
    fn auto_is_open_on_loopback_only_and_open_elsewhere_needs_consent() {
        assert_eq!(mode(&["--bind", "127.0.0.1:8000"]).unwrap(), AuthMode::Open);
        assert_eq!(mode(&["--bind", "[::1]:8000"]).unwrap(), AuthMode::Open);
        assert_eq!(mode(&["--bind", "0.0.0.0:8000"]).unwrap(), AuthMode::Token);
        assert_eq!(
            mode(&["--bind", "127.0.0.1:8000", "--auth", "token"]).unwrap(),
            AuthMode::Token
        );
        let refused = mode(&["--bind", "0.0.0.0:8000", "--auth", "open"]).unwrap_err();
        assert!(refused.to_string().contains("--insecure-open"), "{refused}");
        assert_eq!(
            mode(&["--bind", "0.0.0.0:8000", "--auth", "open", "--insecure-open"]).unwrap(),
            AuthMode::Open
        );
    }

    fn settings(flags: &[&str]) -> Settings {
        let flags = ["kafka-server", "--data-dir", "/tmp/kafka-config-test"]
            .iter()
            .chain(flags);
        Cli::try_parse_from(flags).unwrap().args.settings().unwrap()
    }

    #[test]
    fn private_model_hosts_are_allowed_in_open_mode_or_with_the_flag() {
        assert!(settings(&[]).private_model_hosts_allowed());
        assert!(!settings(&["--auth", "token"]).private_model_hosts_allowed());
        assert!(settings(&["--auth", "token", "--allow-private-model-hosts"]).private_model_hosts_allowed());
        assert_eq!(settings(&[]).max_model_reply_bytes, 8 * MIB);
        assert_eq!(settings(&["--max-model-reply-mb", "2"]).max_model_reply_bytes, 2 * MIB);
        assert!(Cli::try_parse_from(["kafka-server", "--max-model-reply-mb", "0"]).is_err());
    }

    #[test]
    fn the_upload_store_is_chosen_by_the_database_unless_named() {
        assert_eq!(settings(&[]).upload_store, None);
        assert_eq!(settings(&["--upload-store", "db"]).upload_store, Some(UploadStore::Db));
        assert_eq!(
            settings(&["--upload-store", "dir"]).upload_store,
            Some(UploadStore::Dir)
        );
        assert!(Cli::try_parse_from(["kafka-server", "--upload-store", "s3"]).is_err());
    }
}

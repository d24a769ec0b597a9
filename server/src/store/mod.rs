//! All SQL lives here; nothing else touches the database.
//!
//! Queries are checked at run time (building needs no database) and written in portable SQL
//! with `$n` placeholders, run through sqlx's `Any` driver on SQLite or PostgreSQL, chosen by
//! the URL's scheme. Every operation that changes several rows runs in one transaction, so a
//! crash leaves either all of it or none of it. Nothing outside this module knows which
//! database is in use: live chat events (`events`) and the one-agent-run-per-chat lock
//! (`runs`) live here too, in-process on SQLite and shared through PostgreSQL otherwise.

mod append_journal;
mod chats;
mod conversation;
mod events;
mod files;
mod journal_copier;
mod lean;
mod models;
mod owners;
mod runs;
mod sqlite_writer;
mod tokens;
#[cfg(test)]
mod upgrade_tests;
mod users;
mod versions;
mod workspaces;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{Any, AnyPool, ConnectOptions, Connection, Executor, Transaction};

use crate::secrets::Sealer;

pub use chats::ChatRecord;
pub use conversation::MessageRecord;
pub use events::{ChatSignal, EventBus, SignalKind};
pub use files::{ChatFileRecord, FileKind, NewChatFile, NewFile, StoredFile};
pub use lean::{StoredMessage, VersionMeta};
pub use models::ModelRecord;
pub use owners::Resource;
pub use runs::RunLease;
pub use tokens::{Credentials, LiveToken};
pub use users::{PasswordSet, UserOverview, set_password_at};
pub use versions::VersionRecord;

/// What went wrong in storage. `NotFound` names the missing thing for the client's error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found.")]
    NotFound(&'static str),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Secret(crate::secrets::SecretError),
    /// A failure of the SQLite write thread (its driver's error, as text).
    #[error("database error: {0}")]
    Write(String),
    #[error("unsupported database URL (use sqlite://… or postgres://…): {0}")]
    UnsupportedUrl(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

type Tx = Transaction<'static, Any>;

/// Which database is behind the pool. Only `store/` looks at it, for the few places where the
/// dialects differ (transaction start, row locks, live events, run locks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn of_url(url: &str) -> StoreResult<Self> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            // Only the scheme: the rest may hold a password.
            let scheme = url.split(':').next().unwrap_or_default();
            Err(StoreError::UnsupportedUrl(format!("{scheme}:")))
        }
    }

    /// The row-lock clause for `SELECT`s that guard a read-then-write. SQLite has none and
    /// needs none: `BEGIN IMMEDIATE` already makes writers take turns.
    fn for_update(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }
}

/// The database. Cheap to clone: it wraps a connection pool.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// Write transactions. On SQLite one connection: writers queue here, in order, instead of
    /// racing for the file's lock and sleeping in its busy handler (milliseconds each time).
    /// On PostgreSQL the pool itself.
    writer: AnyPool,
    /// Conversation appends (journaled, then copied into the table) and login tokens from all
    /// sessions, on a thread of their own (SQLite; `None` on PostgreSQL).
    batched: Option<sqlite_writer::SqliteWriter>,
    /// User IDs by email, for logins.
    known_users: Arc<KnownUsers>,
    backend: Backend,
    /// For the connections that live outside the pool (event listener, agent-run locks).
    url: String,
    /// Seals model keys at rest (a no-op without a secret key).
    sealer: Sealer,
}

/// Emails and their user IDs, bounded: past the limit it starts over.
#[derive(Debug, Default)]
struct KnownUsers(Mutex<HashMap<String, String>>);

impl KnownUsers {
    const LIMIT: usize = 100_000;

    fn get(&self, email: &str) -> Option<String> {
        self.lock().get(email).cloned()
    }

    fn insert(&self, email: &str, id: &str) {
        let mut users = self.lock();
        if users.len() >= Self::LIMIT {
            users.clear();
        }
        users.insert(email.to_owned(), id.to_owned());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl std::fmt::Debug for Store {
    // The URL may carry a password: keep it out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the database at `url` (`sqlite://…`, created if missing, or `postgres://…`) and
    /// applies its migrations.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        let (pool, writer, batched) = match backend {
            Backend::Sqlite => {
                let pool = open_sqlite(url, 8, false).await?;
                sqlx::migrate!("../migrations").run(&pool).await?;
                let writer = open_sqlite(url, 1, true).await?;
                let batched = sqlite_writer::SqliteWriter::start(&sqlite_file(url)?, pool.clone())?;
                (pool, writer, Some(batched))
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new().max_connections(16).connect(url).await?;
                sqlx::migrate!("../migrations/postgres").run(&pool).await?;
                (pool.clone(), pool, None)
            }
        };
        Ok(Self {
            pool,
            writer,
            batched,
            known_users: Arc::default(),
            backend,
            url: url.to_owned(),
            sealer: Sealer::default(),
        })
    }

    /// Seals model keys with `sealer` from now on.
    pub fn with_sealer(mut self, sealer: Sealer) -> Self {
        self.sealer = sealer;
        self
    }

    /// Waits until every chat message answered so far is in the conversation table (SQLite
    /// acknowledges appends from its journal first; see `sqlite_writer`). Every read of the
    /// conversation or of a chat's `last_updated` starts here.
    async fn settle(&self) -> StoreResult<()> {
        match &self.batched {
            Some(batched) => batched.settle().await,
            None => Ok(()),
        }
    }

    /// Taken before a transaction that numbers a conversation entry of the chat, held until
    /// it ends: brings the chat's journaled appends into the table and holds new ones back,
    /// so the transaction's `MAX(seq) + 1` follows all of them. `None` on PostgreSQL, where
    /// appends go straight to the table under the chat's row lock.
    async fn hold_chat(&self, chat_id: &str) -> StoreResult<Option<sqlite_writer::ChatHold>> {
        match &self.batched {
            Some(batched) => Ok(Some(batched.hold(chat_id).await?)),
            None => Ok(None),
        }
    }

    async fn begin(&self) -> StoreResult<Tx> {
        Ok(match self.backend {
            // IMMEDIATE takes the write lock at BEGIN: a deferred transaction that reads, then
            // writes, fails with "database is locked" when another writer got there first
            // (busy_timeout cannot help an upgrade), whereas IMMEDIATE waits its turn.
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await?,
            // PostgreSQL writers lock the rows they number after (`lock_chat`, `FOR UPDATE`).
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Foreign-key violations in the database (0 in a healthy one). SQLite checks on demand
    /// (`PRAGMA foreign_key_check`); PostgreSQL enforces every validated constraint on each
    /// write, so a violation can only hide behind a constraint that is not validated.
    pub async fn foreign_key_violations(&self) -> StoreResult<usize> {
        self.settle().await?;
        count_foreign_key_violations(self.backend, &self.pool).await
    }
}

/// Foreign-key violations (see `Store::foreign_key_violations`) in the database at `url`, read
/// beside the server that uses it: a second `Store` on a server's SQLite file is refused (see
/// `append_journal`). What that server has journaled but not yet copied into the table cannot
/// violate a key: the copy skips entries whose chat is gone.
pub async fn foreign_key_violations_at(url: &str) -> StoreResult<usize> {
    sqlx::any::install_default_drivers();
    let backend = Backend::of_url(url)?;
    let pool = AnyPoolOptions::new().max_connections(1).connect(url).await?;
    let violations = count_foreign_key_violations(backend, &pool).await;
    pool.close().await;
    violations
}

async fn count_foreign_key_violations(backend: Backend, pool: &AnyPool) -> StoreResult<usize> {
    match backend {
        Backend::Sqlite => Ok(sqlx::query("PRAGMA foreign_key_check").fetch_all(pool).await?.len()),
        Backend::Postgres => {
            let unchecked: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM pg_constraint WHERE contype = 'f' AND NOT convalidated")
                    .fetch_one(pool)
                    .await?;
            Ok(unchecked as usize)
        }
    }
}

/// SQLite through the `Any` pool: the file is created and switched to WAL once (both stick
/// to the file); the per-connection settings are applied as each connection opens.
/// `writer`: the one write connection, whose automatic WAL checkpoints are off (they run
/// beside it, see `sqlite_writer`).
async fn open_sqlite(url: &str, max_connections: u32, writer: bool) -> StoreResult<AnyPool> {
    let mut first = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .connect()
        .await?;
    first.ping().await?;
    first.close().await?;
    let pool = AnyPoolOptions::new()
        .max_connections(max_connections)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                // WAL + NORMAL is durable against process crashes (what we promise); only a
                // power loss can drop the last commits.
                conn.execute("PRAGMA synchronous = NORMAL").await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                conn.execute("PRAGMA busy_timeout = 10000").await?;
                // 16 MiB of page cache (the default is 2 MiB): long conversations and version
                // histories are read on every connect.
                conn.execute("PRAGMA cache_size = -16384").await?;
                if writer {
                    conn.execute("PRAGMA wal_autocheckpoint = 0").await?;
                }
                Ok(())
            })
        })
        .connect(url)
        .await?;
    Ok(pool)
}

/// A new random ID, as the brief's UUIDv4 strings.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The file behind a `sqlite:` URL, for the write thread's own connection. An in-memory
/// database would be a different one on every connection: refused.
fn sqlite_file(url: &str) -> StoreResult<String> {
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    let file = SqliteConnectOptions::from_str(url)?
        .get_filename()
        .to_string_lossy()
        .into_owned();
    if in_memory || file.is_empty() {
        return Err(StoreError::UnsupportedUrl(
            "an in-memory SQLite database (give a file)".into(),
        ));
    }
    Ok(file)
}

/// The current UTC time as the original wrote it (Python's `isoformat()` of a naive UTC time).
pub fn now_iso() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// The UTC time `after` from now, in the same format (token expiry).
pub fn now_iso_after(after: Duration) -> String {
    let after = chrono::Duration::from_std(after).unwrap_or(chrono::Duration::MAX);
    let at = chrono::Utc::now()
        .checked_add_signed(after)
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
    at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// Maps "no row" to `NotFound(what)`.
fn found<T>(row: Option<T>, what: &'static str) -> StoreResult<T> {
    row.ok_or(StoreError::NotFound(what))
}

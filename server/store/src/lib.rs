//! All SQL lives here; nothing else touches the database.
//!
//! Queries are checked at run time (building needs no database) and written in portable SQL
//! with `$n` placeholders, run through sqlx's `Any` driver on SQLite or PostgreSQL, chosen by
//! the URL's scheme. Every operation that changes rows runs in one transaction (`Store::write`),
//! so a crash leaves either all of it or none of it: on SQLite on the one writer, with group
//! commit (`sqlite_writer`), on PostgreSQL on the pool. Nothing outside this module knows which
//! database is in use: live chat events (`events`) and the one-agent-run-per-chat lock
//! (`runs`) live here too, in-process on SQLite and shared through PostgreSQL otherwise.

mod chats;
mod conversation;
mod events;
mod files;
mod lean;
mod legacy_journal;
mod models;
mod owners;
mod runs;
pub mod secrets;
mod sqlite_writer;
mod tokens;
#[cfg(test)]
mod upgrade_tests;
mod upload_bytes;
mod users;
mod versions;
mod workspaces;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{AnyConnection, AnyPool, ConnectOptions, Connection, Executor};

use sqlite_writer::{SqliteWriter, WriteFn};

use crate::secrets::Sealer;

pub use chats::ChatRecord;
pub use conversation::MessageRecord;
pub use events::{ChatSignal, EventBus, SignalKind};
pub use files::{ChatFileRecord, FileKind, NewChatFile, NewFile, StoredFile};
pub use lean::{StoredMessage, VersionMeta};
pub use models::ModelRecord;
pub use owners::Resource;
pub use runs::{AgentRunRecord, RunLease};
pub use tokens::{Credentials, LiveToken};
pub use upload_bytes::{CHUNK_BYTES, DbBytes, StoredBytes};
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
    /// A failure of the SQLite writer (its driver's error, as text), or a second server on
    /// the same SQLite file.
    #[error("database error: {0}")]
    Write(String),
    #[error("unsupported database URL (use sqlite://… or postgres://…): {0}")]
    UnsupportedUrl(String),
    /// A version was to follow another that is no longer the file's newest; names the newest.
    #[error("version {0} is now the file's latest")]
    Stale(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// How SQLite makes a commit durable (`PRAGMA synchronous` of the write connection; WAL).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// A commit is in the WAL, in the operating system's cache, before it is answered: it
    /// survives a crash of the process; a power cut may lose the last commits (never corrupts).
    #[default]
    Normal,
    /// The WAL is fsynced at each commit (one fsync per group): it survives a power cut too.
    Full,
}

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
    /// needs none: its one writer runs one write at a time.
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
    /// Reads; on PostgreSQL writes too. On SQLite its connections are read-only (`query_only`).
    pool: AnyPool,
    /// SQLite: the one write connection, taking every write in turn (`None` on PostgreSQL).
    writer: Option<SqliteWriter>,
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

    fn lock(&self) -> parking_lot::MutexGuard<'_, HashMap<String, String>> {
        self.0.lock()
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
        Self::connect_with(url, Synchronous::default()).await
    }

    /// [`Store::connect`], with SQLite's commits made durable as `synchronous` says.
    pub async fn connect_with(url: &str, synchronous: Synchronous) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        let (pool, writer) = match backend {
            Backend::Sqlite => {
                let (pool, writer) = open_sqlite(url, synchronous).await?;
                (pool, Some(writer))
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new().max_connections(16).connect(url).await?;
                sqlx::migrate!("../../migrations/postgres").run(&pool).await?;
                (pool, None)
            }
        };
        Ok(Self {
            pool,
            writer,
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

    /// Runs `f` as one write transaction and returns its result once committed. On SQLite it
    /// is queued for the writer and committed with whatever queued beside it (see
    /// `sqlite_writer`); on PostgreSQL it is a transaction of its own on the pool, whose
    /// writers take turns through row locks (`conversation::lock_chat`, `FOR UPDATE`).
    async fn write<T: Send + 'static>(&self, f: impl WriteFn<T>) -> StoreResult<T> {
        match &self.writer {
            Some(writer) => writer.write(f).await,
            None => {
                let mut tx = self.pool.begin().await?;
                let value = f(&mut tx).await?;
                tx.commit().await?;
                Ok(value)
            }
        }
    }

    /// Foreign-key violations in the database (0 in a healthy one). SQLite checks on demand
    /// (`PRAGMA foreign_key_check`); PostgreSQL enforces every validated constraint on each
    /// write, so a violation can only hide behind a constraint that is not validated.
    pub async fn foreign_key_violations(&self) -> StoreResult<usize> {
        count_foreign_key_violations(self.backend, &self.pool).await
    }
}

/// Foreign-key violations (see `Store::foreign_key_violations`) in the database at `url`, read
/// beside the server that uses it (a reader only: a second `Store` on a server's SQLite file is
/// refused, see `claim_sqlite`).
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

/// SQLite: creates the file (WAL) if needed, opens the one write connection, makes sure no
/// other server uses the file, migrates, applies an old release's journal, then opens the
/// read-only pool and starts the writer.
async fn open_sqlite(url: &str, synchronous: Synchronous) -> StoreResult<(AnyPool, SqliteWriter)> {
    let file = sqlite_file(url)?;
    let mut first = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .connect()
        .await?;
    first.ping().await?;
    first.close().await?;
    let mut writer = AnyConnection::connect(url).await?;
    claim_sqlite(&mut writer, &file).await?;
    let synchronous = match synchronous {
        Synchronous::Normal => "NORMAL",
        Synchronous::Full => "FULL",
    };
    let pragmas = format!(
        "PRAGMA synchronous = {synchronous}; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;
         PRAGMA cache_size = -16384;"
    );
    writer.execute(sqlx::raw_sql(&pragmas)).await?;
    sqlx::migrate!("../../migrations").run(&mut writer).await?;
    legacy_journal::apply(&mut writer, &file).await?;
    let pool = AnyPoolOptions::new()
        .max_connections(8)
        // One stays open: its lock on the file is part of what keeps a second server out.
        .min_connections(1)
        .after_connect(|conn, _| {
            Box::pin(async move {
                // Nothing writes beside the writer.
                conn.execute("PRAGMA query_only = ON").await?;
                conn.execute("PRAGMA busy_timeout = 10000").await?;
                // 16 MiB of page cache (the default is 2 MiB): long conversations and version
                // histories are read on every connect.
                conn.execute("PRAGMA cache_size = -16384").await?;
                Ok(())
            })
        })
        .connect(url)
        .await?;
    let writer = SqliteWriter::start(writer, &file, &pragmas, pool.clone()).await?;
    Ok((pool, writer))
}

/// Refuses a database file that another process has open (another server, or a `kafka` with
/// an embedded server), through SQLite's own locks: in WAL mode every open connection holds a
/// shared lock on the file, so an exclusive one is granted only to a connection that is alone.
/// `conn` takes it (waiting a little: a server restarting may still be closing) and goes back
/// to shared, which it keeps while open, like the pool's connections after it: a later
/// server's check fails the same way.
async fn claim_sqlite(conn: &mut AnyConnection, file: &str) -> StoreResult<()> {
    let probe = conn
        .execute(sqlx::raw_sql(
            "PRAGMA busy_timeout = 3000; SELECT COUNT(*) FROM sqlite_master; PRAGMA locking_mode = EXCLUSIVE;
             BEGIN EXCLUSIVE; COMMIT;",
        ))
        .await;
    // Back to shared: the next read drops the exclusive lock.
    conn.execute(sqlx::raw_sql(
        "PRAGMA locking_mode = NORMAL; SELECT COUNT(*) FROM sqlite_master;",
    ))
    .await?;
    probe.map(|_| ()).map_err(|error| {
        StoreError::Write(format!(
            "another Kafka server (or another program) has the database {file} open ({error}); \
             stop it, or give this server another data directory"
        ))
    })
}

/// A new random ID, as the brief's UUIDv4 strings.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The file behind a `sqlite:` URL. An in-memory database would be a different one on every
/// connection: refused.
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

//! All SQL lives here; nothing else touches the database.
//!
//! Queries are checked at run time (building needs no database) and written in portable SQL
//! with `$n` placeholders. Every operation that changes several rows runs in one
//! transaction, so a crash leaves either all of it or none of it.

mod chats;
mod conversation;
mod files;
mod group_commit;
mod lean;
mod models;
mod owners;
mod tokens;
mod users;
mod versions;
mod workspaces;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

use crate::secrets::Sealer;

pub use chats::ChatRecord;
pub use conversation::MessageRecord;
pub use files::{ChatFileRecord, FileKind, NewChatFile, NewFile, StoredFile};
pub use lean::{StoredMessage, VersionMeta};
pub use models::ModelRecord;
pub use owners::Resource;
pub use tokens::Credentials;
pub use users::UserOverview;
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
}

pub type StoreResult<T> = Result<T, StoreError>;

type Tx = Transaction<'static, Sqlite>;

/// The database. Cheap to clone: it wraps a connection pool.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    /// One connection for write transactions: writers queue here, in order, instead of
    /// racing for SQLite's lock and sleeping in its busy handler (milliseconds each time).
    writer: SqlitePool,
    /// Conversation appends from all sessions, committed in batches.
    group: group_commit::GroupCommit,
    /// User IDs by email, for logins.
    known_users: Arc<KnownUsers>,
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

impl Store {
    /// Opens (creating if missing) the database at `url` and applies the migrations.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL is durable against process crashes (what we promise); only a power
            // loss can drop the last commits.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            // 16 MiB of page cache per connection (the default is 2 MiB): long conversations
            // and version histories are read on every connect.
            .pragma("cache_size", "-16384");
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("../migrations").run(&pool).await?;
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            // Checkpoints run beside the writer (see `group_commit`), not inside its commits.
            .connect_with(options.pragma("wal_autocheckpoint", "0"))
            .await?;
        let group = group_commit::GroupCommit::start(writer.clone(), pool.clone());
        Ok(Self {
            pool,
            writer,
            group,
            known_users: Arc::default(),
            sealer: Sealer::default(),
        })
    }

    /// Seals model keys with `sealer` from now on.
    pub fn with_sealer(mut self, sealer: Sealer) -> Self {
        self.sealer = sealer;
        self
    }

    async fn begin(&self) -> StoreResult<Tx> {
        // IMMEDIATE takes the write lock at BEGIN: a deferred transaction that reads, then writes,
        // fails with "database is locked" when another writer got there first (busy_timeout
        // cannot help an upgrade), whereas IMMEDIATE waits its turn.
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Runs `PRAGMA foreign_key_check`; the number of violations (0 in a healthy database).
    pub async fn foreign_key_violations(&self) -> StoreResult<usize> {
        let rows = sqlx::query("PRAGMA foreign_key_check").fetch_all(&self.pool).await?;
        Ok(rows.len())
    }
}

/// A new random ID, as the brief's UUIDv4 strings.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
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

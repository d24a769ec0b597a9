//! Users, and the overview `/auth/login` returns.

use std::collections::HashMap;

use kafka_protocol::rest::{ChatSummary, FileSummary, LoginResponse, ModelInfo, WorkspaceSummary};
use sqlx::Row;

use super::{Store, StoreResult, found, new_id, now_iso};

/// The name of the workspace every new user starts with.
pub const DEFAULT_WORKSPACE: &str = "Default Workspace";

pub type UserOverview = LoginResponse;

impl Store {
    /// The user with this email, created with a default workspace on first login.
    /// Returns the user's ID.
    pub async fn login(&self, email: &str) -> StoreResult<String> {
        if let Some(id) = self.user_id_by_email(email).await? {
            return Ok(id);
        }
        match self.create_user(email, None).await? {
            Some(id) => Ok(id),
            // Two first logins at once: the loser reads the winner's row.
            None => found(self.user_id_by_email(email).await?, "User"),
        }
    }

    /// Creates the user with a default workspace and, if given, a password hash. `None` when
    /// the email is already taken (the existing account is left as it is).
    pub async fn create_user(&self, email: &str, password_hash: Option<&str>) -> StoreResult<Option<String>> {
        let (email, hash) = (email.to_owned(), password_hash.map(str::to_owned));
        self.write(move |conn| Box::pin(async move { insert_user(conn, &email, hash.as_deref()).await }))
            .await
    }

    /// The user's ID, remembered once found: an email's user never changes and users are never
    /// deleted, so a repeated login reads the database once (its overview), not twice.
    async fn user_id_by_email(&self, email: &str) -> StoreResult<Option<String>> {
        if let Some(id) = self.known_users.get(email) {
            return Ok(Some(id));
        }
        let id: Option<String> = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
            .bind(email)
            .fetch_optional(&self.pool)
            .await?;
        if let Some(id) = &id {
            self.known_users.insert(email, id);
        }
        Ok(id)
    }

    /// What the user stores, in bytes: uploads, conversation entries and file versions (the
    /// counts migration 0007 keeps on the rows that own them).
    pub async fn stored_bytes(&self, user_id: &str) -> StoreResult<u64> {
        let bytes: i64 = sqlx::query_scalar(
            // CAST: PostgreSQL sums BIGINTs as NUMERIC.
            "SELECT CAST((SELECT COALESCE(SUM(f.size), 0) FROM files f JOIN workspaces w ON w.id = f.workspace_id
                     WHERE w.owner_id = $1)
                  + (SELECT COALESCE(SUM(c.stored_bytes), 0) FROM chats c WHERE c.user_id = $1)
                  + (SELECT COALESCE(SUM(cf.stored_bytes), 0) FROM chat_files cf JOIN chats c ON c.id = cf.chat_id
                     WHERE c.user_id = $1) AS BIGINT)",
        )
        .bind(user_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(bytes).unwrap_or(0))
    }

    pub async fn user_exists(&self, user_id: &str) -> StoreResult<bool> {
        let row: Option<String> = sqlx::query_scalar("SELECT id FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Everything a user owns, as `/auth/login` returns it: one query, whatever the size
    /// (each round trip to the database costs more than the rows it carries).
    pub async fn user_overview(&self, user_id: &str) -> StoreResult<UserOverview> {
        let rows = sqlx::query(OVERVIEW)
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| OverviewRow {
                part: row.get("part"),
                id: row.get("id"),
                name: row.get("name"),
                parent: row.get("parent"),
                desc_key: row.get("desc_key"),
                num_versions: row.get("num_versions"),
                base_url: row.get("base_url"),
            })
            .collect();
        overview_from_rows(user_id, rows)
    }

    /// A login: records its token and reads the user's overview, side by side.
    pub async fn create_token_with_overview(
        &self,
        user_id: &str,
        token_hash: &str,
        expires_at: &str,
    ) -> StoreResult<UserOverview> {
        let ((), overview) = tokio::try_join!(
            self.create_token(user_id, token_hash, expires_at),
            self.user_overview(user_id)
        )?;
        Ok(overview)
    }
}

/// Inserts a user and its default workspace; `None` (nothing written) when the email is taken.
async fn insert_user(
    conn: &mut sqlx::AnyConnection,
    email: &str,
    password_hash: Option<&str>,
) -> StoreResult<Option<String>> {
    let id = new_id();
    let now = now_iso();
    let inserted = sqlx::query(
        "INSERT INTO users (id, email, created_at, password_hash) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (email) DO NOTHING",
    )
    .bind(&id)
    .bind(email)
    .bind(&now)
    .bind(password_hash)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(None);
    }
    sqlx::query("INSERT INTO workspaces (id, name, owner_id, created_at) VALUES ($1, $2, $3, $4)")
        .bind(new_id())
        .bind(DEFAULT_WORKSPACE)
        .bind(&id)
        .bind(&now)
        .execute(&mut *conn)
        .await?;
    Ok(Some(id))
}

/// What `set_password_at` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordSet {
    /// The account did not exist and was created (with a default workspace).
    pub created: bool,
    /// Login tokens of the account that were revoked.
    pub revoked: u64,
}

/// Sets the password hash of the account `email` in the database at `url`, creating the
/// account if there is none, and revokes all of its tokens; for `kafka-server user
/// set-password`, beside a running server (one connection, no `Store`: a second `Store` on a
/// server's SQLite file is refused, see `claim_sqlite`).
pub async fn set_password_at(url: &str, email: &str, password_hash: &str) -> StoreResult<PasswordSet> {
    sqlx::any::install_default_drivers();
    let backend = super::Backend::of_url(url)?;
    let pool = match backend {
        super::Backend::Sqlite => {
            // The file may not exist yet (no server has run on it); SQLite's locks let this
            // one connection write beside a running server.
            use sqlx::ConnectOptions;
            use std::str::FromStr;
            let mut create = sqlx::sqlite::SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .connect()
                .await?;
            sqlx::Connection::ping(&mut create).await?;
            sqlx::Connection::close(create).await?;
            let pool = sqlx::any::AnyPoolOptions::new().max_connections(1).connect(url).await?;
            sqlx::query("PRAGMA busy_timeout = 10000").execute(&pool).await?;
            sqlx::migrate!("../../migrations").run(&pool).await?;
            pool
        }
        super::Backend::Postgres => {
            let pool = sqlx::any::AnyPoolOptions::new().max_connections(1).connect(url).await?;
            sqlx::migrate!("../../migrations/postgres").run(&pool).await?;
            pool
        }
    };
    let result = async {
        let mut tx = match backend {
            super::Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await?,
            super::Backend::Postgres => pool.begin().await?,
        };
        if insert_user(&mut tx, email, Some(password_hash)).await?.is_some() {
            tx.commit().await?;
            return Ok(PasswordSet {
                created: true,
                revoked: 0,
            });
        }
        let user_id: String = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
            .bind(email)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(&user_id)
            .execute(&mut *tx)
            .await?;
        let revoked = sqlx::query("DELETE FROM auth_tokens WHERE user_id = $1")
            .bind(&user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(PasswordSet {
            created: false,
            revoked,
        })
    }
    .await;
    pool.close().await;
    result
}

/// The overview: one row per thing a user owns. The casts make PostgreSQL type the union's
/// number columns BIGINT, as Rust reads them. `part` says which table a row comes from: 0 the
/// user, 1 workspaces, 2 files, 3 chats, 4 models. Each part keeps the order the brief's
/// clients see: creation order, and chats by most recent update (`desc_key`).
const OVERVIEW: &str = "SELECT CAST(0 AS BIGINT) AS part, u.id, u.email AS name, NULL AS parent, NULL AS asc_key,
        NULL AS desc_key, CAST(0 AS BIGINT) AS num_versions, '' AS base_url
   FROM users u WHERE u.id = $1
 UNION ALL
 SELECT 1, w.id, w.name, NULL, w.created_at, NULL, 0, '' FROM workspaces w WHERE w.owner_id = $1
 UNION ALL
 SELECT 2, f.id, f.filename, f.workspace_id, f.created_at, NULL, 0, ''
   FROM files f JOIN workspaces w ON w.id = f.workspace_id WHERE w.owner_id = $1
 UNION ALL
 SELECT 3, c.id, c.name, c.workspace_id, NULL, c.last_updated,
        (SELECT COUNT(*) FROM chat_file_versions v JOIN chat_files cf ON cf.id = v.chat_file_id
         WHERE cf.chat_id = c.id), ''
   FROM chats c WHERE c.user_id = $1
 UNION ALL
 SELECT 4, m.id, m.name, NULL, m.created_at, NULL, 0, m.base_url FROM models m WHERE m.user_id = $1
 ORDER BY part, asc_key, desc_key DESC, id";

/// A row of `OVERVIEW`.
#[derive(Debug)]
struct OverviewRow {
    pub part: i64,
    pub id: String,
    pub name: String,
    pub parent: Option<String>,
    pub desc_key: Option<String>,
    pub num_versions: i64,
    /// Empty but for models.
    pub base_url: String,
}

/// Nests the overview's rows: files and chats into their workspaces.
fn overview_from_rows(user_id: &str, rows: Vec<OverviewRow>) -> StoreResult<UserOverview> {
    let mut email = None;
    let mut workspaces: Vec<WorkspaceSummary> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut models = Vec::new();
    for row in rows {
        let OverviewRow { id, name, .. } = row;
        let parent = row.parent.as_deref().and_then(|p| index.get(p).copied());
        match row.part {
            0 => email = Some(name),
            1 => {
                index.insert(id.clone(), workspaces.len());
                workspaces.push(WorkspaceSummary {
                    id,
                    name,
                    files: Vec::new(),
                    chats: Vec::new(),
                });
            }
            2 => {
                if let Some(i) = parent {
                    workspaces[i].files.push(FileSummary { id, filename: name });
                }
            }
            3 => {
                if let Some(i) = parent {
                    workspaces[i].chats.push(ChatSummary {
                        id,
                        name,
                        last_updated: row.desc_key,
                        num_versions: row.num_versions,
                    });
                }
            }
            _ => models.push(ModelInfo {
                id,
                name,
                base_url: row.base_url,
                user_id: user_id.to_owned(),
            }),
        }
    }
    let email = found(email, "User")?;
    Ok(LoginResponse {
        user_id: user_id.to_owned(),
        email,
        workspaces,
        models,
        token: None,
        token_expires_at: None,
    })
}

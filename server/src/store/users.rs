//! Users, and the overview `/auth/login` returns.

use std::collections::HashMap;

use kafka_protocol::rest::{ChatSummary, FileSummary, LoginResponse, WorkspaceSummary};
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
        let mut tx = self.begin().await?;
        let id = new_id();
        let now = now_iso();
        // Two first logins at once: the loser's insert is ignored and it reads the winner's row.
        let inserted =
            sqlx::query("INSERT INTO users (id, email, created_at) VALUES ($1, $2, $3) ON CONFLICT (email) DO NOTHING")
                .bind(&id)
                .bind(email)
                .bind(&now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if inserted == 0 {
            tx.rollback().await?;
            return found(self.user_id_by_email(email).await?, "User");
        }
        sqlx::query("INSERT INTO workspaces (id, name, owner_id, created_at) VALUES ($1, $2, $3, $4)")
            .bind(new_id())
            .bind(DEFAULT_WORKSPACE)
            .bind(&id)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn user_id_by_email(&self, email: &str) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
            .bind(email)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn user_exists(&self, user_id: &str) -> StoreResult<bool> {
        let row: Option<String> = sqlx::query_scalar("SELECT id FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Everything a user owns, as `/auth/login` returns it: four queries, whatever the size.
    pub async fn user_overview(&self, user_id: &str) -> StoreResult<UserOverview> {
        let email: String = found(
            sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?,
            "User",
        )?;
        let mut workspaces: Vec<WorkspaceSummary> =
            sqlx::query("SELECT id, name FROM workspaces WHERE owner_id = $1 ORDER BY created_at, id")
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(|row| WorkspaceSummary {
                    id: row.get("id"),
                    name: row.get("name"),
                    files: Vec::new(),
                    chats: Vec::new(),
                })
                .collect();
        let index: HashMap<String, usize> = workspaces.iter().enumerate().map(|(i, w)| (w.id.clone(), i)).collect();

        let files = sqlx::query(
            "SELECT f.id, f.filename, f.workspace_id FROM files f JOIN workspaces w ON w.id = f.workspace_id
             WHERE w.owner_id = $1 ORDER BY f.created_at, f.id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        for row in files {
            if let Some(&i) = index.get(row.get::<&str, _>("workspace_id")) {
                workspaces[i].files.push(FileSummary {
                    id: row.get("id"),
                    filename: row.get("filename"),
                });
            }
        }

        let chats = sqlx::query(
            "SELECT c.id, c.name, c.last_updated, c.workspace_id,
                    (SELECT COUNT(*) FROM chat_file_versions v JOIN chat_files cf ON cf.id = v.chat_file_id
                     WHERE cf.chat_id = c.id) AS num_versions
             FROM chats c WHERE c.user_id = $1 ORDER BY c.last_updated DESC, c.id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        for row in chats {
            if let Some(&i) = index.get(row.get::<&str, _>("workspace_id")) {
                workspaces[i].chats.push(ChatSummary {
                    id: row.get("id"),
                    name: row.get("name"),
                    last_updated: row.get("last_updated"),
                    num_versions: row.get("num_versions"),
                });
            }
        }

        let models = self.models_of(user_id).await?;
        Ok(LoginResponse {
            user_id: user_id.to_owned(),
            email,
            workspaces,
            models,
            token: None,
            token_expires_at: None,
        })
    }
}

//! Chats: create, look up, rename, delete.

use sqlx::Row;

use super::{Store, StoreResult, found, new_id, now_iso};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatRecord {
    pub id: String,
    pub name: String,
    pub last_updated: Option<String>,
    pub user_id: String,
    pub workspace_id: String,
}

impl Store {
    pub async fn create_chat(&self, user_id: &str, workspace_id: &str, name: &str) -> StoreResult<ChatRecord> {
        let chat = ChatRecord {
            id: new_id(),
            name: name.to_owned(),
            last_updated: Some(now_iso()),
            user_id: user_id.to_owned(),
            workspace_id: workspace_id.to_owned(),
        };
        sqlx::query("INSERT INTO chats (id, name, last_updated, user_id, workspace_id) VALUES ($1, $2, $3, $4, $5)")
            .bind(&chat.id)
            .bind(&chat.name)
            .bind(&chat.last_updated)
            .bind(&chat.user_id)
            .bind(&chat.workspace_id)
            .execute(&self.pool)
            .await?;
        Ok(chat)
    }

    pub async fn chat(&self, chat_id: &str) -> StoreResult<ChatRecord> {
        self.settle().await?;
        let row = sqlx::query("SELECT id, name, last_updated, user_id, workspace_id FROM chats WHERE id = $1")
            .bind(chat_id)
            .fetch_optional(&self.pool)
            .await?;
        let row = found(row, "Chat")?;
        Ok(ChatRecord {
            id: row.get("id"),
            name: row.get("name"),
            last_updated: row.get("last_updated"),
            user_id: row.get("user_id"),
            workspace_id: row.get("workspace_id"),
        })
    }

    /// Renames the chat and touches `last_updated`; returns the updated chat.
    pub async fn rename_chat(&self, chat_id: &str, new_name: &str) -> StoreResult<ChatRecord> {
        let updated = sqlx::query("UPDATE chats SET name = $1, last_updated = $2 WHERE id = $3")
            .bind(new_name)
            .bind(now_iso())
            .bind(chat_id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        found((updated > 0).then_some(()), "Chat")?;
        self.chat(chat_id).await
    }

    /// Deletes the chat with its conversation, files and versions. Returns the stored paths
    /// of bytes that belonged to the chat alone (a chat upload is also a workspace file, whose
    /// bytes stay with the workspace).
    pub async fn delete_chat(&self, chat_id: &str) -> StoreResult<Vec<String>> {
        let mut tx = self.begin().await?;
        let paths: Vec<String> = sqlx::query_scalar(
            "SELECT cf.path FROM chat_files cf WHERE cf.chat_id = $1 AND cf.path <> ''
             AND NOT EXISTS (SELECT 1 FROM files f WHERE f.id = cf.id)",
        )
        .bind(chat_id)
        .fetch_all(&mut *tx)
        .await?;
        let deleted = sqlx::query("DELETE FROM chats WHERE id = $1")
            .bind(chat_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        found((deleted > 0).then_some(()), "Chat")?;
        tx.commit().await?;
        Ok(paths)
    }
}

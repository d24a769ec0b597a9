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
        let row = chat.clone();
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO chats (id, name, last_updated, user_id, workspace_id) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&row.id)
                .bind(&row.name)
                .bind(&row.last_updated)
                .bind(&row.user_id)
                .bind(&row.workspace_id)
                .execute(&mut *conn)
                .await?;
                Ok(())
            })
        })
        .await?;
        Ok(chat)
    }

    pub async fn chat(&self, chat_id: &str) -> StoreResult<ChatRecord> {
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
        let (id, name) = (chat_id.to_owned(), new_name.to_owned());
        self.write(move |conn| {
            Box::pin(async move {
                let updated = sqlx::query("UPDATE chats SET name = $1, last_updated = $2 WHERE id = $3")
                    .bind(&name)
                    .bind(now_iso())
                    .bind(&id)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                found((updated > 0).then_some(()), "Chat")
            })
        })
        .await?;
        self.chat(chat_id).await
    }

    /// Deletes the chat with its conversation, files and versions. Returns the stored paths
    /// of bytes that belonged to the chat alone (a chat upload is also a workspace file, whose
    /// bytes stay with the workspace).
    pub async fn delete_chat(&self, chat_id: &str) -> StoreResult<Vec<String>> {
        let chat_id = chat_id.to_owned();
        self.write(move |conn| {
            Box::pin(async move {
                let paths: Vec<String> = sqlx::query_scalar(
                    "SELECT cf.path FROM chat_files cf WHERE cf.chat_id = $1 AND cf.path <> ''
                     AND NOT EXISTS (SELECT 1 FROM files f WHERE f.id = cf.id)",
                )
                .bind(&chat_id)
                .fetch_all(&mut *conn)
                .await?;
                let deleted = sqlx::query("DELETE FROM chats WHERE id = $1")
                    .bind(&chat_id)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                found((deleted > 0).then_some(()), "Chat")?;
                Ok(paths)
            })
        })
        .await
    }
}

//! Lean reads for the WebSocket payload: version lists without their content, the newest
//! version of each file, and conversation entries as their stored JSON text.
//!
//! Why: a chat with a long history holds megabytes of version content and conversation;
//! reading only what a frame needs, and never parsing JSON that is sent on as it is, keeps
//! a connect cheap however long the history grows.

use sqlx::Row;

use super::versions::VersionRecord;
use super::{Store, StoreResult};

/// A version without its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionMeta {
    pub id: String,
    pub file_id: String,
    pub seq: i64,
    pub timestamp: String,
}

/// A conversation entry as stored: `content_json` is the JSON text `append` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub seq: i64,
    pub role: String,
    pub kind: String,
    pub content_json: String,
}

impl Store {
    /// Every version of the chat's files, without content, by file and oldest first.
    pub async fn chat_version_list(&self, chat_id: &str) -> StoreResult<Vec<VersionMeta>> {
        let rows = sqlx::query(
            "SELECT v.id, v.chat_file_id, v.seq, v.timestamp FROM chat_file_versions v
             JOIN chat_files cf ON cf.id = v.chat_file_id WHERE cf.chat_id = $1 ORDER BY v.chat_file_id, v.seq",
        )
        .bind(chat_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| VersionMeta {
                id: row.get("id"),
                file_id: row.get("chat_file_id"),
                seq: row.get("seq"),
                timestamp: row.get("timestamp"),
            })
            .collect())
    }

    /// The newest version of each of the chat's files, with content.
    pub async fn latest_chat_versions(&self, chat_id: &str) -> StoreResult<Vec<VersionRecord>> {
        let rows = sqlx::query(
            "SELECT v.id, v.chat_file_id, v.seq, v.timestamp, v.content FROM chat_files cf
             JOIN chat_file_versions v ON v.id = (SELECT m.id FROM chat_file_versions m
                                                   WHERE m.chat_file_id = cf.id ORDER BY m.seq DESC LIMIT 1)
             WHERE cf.chat_id = $1",
        )
        .bind(chat_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| VersionRecord {
                id: row.get("id"),
                file_id: row.get("chat_file_id"),
                seq: row.get("seq"),
                timestamp: row.get("timestamp"),
                content: row.get("content"),
            })
            .collect())
    }

    /// `(version id, content)` of every version of a file, oldest first.
    pub async fn version_contents(&self, file_id: &str) -> StoreResult<Vec<(String, String)>> {
        Ok(
            sqlx::query_as("SELECT id, content FROM chat_file_versions WHERE chat_file_id = $1 ORDER BY seq")
                .bind(file_id)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// The entries after `after_seq` (all: 0), in order, as stored.
    pub async fn conversation_after(&self, chat_id: &str, after_seq: i64) -> StoreResult<Vec<StoredMessage>> {
        let rows = sqlx::query(
            "SELECT seq, role, type, content FROM chat_conversations WHERE chat_id = $1 AND seq > $2 ORDER BY seq",
        )
        .bind(chat_id)
        .bind(after_seq)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(stored_message).collect())
    }

    /// Up to `limit` entries before `before_seq` (all the newest when `None`), in order.
    pub async fn conversation_page(
        &self,
        chat_id: &str,
        before_seq: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<StoredMessage>> {
        let rows = sqlx::query(
            "SELECT seq, role, type, content FROM chat_conversations WHERE chat_id = $1 AND seq < $2
             ORDER BY seq DESC LIMIT $3",
        )
        .bind(chat_id)
        .bind(before_seq.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut page: Vec<StoredMessage> = rows.into_iter().map(stored_message).collect();
        page.reverse();
        Ok(page)
    }
}

fn stored_message(row: sqlx::any::AnyRow) -> StoredMessage {
    StoredMessage {
        seq: row.get("seq"),
        role: row.get("role"),
        kind: row.get("type"),
        content_json: row.get("content"),
    }
}

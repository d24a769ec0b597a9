//! Conversation entries, ordered by `seq` within their chat.

use serde_json::Value;
use sqlx::{AnyConnection, Row};

use super::{Store, StoreResult, found, now_iso};

/// A saved conversation entry. `content` is a JSON string for text, an object for files.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageRecord {
    pub seq: i64,
    pub role: String,
    pub kind: String,
    pub content: Value,
}

impl MessageRecord {
    pub fn text(role: &str, text: &str) -> Self {
        Self::new(role, "text", Value::String(text.to_owned()))
    }

    pub fn file(role: &str, content: Value) -> Self {
        Self::new(role, "file", content)
    }

    fn new(role: &str, kind: &str, content: Value) -> Self {
        Self {
            seq: 0,
            role: role.to_owned(),
            kind: kind.to_owned(),
            content,
        }
    }
}

/// Touches the chat's `last_updated`, which also locks its row until the commit: every write
/// that numbers something in a chat (conversation entries, versions of its files) starts
/// here, so on PostgreSQL concurrent writers to one chat take turns instead of reading the
/// same `MAX(seq)`. (On SQLite the one writer runs one write at a time.) Locking the chat
/// before any file row keeps one lock order everywhere: no deadlocks.
pub(super) async fn lock_chat(conn: &mut AnyConnection, chat_id: &str) -> StoreResult<()> {
    let touched = sqlx::query("UPDATE chats SET last_updated = $1 WHERE id = $2")
        .bind(now_iso())
        .bind(chat_id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    found((touched > 0).then_some(()), "Chat")
}

/// Appends `message` to the chat, numbering it after the chat's last entry, and touches the
/// chat's `last_updated`. Returns the entry with its `seq`.
pub(super) async fn append(
    conn: &mut AnyConnection,
    chat_id: &str,
    message: &MessageRecord,
) -> StoreResult<MessageRecord> {
    lock_chat(conn, chat_id).await?;
    insert(conn, chat_id, message).await
}

/// [`append`] without the touch: for a chat already locked in this transaction.
async fn insert(conn: &mut AnyConnection, chat_id: &str, message: &MessageRecord) -> StoreResult<MessageRecord> {
    // Numbered inside the insert, under the chat's row lock: no two writers share a number.
    // The newest entry is found by one index seek (`MAX(seq)` would step through the chat).
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO chat_conversations (chat_id, seq, role, type, content, created_at)
         VALUES ($1, COALESCE((SELECT seq FROM chat_conversations WHERE chat_id = $1 ORDER BY seq DESC LIMIT 1), 0) + 1,
                 $2, $3, $4, $5)
         RETURNING seq",
    )
    .bind(chat_id)
    .bind(&message.role)
    .bind(&message.kind)
    .bind(message.content.to_string())
    .bind(now_iso())
    .fetch_one(&mut *conn)
    .await?;
    Ok(MessageRecord { seq, ..message.clone() })
}

impl Store {
    /// Saves the messages together, in order; returns them with their `seq` once committed
    /// (on SQLite with the writes of concurrent sessions, see `sqlite_writer`).
    pub async fn append_messages(&self, chat_id: &str, messages: &[MessageRecord]) -> StoreResult<Vec<MessageRecord>> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(writer) = &self.writer {
            return writer.append(chat_id, messages.to_vec()).await;
        }
        let (chat_id, messages) = (chat_id.to_owned(), messages.to_vec());
        self.write(move |conn| {
            Box::pin(async move {
                lock_chat(conn, &chat_id).await?;
                let mut saved = Vec::with_capacity(messages.len());
                for message in &messages {
                    saved.push(insert(conn, &chat_id, message).await?);
                }
                Ok(saved)
            })
        })
        .await
    }

    /// The chat's whole conversation, in order.
    pub async fn conversation(&self, chat_id: &str) -> StoreResult<Vec<MessageRecord>> {
        let rows =
            sqlx::query("SELECT seq, role, type, content FROM chat_conversations WHERE chat_id = $1 ORDER BY seq")
                .bind(chat_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|row| MessageRecord {
                seq: row.get("seq"),
                role: row.get("role"),
                kind: row.get("type"),
                // Written by `append` as JSON; a row edited by hand falls back to its raw text.
                content: serde_json::from_str(row.get("content")).unwrap_or_else(|_| Value::String(row.get("content"))),
            })
            .collect())
    }
}

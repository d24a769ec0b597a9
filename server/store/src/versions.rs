//! Versions of `.based` chat files, ordered by `seq` within their file.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::StoreError;
use super::conversation::{self, MessageRecord};
use super::files::{FileKind, NewChatFile, NewFile, insert_chat_file};
use super::{Store, StoreResult, found, new_id, now_iso};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRecord {
    pub id: String,
    pub file_id: String,
    pub seq: i64,
    pub timestamp: String,
    pub content: String,
}

fn version_from_row(row: AnyRow) -> VersionRecord {
    VersionRecord {
        id: row.get("id"),
        file_id: row.get("chat_file_id"),
        seq: row.get("seq"),
        timestamp: row.get("timestamp"),
        content: row.get("content"),
    }
}

/// Adds a version after the file's latest.
pub(super) async fn insert(conn: &mut AnyConnection, file_id: &str, content: &str) -> StoreResult<VersionRecord> {
    let id = new_id();
    let timestamp = now_iso();
    // Numbered inside the insert; callers hold the chat's row lock (`lock_chat`), so
    // concurrent writers cannot share a number. The newest version is found by one index
    // seek (`MAX(seq)` would step through them all).
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO chat_file_versions (id, chat_file_id, seq, timestamp, content)
         VALUES ($1, $2, COALESCE((SELECT seq FROM chat_file_versions WHERE chat_file_id = $2 ORDER BY seq DESC LIMIT 1), 0) + 1,
                 $3, $4)
         RETURNING seq",
    )
    .bind(&id)
    .bind(file_id)
    .bind(&timestamp)
    .bind(content)
    .fetch_one(&mut *conn)
    .await?;
    Ok(VersionRecord {
        id,
        file_id: file_id.to_owned(),
        seq,
        timestamp,
        content: content.to_owned(),
    })
}

impl Store {
    /// All versions of all files of the chat, by file, oldest first.
    pub async fn chat_versions(&self, chat_id: &str) -> StoreResult<Vec<VersionRecord>> {
        let rows = sqlx::query(
            "SELECT v.id, v.chat_file_id, v.seq, v.timestamp, v.content FROM chat_file_versions v
             JOIN chat_files cf ON cf.id = v.chat_file_id WHERE cf.chat_id = $1 ORDER BY v.chat_file_id, v.seq",
        )
        .bind(chat_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(version_from_row).collect())
    }

    /// A version of a file of this chat. Versions of other chats are not found.
    pub async fn chat_version(&self, chat_id: &str, version_id: &str) -> StoreResult<VersionRecord> {
        let row = sqlx::query(
            "SELECT v.id, v.chat_file_id, v.seq, v.timestamp, v.content FROM chat_file_versions v
             JOIN chat_files cf ON cf.id = v.chat_file_id WHERE v.id = $1 AND cf.chat_id = $2",
        )
        .bind(version_id)
        .bind(chat_id)
        .fetch_optional(&self.pool)
        .await?;
        found(row.map(version_from_row), "Version")
    }

    /// The newest version of a file.
    pub async fn latest_version(&self, file_id: &str) -> StoreResult<VersionRecord> {
        let row = sqlx::query(
            "SELECT id, chat_file_id, seq, timestamp, content FROM chat_file_versions
             WHERE chat_file_id = $1 ORDER BY seq DESC LIMIT 1",
        )
        .bind(file_id)
        .fetch_optional(&self.pool)
        .await?;
        found(row.map(version_from_row), "Version")
    }

    /// Adds a version to a file of the chat and records the message `make_message` writes
    /// about it, in one transaction.
    pub async fn add_version(
        &self,
        chat_id: &str,
        file_id: &str,
        content: &str,
        make_message: impl FnOnce(&VersionRecord) -> MessageRecord + Send + 'static,
    ) -> StoreResult<(VersionRecord, MessageRecord)> {
        self.add_version_after(chat_id, file_id, None, content, make_message)
            .await
    }

    /// [`Store::add_version`], only while `base` (if given) is still the file's newest version,
    /// checked inside the same transaction: otherwise [`StoreError::Stale`] and nothing written.
    pub async fn add_version_after(
        &self,
        chat_id: &str,
        file_id: &str,
        base: Option<&str>,
        content: &str,
        make_message: impl FnOnce(&VersionRecord) -> MessageRecord + Send + 'static,
    ) -> StoreResult<(VersionRecord, MessageRecord)> {
        let (chat_id, file_id, content) = (chat_id.to_owned(), file_id.to_owned(), content.to_owned());
        let base = base.map(str::to_owned);
        let for_update = self.backend.for_update();
        self.write(move |conn| {
            Box::pin(async move {
                conversation::lock_chat(conn, &chat_id).await?;
                // The file's row is locked too: a concurrent delete waits, or is seen as gone here.
                let owned: Option<String> = sqlx::query_scalar(&format!(
                    "SELECT id FROM chat_files WHERE id = $1 AND chat_id = $2{for_update}"
                ))
                .bind(&file_id)
                .bind(&chat_id)
                .fetch_optional(&mut *conn)
                .await?;
                found(owned, "File")?;
                if let Some(base) = &base {
                    let newest: Option<String> = sqlx::query_scalar(
                        "SELECT id FROM chat_file_versions WHERE chat_file_id = $1 ORDER BY seq DESC LIMIT 1",
                    )
                    .bind(&file_id)
                    .fetch_optional(&mut *conn)
                    .await?;
                    if let Some(newest) = newest.filter(|newest| newest != base) {
                        return Err(StoreError::Stale(newest));
                    }
                }
                let version = insert(conn, &file_id, &content).await?;
                let message = conversation::append(conn, &chat_id, &make_message(&version)).await?;
                Ok((version, message))
            })
        })
        .await
    }

    /// Creates a `.based` chat file (no bytes on disk) with `content` as version 1, and records
    /// `message`, in one transaction.
    pub async fn create_based_file(
        &self,
        chat_id: &str,
        filename: &str,
        content: &str,
        message: &MessageRecord,
    ) -> StoreResult<(VersionRecord, MessageRecord)> {
        let file = NewChatFile {
            file: NewFile {
                id: new_id(),
                filename: filename.to_owned(),
                path: String::new(),
                // No bytes: its content counts as its versions.
                size: 0,
                db_bytes: None,
            },
            kind: FileKind::Based,
            extracted_text: None,
        };
        let (chat_id, content, message) = (chat_id.to_owned(), content.to_owned(), message.clone());
        self.write(move |conn| {
            Box::pin(async move {
                conversation::lock_chat(conn, &chat_id).await?;
                insert_chat_file(conn, &chat_id, &file).await?;
                let version = insert(conn, &file.file.id, &content).await?;
                let message = conversation::append(conn, &chat_id, &message).await?;
                Ok((version, message))
            })
        })
        .await
    }
}

//! Uploaded files: workspace files (`files`) and chat files (`chat_files`).
//!
//! A file uploaded to a chat is stored once and recorded twice, as a chat file and as a
//! workspace file with the same ID, so deleting it by that ID removes both.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::conversation::{self, MessageRecord};
use super::upload_bytes::{self, DbBytes};
use super::versions::{self, VersionRecord};
use super::{ChatRecord, Store, StoreResult, found, now_iso};

/// A workspace file to record; its bytes are already stored at `path`, or come along in
/// `db_bytes` to be stored in the database in the same transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFile {
    pub id: String,
    pub filename: String,
    pub path: String,
    /// The stored bytes' length (it counts toward the owner's storage quota).
    pub size: u64,
    pub db_bytes: Option<DbBytes>,
}

/// What a chat file holds, decided from its name and bytes at upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A `.based` file: its content lives in its versions.
    Based,
    /// Text the agent can read (plain text, code, PDF text).
    Text,
    Image,
    /// Kept and listed, but nothing could be read from it.
    Binary,
}

impl FileKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Based => "based",
            FileKind::Text => "text",
            FileKind::Image => "image",
            FileKind::Binary => "binary",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "based" => FileKind::Based,
            "text" => FileKind::Text,
            "image" => FileKind::Image,
            _ => FileKind::Binary,
        }
    }
}

/// A chat file to record. For `Based`, `extracted_text` becomes version 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChatFile {
    pub file: NewFile,
    pub kind: FileKind,
    pub extracted_text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatFileRecord {
    pub id: String,
    pub filename: String,
    pub path: String,
    pub kind: FileKind,
    pub extracted_text: Option<String>,
}

/// A file found by ID in either table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    pub id: String,
    pub filename: String,
    pub path: String,
    pub workspace_id: Option<String>,
    pub chat_id: Option<String>,
}

pub(super) async fn insert_workspace_file(
    conn: &mut AnyConnection,
    workspace_id: &str,
    file: &NewFile,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO files (id, filename, path, workspace_id, created_at, size) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&file.id)
    .bind(&file.filename)
    .bind(&file.path)
    .bind(workspace_id)
    .bind(now_iso())
    .bind(i64::try_from(file.size).unwrap_or(i64::MAX))
    .execute(&mut *conn)
    .await?;
    if let Some(bytes) = &file.db_bytes {
        upload_bytes::insert_chunks(conn, &file.id, &bytes.0).await?;
    }
    Ok(())
}

pub(super) async fn insert_chat_file(conn: &mut AnyConnection, chat_id: &str, file: &NewChatFile) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO chat_files (id, filename, path, chat_id, kind, extracted_text, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&file.file.id)
    .bind(&file.file.filename)
    .bind(&file.file.path)
    .bind(chat_id)
    .bind(file.kind.as_str())
    .bind(&file.extracted_text)
    .bind(now_iso())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn chat_file_from_row(row: AnyRow) -> ChatFileRecord {
    ChatFileRecord {
        id: row.get("id"),
        filename: row.get("filename"),
        path: row.get("path"),
        kind: FileKind::parse(row.get("kind")),
        extracted_text: row.get("extracted_text"),
    }
}

/// What recording a chat upload created besides the file rows.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatUpload {
    /// Version 1, for a `.based` file.
    pub version: Option<VersionRecord>,
    /// The conversation entry, when one was asked for.
    pub message: Option<MessageRecord>,
}

impl Store {
    pub async fn add_workspace_files(&self, workspace_id: &str, files: &[NewFile]) -> StoreResult<()> {
        let (workspace_id, files) = (workspace_id.to_owned(), files.to_vec());
        self.write(move |conn| {
            Box::pin(async move {
                for file in &files {
                    insert_workspace_file(conn, &workspace_id, file).await?;
                }
                Ok(())
            })
        })
        .await
    }

    /// Records uploads to a chat (and its workspace) with, optionally, the conversation entry
    /// that announces each, all in one transaction.
    pub async fn add_chat_files(
        &self,
        chat: &ChatRecord,
        uploads: &[(NewChatFile, Option<MessageRecord>)],
    ) -> StoreResult<Vec<ChatUpload>> {
        let (chat, uploads) = (chat.clone(), uploads.to_vec());
        self.write(move |conn| {
            Box::pin(async move {
                conversation::lock_chat(conn, &chat.id).await?;
                let mut results = Vec::with_capacity(uploads.len());
                for (file, message) in &uploads {
                    insert_workspace_file(conn, &chat.workspace_id, &file.file).await?;
                    insert_chat_file(conn, &chat.id, file).await?;
                    let version = match (file.kind, &file.extracted_text) {
                        (FileKind::Based, Some(text)) => Some(versions::insert(conn, &file.file.id, text).await?),
                        _ => None,
                    };
                    let message = match message {
                        Some(m) => Some(conversation::append(conn, &chat.id, m).await?),
                        None => None,
                    };
                    results.push(ChatUpload { version, message });
                }
                Ok(results)
            })
        })
        .await
    }

    /// A file by ID, from the workspace files or the chat files.
    pub async fn stored_file(&self, file_id: &str) -> StoreResult<StoredFile> {
        let row = sqlx::query(
            "SELECT id, filename, path, workspace_id, NULL AS chat_id FROM files WHERE id = $1
             UNION ALL
             SELECT cf.id, cf.filename, cf.path, c.workspace_id, cf.chat_id FROM chat_files cf
             JOIN chats c ON c.id = cf.chat_id WHERE cf.id = $1",
        )
        .bind(file_id)
        .fetch_all(&self.pool)
        .await?;
        let mut rows = row.into_iter();
        let first = found(rows.next(), "File")?;
        let chat_id = std::iter::once(&first)
            .chain(rows.as_slice())
            .find_map(|r| r.get("chat_id"));
        Ok(StoredFile {
            id: first.get("id"),
            filename: first.get("filename"),
            path: first.get("path"),
            workspace_id: first.get("workspace_id"),
            chat_id,
        })
    }

    /// Deletes the file from the workspace and from its chat.
    pub async fn delete_file(&self, file_id: &str) -> StoreResult<StoredFile> {
        let file = self.stored_file(file_id).await?;
        let file_id = file_id.to_owned();
        self.write(move |conn| Box::pin(async move { delete_rows(conn, &file_id).await }))
            .await?;
        Ok(file)
    }

    /// Deletes a file of this chat (and its workspace copy) and records `message` about it, in
    /// one transaction. `make_message` gets the deleted file's record.
    pub async fn delete_chat_file(
        &self,
        chat_id: &str,
        file_id: &str,
        make_message: impl FnOnce(&ChatFileRecord) -> MessageRecord + Send + 'static,
    ) -> StoreResult<(ChatFileRecord, MessageRecord)> {
        let (chat_id, file_id) = (chat_id.to_owned(), file_id.to_owned());
        self.write(move |conn| {
            Box::pin(async move {
                conversation::lock_chat(conn, &chat_id).await?;
                let row = sqlx::query(
                    "SELECT id, filename, path, kind, extracted_text FROM chat_files WHERE id = $1 AND chat_id = $2",
                )
                .bind(&file_id)
                .bind(&chat_id)
                .fetch_optional(&mut *conn)
                .await?;
                let file = chat_file_from_row(found(row, "File")?);
                delete_rows(conn, &file_id).await?;
                let message = conversation::append(conn, &chat_id, &make_message(&file)).await?;
                Ok((file, message))
            })
        })
        .await
    }

    /// Renames the file in both tables; `new_path` is where its bytes now are.
    pub async fn rename_file(&self, file_id: &str, new_filename: &str, new_path: &str) -> StoreResult<()> {
        let (id, filename, path) = (file_id.to_owned(), new_filename.to_owned(), new_path.to_owned());
        self.write(move |conn| {
            Box::pin(async move {
                let mut updated = 0;
                for table in ["files", "chat_files"] {
                    updated += sqlx::query(&format!("UPDATE {table} SET filename = $1, path = $2 WHERE id = $3"))
                        .bind(&filename)
                        .bind(&path)
                        .bind(&id)
                        .execute(&mut *conn)
                        .await?
                        .rows_affected();
                }
                found((updated > 0).then_some(()), "File")
            })
        })
        .await
    }

    /// The chat's files, oldest first.
    pub async fn chat_files(&self, chat_id: &str) -> StoreResult<Vec<ChatFileRecord>> {
        let rows = sqlx::query(
            "SELECT id, filename, path, kind, extracted_text FROM chat_files WHERE chat_id = $1 ORDER BY created_at, id",
        )
        .bind(chat_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(chat_file_from_row).collect())
    }

    /// The workspace's files as `(id, filename)`, oldest first.
    pub async fn workspace_files(&self, workspace_id: &str) -> StoreResult<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT id, filename FROM files WHERE workspace_id = $1 ORDER BY created_at, id")
            .bind(workspace_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|r| (r.get("id"), r.get("filename"))).collect())
    }
}

async fn delete_rows(conn: &mut AnyConnection, file_id: &str) -> StoreResult<()> {
    for table in ["chat_files", "files"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE id = $1"))
            .bind(file_id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

//! Uploaded files: workspace files (`files`) and chat files (`chat_files`).
//!
//! A file uploaded to a chat is stored once and recorded twice, as a chat file and as a
//! workspace file with the same ID, so deleting it by that ID removes both.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::conversation::{self, MessageRecord};
use super::versions::{self, VersionRecord};
use super::{ChatRecord, Store, StoreResult, Tx, found, now_iso};

/// A workspace file to record; its bytes are already stored at `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFile {
    pub id: String,
    pub filename: String,
    pub path: String,
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

pub(super) async fn insert_workspace_file(tx: &mut Tx, workspace_id: &str, file: &NewFile) -> StoreResult<()> {
    sqlx::query("INSERT INTO files (id, filename, path, workspace_id, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&file.id)
        .bind(&file.filename)
        .bind(&file.path)
        .bind(workspace_id)
        .bind(now_iso())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub(super) async fn insert_chat_file(tx: &mut Tx, chat_id: &str, file: &NewChatFile) -> StoreResult<()> {
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
    .execute(&mut **tx)
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
        let mut tx = self.begin().await?;
        for file in files {
            insert_workspace_file(&mut tx, workspace_id, file).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records uploads to a chat (and its workspace) with, optionally, the conversation entry
    /// that announces each, all in one transaction.
    pub async fn add_chat_files(
        &self,
        chat: &ChatRecord,
        uploads: &[(NewChatFile, Option<MessageRecord>)],
    ) -> StoreResult<Vec<ChatUpload>> {
        let _hold = self.hold_chat(&chat.id).await?;
        let mut tx = self.begin().await?;
        conversation::lock_chat(&mut tx, &chat.id).await?;
        let mut results = Vec::with_capacity(uploads.len());
        for (file, message) in uploads {
            insert_workspace_file(&mut tx, &chat.workspace_id, &file.file).await?;
            insert_chat_file(&mut tx, &chat.id, file).await?;
            let version = match (file.kind, &file.extracted_text) {
                (FileKind::Based, Some(text)) => Some(versions::insert(&mut tx, &file.file.id, text).await?),
                _ => None,
            };
            let message = match message {
                Some(m) => Some(conversation::append(&mut tx, &chat.id, m).await?),
                None => None,
            };
            results.push(ChatUpload { version, message });
        }
        tx.commit().await?;
        Ok(results)
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
        let mut tx = self.begin().await?;
        delete_rows(&mut tx, file_id).await?;
        tx.commit().await?;
        Ok(file)
    }

    /// Deletes a file of this chat (and its workspace copy) and records `message` about it, in
    /// one transaction. `make_message` gets the deleted file's record.
    pub async fn delete_chat_file(
        &self,
        chat_id: &str,
        file_id: &str,
        make_message: impl FnOnce(&ChatFileRecord) -> MessageRecord,
    ) -> StoreResult<(ChatFileRecord, MessageRecord)> {
        let _hold = self.hold_chat(chat_id).await?;
        let mut tx = self.begin().await?;
        conversation::lock_chat(&mut tx, chat_id).await?;
        let row = sqlx::query(
            "SELECT id, filename, path, kind, extracted_text FROM chat_files WHERE id = $1 AND chat_id = $2",
        )
        .bind(file_id)
        .bind(chat_id)
        .fetch_optional(&mut *tx)
        .await?;
        let file = chat_file_from_row(found(row, "File")?);
        delete_rows(&mut tx, file_id).await?;
        let message = conversation::append(&mut tx, chat_id, &make_message(&file)).await?;
        tx.commit().await?;
        Ok((file, message))
    }

    /// Renames the file in both tables; `new_path` is where its bytes now are.
    pub async fn rename_file(&self, file_id: &str, new_filename: &str, new_path: &str) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let mut updated = 0;
        for table in ["files", "chat_files"] {
            updated += sqlx::query(&format!("UPDATE {table} SET filename = $1, path = $2 WHERE id = $3"))
                .bind(new_filename)
                .bind(new_path)
                .bind(file_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        found((updated > 0).then_some(()), "File")?;
        tx.commit().await?;
        Ok(())
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

async fn delete_rows(tx: &mut Tx, file_id: &str) -> StoreResult<()> {
    for table in ["chat_files", "files"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE id = $1"))
            .bind(file_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

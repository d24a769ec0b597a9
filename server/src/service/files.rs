//! Uploads, deletes and renames of files, whichever transport asked.

use bytes::Bytes;
use kafka_protocol::ws::{ChatEvent, DeletedContent, UploadedContent};
use serde_json::json;

use super::events::{file_added, message_added};
use super::{Done, ServiceError};
use crate::files::sanitize_filename;
use crate::state::AppState;
use crate::store::{ChatFileRecord, ChatRecord, MessageRecord, NewChatFile, NewFile, StoredFile, VersionRecord};

/// An upload recorded in a chat.
pub struct ChatUpload {
    pub file: NewChatFile,
    /// Version 1, for a `.based` file.
    pub version: Option<VersionRecord>,
    /// The conversation entry that announces it, when one was asked for.
    pub message: Option<MessageRecord>,
}

impl ChatUpload {
    /// What the conversation entry (and the WebSocket's answer) says of the upload.
    pub fn content(&self) -> UploadedContent {
        uploaded_content(&self.file.file)
    }
}

fn uploaded_content(file: &NewFile) -> UploadedContent {
    UploadedContent {
        file_id: file.id.clone(),
        filename: file.filename.clone(),
        path: file.path.clone(),
    }
}

/// The bytes of uploads together: what they add to the owner's storage.
fn total_bytes(uploads: &[(String, Bytes)]) -> u64 {
    uploads.iter().map(|(_, bytes)| bytes.len() as u64).sum()
}

/// Uploads `(client name, bytes)` to a chat (and its workspace), each announced by a
/// conversation entry when `announce`. All or nothing: on any failure no row and no byte stays.
pub async fn upload_to_chat(
    state: &AppState,
    chat: &ChatRecord,
    uploads: Vec<(String, Bytes)>,
    announce: bool,
) -> Result<Done<Vec<ChatUpload>>, ServiceError> {
    state
        .quota
        .admit(&state.store, &chat.user_id, total_bytes(&uploads))
        .await?;
    let saved = state.uploads.save_all(uploads, state.settings.max_upload_bytes).await?;
    let paths: Vec<String> = saved.iter().map(|s| s.file.path.clone()).collect();
    let files: Vec<(NewChatFile, Option<MessageRecord>)> = saved
        .into_iter()
        .map(|saved| {
            let message = announce.then(|| MessageRecord::file("user", json!(uploaded_content(&saved.file))));
            (saved.into_chat_file(), message)
        })
        .collect();
    let recorded = match state.store.add_chat_files(chat, &files).await {
        Ok(recorded) => recorded,
        Err(error) => {
            state.uploads.remove_all(&paths).await;
            return Err(error.into());
        }
    };
    let mut events = Vec::new();
    let uploads: Vec<ChatUpload> = files
        .into_iter()
        .zip(recorded)
        .map(|((file, _), recorded)| {
            events.push(file_added(&file, recorded.version.as_ref()));
            events.extend(recorded.message.as_ref().map(message_added));
            ChatUpload {
                file,
                version: recorded.version,
                message: recorded.message,
            }
        })
        .collect();
    Ok(Done::new(uploads, &chat.id, events))
}

/// Uploads to a workspace of `owner`; returns the recorded files. All or nothing.
pub async fn upload_to_workspace(
    state: &AppState,
    owner: &str,
    workspace_id: &str,
    uploads: Vec<(String, Bytes)>,
) -> Result<Vec<NewFile>, ServiceError> {
    state.quota.admit(&state.store, owner, total_bytes(&uploads)).await?;
    let saved = state.uploads.save_all(uploads, state.settings.max_upload_bytes).await?;
    let files: Vec<NewFile> = saved.into_iter().map(|s| s.file).collect();
    if let Err(error) = state.store.add_workspace_files(workspace_id, &files).await {
        state
            .uploads
            .remove_all(&files.iter().map(|f| f.path.clone()).collect::<Vec<_>>())
            .await;
        return Err(error.into());
    }
    Ok(files)
}

/// Stores the bytes of a new workspace's files (nothing recorded yet); the caller records them
/// with the workspace, or discards them.
pub async fn store_new_workspace_files(
    state: &AppState,
    owner: &str,
    uploads: Vec<(String, Bytes)>,
) -> Result<Vec<NewFile>, ServiceError> {
    state.quota.admit(&state.store, owner, total_bytes(&uploads)).await?;
    let saved = state.uploads.save_all(uploads, state.settings.max_upload_bytes).await?;
    Ok(saved.into_iter().map(|s| s.file).collect())
}

/// A chat file deleted, with the system entry that says so.
pub struct DeletedChatFile {
    pub file: ChatFileRecord,
    pub message: MessageRecord,
}

/// Deletes a file of `chat_id`: its rows, its bytes, and a system entry that says so.
pub async fn delete_chat_file(
    state: &AppState,
    chat_id: &str,
    file_id: &str,
) -> Result<Done<DeletedChatFile>, ServiceError> {
    let (file, message) = state
        .store
        .delete_chat_file(chat_id, file_id, |file| {
            MessageRecord::file(
                "system",
                json!(DeletedContent {
                    deleted_file_id: file.id.clone(),
                    filename: file.filename.clone()
                }),
            )
        })
        .await?;
    if !file.path.is_empty() {
        state.uploads.discard(&file.path).await;
    }
    let events = vec![
        ChatEvent::FileDeleted {
            file_id: file.id.clone(),
            filename: file.filename.clone(),
        },
        message_added(&message),
    ];
    Ok(Done::new(DeletedChatFile { file, message }, chat_id, events))
}

/// Deletes a file by ID: a chat's file as [`delete_chat_file`] does, a workspace-only file
/// with its bytes. Ownership is the caller's to check.
pub async fn delete_file(state: &AppState, file_id: &str) -> Result<Option<Done<DeletedChatFile>>, ServiceError> {
    let file = state.store.stored_file(file_id).await?;
    if let Some(chat_id) = &file.chat_id {
        return delete_chat_file(state, chat_id, file_id).await.map(Some);
    }
    let file = state.store.delete_file(file_id).await?;
    if !file.path.is_empty() {
        state.uploads.discard(&file.path).await;
    }
    Ok(None)
}

/// Renames a file (its stored bytes too); returns it as it now is. `new_name` is sanitized.
/// Ownership is the caller's to check.
pub async fn rename_file(state: &AppState, file_id: &str, new_name: &str) -> Result<StoredFile, ServiceError> {
    let new_name = sanitize_filename(new_name).map_err(ServiceError::Invalid)?;
    let file = state.store.stored_file(file_id).await?;
    // Generated `.based` files have no stored bytes; only their name changes.
    let new_path = if file.path.is_empty() {
        String::new()
    } else {
        state
            .uploads
            .rename(&file.path, &file.id, &new_name)
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?
    };
    if let Err(error) = state.store.rename_file(&file.id, &new_name, &new_path).await {
        // Put the bytes back where the unchanged row says they are.
        if !file.path.is_empty()
            && let Err(undo) = state.uploads.rename(&new_path, &file.id, &file.filename).await
        {
            tracing::error!(file_id = %file.id, %undo, "could not move renamed bytes back");
        }
        return Err(error.into());
    }
    Ok(StoredFile {
        filename: new_name,
        path: new_path,
        ..file
    })
}

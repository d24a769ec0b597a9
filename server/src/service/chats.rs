//! Chats: create, rename, delete.

use kafka_protocol::ws::ChatEvent;

use super::{Done, ServiceError};
use crate::state::AppState;
use crate::store::{ChatRecord, StoreError};

/// A new chat of `user_id` in their workspace (another user's workspace looks missing).
pub async fn new_chat(
    state: &AppState,
    user_id: &str,
    workspace_id: &str,
    name: &str,
) -> Result<ChatRecord, ServiceError> {
    if state.store.workspace_owner(workspace_id).await? != user_id {
        return Err(StoreError::NotFound("Workspace").into());
    }
    Ok(state.store.create_chat(user_id, workspace_id, name).await?)
}

/// Renames a chat; its live clients hear of it. Ownership is the caller's to check.
pub async fn rename_chat(state: &AppState, chat_id: &str, new_name: &str) -> Result<Done<ChatRecord>, ServiceError> {
    let chat = state.store.rename_chat(chat_id, new_name).await?;
    let renamed = ChatEvent::ChatRenamed {
        name: chat.name.clone(),
    };
    let id = chat.id.clone();
    Ok(Done::new(chat, &id, vec![renamed]))
}

/// Deletes a chat with everything in it, the bytes of its own files, and closes its sockets.
/// Ownership is the caller's to check.
pub async fn delete_chat(state: &AppState, chat_id: &str) -> Result<(), ServiceError> {
    let paths = state.store.delete_chat(chat_id).await?;
    state.uploads.remove_all(&paths).await;
    state.hub.chat_deleted(chat_id);
    Ok(())
}

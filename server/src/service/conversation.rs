//! Conversation entries that are only entries: chat text and its echo, the agent's answers
//! and failure notes.

use super::events::message_added;
use super::{Done, ServiceError};
use crate::state::AppState;
use crate::store::MessageRecord;

/// Appends `messages` to the chat, in order, numbered after its last entry.
pub async fn append(
    state: &AppState,
    chat_id: &str,
    messages: &[MessageRecord],
) -> Result<Done<Vec<MessageRecord>>, ServiceError> {
    let saved = state.store.append_messages(chat_id, messages).await?;
    let events = saved.iter().map(message_added).collect();
    Ok(Done::new(saved, chat_id, events))
}

/// The user's chat text and the server's echo of it, within the owner's storage quota.
pub async fn echo(
    state: &AppState,
    user_id: &str,
    chat_id: &str,
    text: &str,
) -> Result<Done<Vec<MessageRecord>>, ServiceError> {
    // The text is stored twice: as the user's entry and inside the echo.
    state.quota.admit(&state.store, user_id, 2 * text.len() as u64).await?;
    let messages = [
        MessageRecord::text("user", text),
        MessageRecord::text("assistant", &format!("Echo: {text}")),
    ];
    append(state, chat_id, &messages).await
}

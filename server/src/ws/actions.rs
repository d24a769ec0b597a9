//! One handler per client action: it decodes the frame, calls the change's service (see
//! `service`), answers in the session's protocol, then publishes the service's events. Reads
//! (`get_diff`, `get_messages`) are answered here.

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use kafka_protocol::ws::{
    ClientAction, ConversationMessage, DeleteFile, DeletedContent, DeletedMessage, ErrorFrame, GetDiff, GetMessages,
    Hello, Message, MessagesPage, PROTOCOL_V2, RevertVersion, SaveVersion, SeqMessage, ServerAction, Structured,
    UploadFile, VersionDiff,
};
use serde_json::Value;

use super::{Session, opt_in};
use crate::service::{self, ServiceError};
use crate::store::StoreError;

/// Standard base64, with or without padding (browsers and scripts differ).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Dispatches one text frame.
pub async fn handle(session: &Session, text: &str) {
    if let Err(error) = crate::json::check_depth(text.as_bytes()) {
        return session.send_error(error).await;
    }
    let Some(value) = serde_json::from_str::<Value>(text)
        .ok()
        .filter(|v| v.get("action").is_some())
    else {
        // Plain text, broken JSON, or JSON without an action: chat text, echoed.
        return echo(session, text).await;
    };
    let Some(name) = value["action"].as_str().map(str::to_owned) else {
        return session.send_error("The action field must be a string.").await;
    };
    if !ClientAction::NAMES.contains(&name.as_str()) {
        return session.send_error(format!("Unknown action: {name}")).await;
    }
    let action: ClientAction = match serde_json::from_value(value) {
        Ok(action) => action,
        Err(error) => return session.send_error(format!("Invalid {name} message: {error}.")).await,
    };
    match action {
        ClientAction::UploadFile(upload) => upload_file(session, upload).await,
        ClientAction::NewMessage(message) => super::agent_run::new_message(session, message).await,
        ClientAction::RevertVersion(revert) => revert_version(session, revert).await,
        ClientAction::DeleteFile(delete) => delete_file(session, delete).await,
        ClientAction::Hello(hello) => say_hello(session, hello).await,
        ClientAction::Cancel => cancel(session).await,
        ClientAction::GetDiff(request) => get_diff(session, request).await,
        ClientAction::GetMessages(request) => get_messages(session, request).await,
        ClientAction::SaveVersion(request) => save_version(session, request).await,
    }
}

/// Reports a storage failure: missing things by name, anything else generically (logged).
pub(super) async fn store_error(session: &Session, error: StoreError) {
    match error {
        StoreError::NotFound(_) => session.send_error(error.to_string()).await,
        other => internal_error(session, other).await,
    }
}

/// Reports a refused or failed change: its reason, or a generic word for our own failures.
pub(super) async fn service_error(session: &Session, error: ServiceError) {
    match error {
        ServiceError::Store(error) => store_error(session, error).await,
        ServiceError::Conflict { message, conflict } => {
            let frame = ErrorFrame {
                error: message,
                conflict: Some(conflict),
            };
            session.send_json(&frame).await
        }
        ServiceError::Internal(error) => internal_error(session, error).await,
        refused => session.send_error(refused.to_string()).await,
    }
}

pub(super) async fn internal_error(session: &Session, error: impl std::fmt::Display) {
    tracing::error!(chat_id = %session.chat_id, %error, "websocket action failed");
    session.send_error("Internal error; nothing was changed.").await;
}

async fn echo(session: &Session, text: &str) {
    if let Err(too_long) = session.check_message_size("A chat message", text) {
        return session.send_error(too_long).await;
    }
    match service::conversation::echo(&session.state, &session.user_id, &session.chat_id, text).await {
        Ok(done) => {
            session.send_text(format!("Echo: {text}")).await;
            done.publish(&session.state.hub);
        }
        Err(error) => service_error(session, error).await,
    }
}

/// Strips an optional `data:<mime>;base64,` prefix, then decodes.
fn decode_base64(data: &str) -> Result<Vec<u8>, String> {
    let data = match data.split_once(";base64,") {
        Some((prefix, rest)) if prefix.starts_with("data:") => rest,
        _ => data,
    };
    let compact: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    BASE64
        .decode(compact)
        .map_err(|e| format!("file_data is not valid base64: {e}."))
}

async fn upload_file(session: &Session, upload: UploadFile) {
    let state = &session.state;
    let bytes = match decode_base64(&upload.file_data) {
        Ok(bytes) => bytes,
        Err(error) => return session.send_error(error).await,
    };
    let chat = match state.store.chat(&session.chat_id).await {
        Ok(chat) => chat,
        Err(error) => return store_error(session, error).await,
    };
    let done = match service::files::upload_to_chat(state, &chat, vec![(upload.filename, bytes.into())], true).await {
        Ok(done) => done,
        Err(error) => return service_error(session, error).await,
    };
    let content = Structured::Object(done.value[0].content());
    let reply = ServerAction::FileUploaded {
        message: Message {
            role: "user".into(),
            kind: "file".into(),
            content: match session.is_legacy() {
                true => content.into_text(),
                false => content,
            },
        },
    };
    session.send_json(&reply).await;
    done.publish(&state.hub);
}

async fn revert_version(session: &Session, revert: RevertVersion) {
    let state = &session.state;
    let reverted = service::edits::revert(
        state,
        &session.user_id,
        &session.chat_id,
        &revert.version_id,
        &revert.filename,
    )
    .await;
    match reverted {
        Ok(done) => {
            let reply = ServerAction::RevertComplete {
                message: Message {
                    role: "assistant".into(),
                    kind: "file".into(),
                    content: done.value.content.clone(),
                },
            };
            session.send_json(&reply).await;
            done.publish(&state.hub);
        }
        Err(error) => service_error(session, error).await,
    }
}

async fn delete_file(session: &Session, delete: DeleteFile) {
    let state = &session.state;
    match service::files::delete_chat_file(state, &session.chat_id, &delete.file_id).await {
        Ok(done) => {
            let file = &done.value.file;
            let reply = ServerAction::FileDeleted {
                message: DeletedMessage {
                    role: "system".into(),
                    kind: "file".into(),
                    content: match session.is_legacy() {
                        true => Structured::Text(DeletedContent::note(&file.filename)),
                        false => Structured::Object(DeletedContent {
                            deleted_file_id: file.id.clone(),
                            filename: file.filename.clone(),
                        }),
                    },
                    deleted_file_id: file.id.clone(),
                },
            };
            session.send_json(&reply).await;
            done.publish(&state.hub);
        }
        Err(error) => service_error(session, error).await,
    }
}

async fn say_hello(session: &Session, hello: Hello) {
    match hello.version {
        PROTOCOL_V2 => opt_in(session),
        1 => {}
        other => {
            session
                .send_error(format!(
                    "Unsupported protocol version {other}; this server speaks 1 and 2."
                ))
                .await
        }
    }
}

async fn get_diff(session: &Session, request: GetDiff) {
    let store = &session.state.store;
    let from = match store.chat_version(&session.chat_id, &request.from_version_id).await {
        Ok(version) => version,
        Err(error) => return store_error(session, error).await,
    };
    let to = match &request.to_version_id {
        Some(id) => store.chat_version(&session.chat_id, id).await,
        None => store.latest_version(&from.file_id).await,
    };
    let to = match to {
        Ok(version) if version.file_id == from.file_id => version,
        Ok(_) => return session.send_error("The two versions belong to different files.").await,
        Err(error) => return store_error(session, error).await,
    };
    if from.file_id != request.file_id {
        return session
            .send_error(format!(
                "Version {} is not a version of file {}.",
                from.id, request.file_id
            ))
            .await;
    }
    let name = store
        .chat_files(&session.chat_id)
        .await
        .ok()
        .and_then(|files| files.into_iter().find(|f| f.id == from.file_id).map(|f| f.filename));
    let name = name.unwrap_or_default();
    let reply = ServerAction::Diff(VersionDiff {
        file_id: from.file_id.clone(),
        diff: crate::diff::make_patch(&from.content, &to.content, &name, &name),
        from_version_id: from.id,
        to_version_id: to.id,
    });
    session.send_json(&reply).await;
}

/// Entries per `get_messages` page when the client names no limit, and at most.
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;

async fn get_messages(session: &Session, request: GetMessages) {
    let limit = request.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    // One more than asked tells whether older entries remain.
    let page = session
        .state
        .store
        .conversation_page(&session.chat_id, request.before_seq, limit + 1)
        .await;
    let mut entries = match page {
        Ok(entries) => entries,
        Err(error) => return store_error(session, error).await,
    };
    let has_more = entries.len() > limit as usize;
    if has_more {
        entries.remove(0);
    }
    let messages = entries
        .into_iter()
        .map(|m| SeqMessage {
            seq: m.seq,
            message: ConversationMessage {
                role: m.role,
                kind: m.kind,
                content: serde_json::from_str(&m.content_json).unwrap_or(Value::String(m.content_json)),
            },
        })
        .collect();
    session
        .send_json(&ServerAction::Messages(MessagesPage { messages, has_more }))
        .await;
}

/// The user's own version of a `.based` file of this chat.
async fn save_version(session: &Session, request: SaveVersion) {
    let state = &session.state;
    match service::edits::save(state, &session.user_id, &session.chat_id, request).await {
        Ok(done) => {
            session.send_json(&ServerAction::VersionSaved(done.value.clone())).await;
            done.publish(&state.hub);
        }
        Err(error) => service_error(session, error).await,
    }
}

async fn cancel(session: &Session) {
    match session.state.hub.cancel_agent_run(&session.chat_id).await {
        Ok(true) => {}
        Ok(false) => session.send_error("No agent task is running in this chat.").await,
        Err(error) => store_error(session, error).await,
    }
}

#[cfg(test)]
mod tests {
    use super::decode_base64;

    #[test]
    fn base64_with_or_without_padding_and_data_urls() {
        assert_eq!(decode_base64("aGk=").unwrap(), b"hi");
        assert_eq!(decode_base64("aGk").unwrap(), b"hi");
        assert_eq!(decode_base64("data:text/plain;base64,aGk=").unwrap(), b"hi");
        assert_eq!(decode_base64("aG\nk=").unwrap(), b"hi");
        assert!(decode_base64("***").is_err());
    }
}

//! The initial payload and the shapes of files and versions in frames and events.

use std::collections::HashMap;

use kafka_protocol::ws::{
    BasedFile, ChatEvent, ConversationMessage, InitialPayload, TextFile, VersionInfo, WorkspaceFile,
};

use crate::diff::make_patch;
use crate::store::{
    ChatFileRecord, ChatRecord, FileKind, MessageRecord, NewChatFile, Store, StoreResult, VersionRecord,
};

pub fn conversation_message(message: &MessageRecord) -> ConversationMessage {
    ConversationMessage {
        role: message.role.clone(),
        kind: message.kind.clone(),
        content: message.content.clone(),
    }
}

pub fn message_added(message: &MessageRecord) -> ChatEvent {
    ChatEvent::MessageAdded {
        seq: message.seq,
        message: conversation_message(message),
    }
}

/// A context file as clients see it: images carry their stored path as content.
fn text_file(id: &str, filename: &str, path: &str, kind: FileKind, text: Option<&str>) -> TextFile {
    let (kind, content) = match kind {
        FileKind::Image => ("image", path.to_owned()),
        _ => ("text", text.unwrap_or_default().to_owned()),
    };
    TextFile {
        file_id: id.to_owned(),
        name: filename.to_owned(),
        content,
        kind: kind.to_owned(),
    }
}

/// A `.based` file with its versions (oldest first); each version's diff leads to the latest.
pub fn based_file(id: &str, filename: &str, versions: &[&VersionRecord]) -> BasedFile {
    let latest = versions.last().map(|v| v.content.as_str()).unwrap_or_default();
    let versions = versions
        .iter()
        .map(|v| VersionInfo {
            version_id: v.id.clone(),
            timestamp: v.timestamp.clone(),
            diff: make_patch(&v.content, latest, filename, filename),
        })
        .collect();
    BasedFile {
        file_id: id.to_owned(),
        name: filename.to_owned(),
        latest_content: latest.to_owned(),
        versions,
        kind: "based".to_owned(),
    }
}

/// The event announcing a file just added to a chat.
pub fn file_added(file: &NewChatFile, version: Option<&VersionRecord>) -> ChatEvent {
    let f = &file.file;
    match (file.kind, version) {
        (FileKind::Based, Some(version)) => ChatEvent::BasedFileAdded {
            file: based_file(&f.id, &f.filename, &[version]),
        },
        (kind, _) => ChatEvent::TextFileAdded {
            file: text_file(&f.id, &f.filename, &f.path, kind, file.extracted_text.as_deref()),
        },
    }
}

pub fn version_added(filename: &str, version: &VersionRecord) -> ChatEvent {
    ChatEvent::VersionAdded {
        file_id: version.file_id.clone(),
        filename: filename.to_owned(),
        version_id: version.id.clone(),
        timestamp: version.timestamp.clone(),
        content: version.content.clone(),
    }
}

/// Everything a client needs on connect.
pub async fn initial_payload(store: &Store, chat: &ChatRecord) -> StoreResult<InitialPayload> {
    let conversation = store.conversation(&chat.id).await?;
    let files = store.chat_files(&chat.id).await?;
    let versions = store.chat_versions(&chat.id).await?;
    let workspace_files = store.workspace_files(&chat.workspace_id).await?;
    let models = store.models_of(&chat.user_id).await?;

    let mut versions_by_file: HashMap<&str, Vec<&VersionRecord>> = HashMap::new();
    for version in &versions {
        versions_by_file
            .entry(version.file_id.as_str())
            .or_default()
            .push(version);
    }
    let (based, text): (Vec<&ChatFileRecord>, Vec<&ChatFileRecord>) =
        files.iter().partition(|f| f.kind == FileKind::Based);
    Ok(InitialPayload {
        chat_id: chat.id.clone(),
        chat_name: chat.name.clone(),
        conversation: conversation.iter().map(conversation_message).collect(),
        chat_files_text: text
            .iter()
            .map(|f| text_file(&f.id, &f.filename, &f.path, f.kind, f.extracted_text.as_deref()))
            .collect(),
        chat_files_based: based
            .iter()
            .map(|f| {
                based_file(
                    &f.id,
                    &f.filename,
                    versions_by_file
                        .get(f.id.as_str())
                        .map(Vec::as_slice)
                        .unwrap_or_default(),
                )
            })
            .collect(),
        workspace_files: workspace_files
            .into_iter()
            .map(|(file_id, name)| WorkspaceFile { file_id, name })
            .collect(),
        workspace_id: chat.workspace_id.clone(),
        models: models.into_iter().map(|m| m.name).collect(),
        initial: true,
    })
}

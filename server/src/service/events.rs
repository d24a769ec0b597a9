//! The events a change sends to its chat's live clients, and the shapes of files and versions
//! they carry (also used by the initial payload).

use kafka_protocol::ws::{BasedFile, ChatEvent, ConversationMessage, TextFile, VersionInfo};

use crate::diff::make_patch;
use crate::store::{FileKind, MessageRecord, NewChatFile, VersionRecord};

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
pub fn text_file(id: &str, filename: &str, path: &str, kind: FileKind, text: Option<&str>) -> TextFile {
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

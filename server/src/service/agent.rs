//! What an agent run leaves in its chat: a new `.based` file or a new version of one, each with
//! the assistant's entry (answers and failures are plain entries, see `conversation`).

use kafka_protocol::ws::{BasedFileContent, ChatEvent};
use serde_json::json;

use super::events::{based_file, message_added, version_added};
use super::{Done, ServiceError};
use crate::state::AppState;
use crate::store::{ChatFileRecord, FileKind, MessageRecord};

/// A file the agent wrote: its ID, what the entry says, and the entry.
pub struct SavedFile {
    pub file_id: String,
    pub content: BasedFileContent,
    pub message: MessageRecord,
}

fn entry(filename: &str, content: &str) -> (BasedFileContent, MessageRecord) {
    let body = BasedFileContent {
        based_filename: filename.to_owned(),
        based_content: content.to_owned(),
        message: None,
    };
    let message = MessageRecord::file("assistant", json!(body));
    (body, message)
}

/// Saves a new `.based` file (renamed `name-2.based` and so on if the name is taken) as
/// version 1, with the assistant's entry.
pub async fn save_new_file(
    state: &AppState,
    chat_id: &str,
    filename: &str,
    content: &str,
) -> Result<Done<SavedFile>, ServiceError> {
    let files = state.store.chat_files(chat_id).await?;
    let filename = unique_name(filename, &files);
    let (body, message) = entry(&filename, content);
    let (version, message) = state
        .store
        .create_based_file(chat_id, &filename, content, &message)
        .await?;
    let events = vec![
        ChatEvent::BasedFileAdded {
            file: based_file(&version.file_id, &filename, &[&version]),
        },
        message_added(&message),
    ];
    let saved = SavedFile {
        file_id: version.file_id,
        content: body,
        message,
    };
    Ok(Done::new(saved, chat_id, events))
}

/// Saves `content` as the newest version of the chat's `.based` file `filename`, with the
/// assistant's entry; a file deleted while the agent worked comes back as a new file.
pub async fn save_edit(
    state: &AppState,
    chat_id: &str,
    filename: &str,
    content: &str,
) -> Result<Done<SavedFile>, ServiceError> {
    let files = state.store.chat_files(chat_id).await?;
    let Some(file) = files
        .iter()
        .find(|f| f.kind == FileKind::Based && f.filename == filename)
    else {
        return save_new_file(state, chat_id, filename, content).await;
    };
    let (body, message) = entry(filename, content);
    let (version, message) = state.store.add_version(chat_id, &file.id, content, |_| message).await?;
    let events = vec![version_added(filename, &version), message_added(&message)];
    let saved = SavedFile {
        file_id: file.id.clone(),
        content: body,
        message,
    };
    Ok(Done::new(saved, chat_id, events))
}

/// `name`, or `name-2`, `name-3`… (before the extension) when a file of the chat has it.
/// `name`, or `stem-2.ext`, `stem-3.ext`, … when the chat already has a file by that name.
fn unique_name(name: &str, files: &[ChatFileRecord]) -> String {
    let taken = |candidate: &str| files.iter().any(|f| f.filename == candidate);
    if !taken(name) {
        return name.to_owned();
    }
    let (stem, extension) = name.rsplit_once('.').map_or((name, ""), |(s, e)| (s, e));
    (2..)
        .map(|n| {
            if extension.is_empty() {
                format!("{stem}-{n}")
            } else {
                format!("{stem}-{n}.{extension}")
            }
        })
        .find(|candidate| !taken(candidate))
        .unwrap_or_else(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str) -> ChatFileRecord {
        ChatFileRecord {
            id: name.into(),
            filename: name.into(),
            path: String::new(),
            kind: FileKind::Based,
            extracted_text: None,
        }
    }

    #[test]
    fn unique_names_get_a_number() {
        assert_eq!(unique_name("a.based", &[]), "a.based");
        assert_eq!(unique_name("a.based", &[file("a.based")]), "a-2.based");
        assert_eq!(
            unique_name("a.based", &[file("a.based"), file("a-2.based")]),
            "a-3.based"
        );
        assert_eq!(unique_name("a", &[file("a")]), "a-2");
    }
}

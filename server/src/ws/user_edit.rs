//! The user's own version of a `.based` file (`save_version` on the socket,
//! `POST /file/{file_id}/versions` over REST): validated, saved as the latest version with a
//! conversation entry by the user, and published like a revert.

use kafka_protocol::ws::{ChatEvent, SaveConflict, SaveVersion, VersionSaved};
use serde_json::json;

use super::payload::{message_added, version_added};
use crate::based;
use crate::http::based::{MAX_CODE_BYTES, diagnostic_info};
use crate::state::SharedState;
use crate::store::{FileKind, MessageRecord, StoreError};

/// Why a save was refused; nothing was saved.
#[derive(Debug)]
pub enum SaveError {
    /// The file is not one of this chat's (another user's, another chat's, or gone).
    Store(StoreError),
    /// The file is not a `.based` file (it has no versions).
    NotBased(String),
    TooLarge(String),
    /// `base_version_id` is no longer the file's latest version.
    Conflict {
        message: String,
        conflict: SaveConflict,
    },
    Internal(String),
}

impl From<StoreError> for SaveError {
    fn from(error: StoreError) -> Self {
        SaveError::Store(error)
    }
}

/// A save carried out: the answer, and the events to publish once it is sent.
pub struct Saved {
    pub answer: VersionSaved,
    pub events: Vec<ChatEvent>,
}

impl Saved {
    pub fn publish(self, state: &SharedState, chat_id: &str) {
        for event in self.events {
            state.hub.publish(chat_id, event);
        }
    }
}

/// Saves `request.content` as the newest version of a `.based` file of `chat_id`.
///
/// The conflict check reads the latest version before the save's own transaction; a version
/// committed in the microseconds between the two is not detected (an editor's session lasts
/// seconds to minutes, so this narrows the window to nearly nothing, not to nothing).
pub async fn save(state: &SharedState, chat_id: &str, request: SaveVersion) -> Result<Saved, SaveError> {
    if request.content.len() as u64 > MAX_CODE_BYTES {
        return Err(SaveError::TooLarge(format!(
            "The content is too large: {} bytes, at most {MAX_CODE_BYTES}.",
            request.content.len()
        )));
    }
    let store = &state.store;
    let files = store.chat_files(chat_id).await?;
    let file = files
        .into_iter()
        .find(|f| f.id == request.file_id)
        .ok_or(StoreError::NotFound("File"))?;
    if file.kind != FileKind::Based {
        return Err(SaveError::NotBased(format!(
            "{} is not a .based file; only .based files have versions.",
            file.filename
        )));
    }
    let latest = store.latest_version(&file.id).await?;
    if let Some(base) = request.base_version_id.as_deref().filter(|base| *base != latest.id) {
        return Err(SaveError::Conflict {
            message: format!(
                "Conflict: {} changed since version {base}; its latest version is {}. Nothing was saved: \
                 save again with base_version_id {} (or none) to replace it.",
                file.filename, latest.id, latest.id
            ),
            conflict: SaveConflict {
                file_id: file.id.clone(),
                base_version_id: base.to_owned(),
                latest_version_id: latest.id.clone(),
            },
        });
    }
    let content = request.content;
    // Validation is CPU work: keep it off the async workers.
    let (content, diagnostics) = tokio::task::spawn_blocking(move || {
        let diagnostics = based::validate(&content);
        (content, diagnostics)
    })
    .await
    .map_err(|e| SaveError::Internal(e.to_string()))?;
    let diagnostics = diagnostics.iter().map(diagnostic_info).collect();
    if content == latest.content {
        return Ok(Saved {
            answer: VersionSaved {
                file_id: file.id,
                version_id: None,
                unchanged: true,
                diagnostics,
            },
            events: Vec::new(),
        });
    }
    let entry = MessageRecord::file(
        "user",
        json!({
            "based_filename": file.filename,
            "based_content": content,
            "edited_by_user": true,
            "message": "Edited by the user",
        }),
    );
    let (version, message) = store.add_version(chat_id, &file.id, &content, move |_| entry).await?;
    Ok(Saved {
        answer: VersionSaved {
            file_id: file.id,
            version_id: Some(version.id.clone()),
            unchanged: false,
            diagnostics,
        },
        events: vec![version_added(&file.filename, &version), message_added(&message)],
    })
}

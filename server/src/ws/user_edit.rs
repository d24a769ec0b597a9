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
    /// The owner's storage quota has no room for it.
    Quota(String),
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

/// The refusal of a save based on `base` while `latest` is the file's newest version.
fn conflict(filename: &str, file_id: &str, base: &str, latest: &str) -> SaveError {
    SaveError::Conflict {
        message: format!(
            "Conflict: {filename} changed since version {base}; its latest version is {latest}. Nothing was saved: \
             save again with base_version_id {latest} (or none) to replace it."
        ),
        conflict: SaveConflict {
            file_id: file_id.to_owned(),
            base_version_id: base.to_owned(),
            latest_version_id: latest.to_owned(),
        },
    }
}

/// Saves `request.content` as the newest version of a `.based` file of `chat_id`.
///
/// The base is checked first (a stale one is answered before validating), and again inside the
/// save's own transaction, so a version committed in between is a conflict too.
pub async fn save(state: &SharedState, user_id: &str, chat_id: &str, request: SaveVersion) -> Result<Saved, SaveError> {
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
        return Err(conflict(&file.filename, &file.id, base, &latest.id));
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
    // Stored twice: as the version and in the conversation entry that shows it.
    match state.quota.admit(store, user_id, 2 * content.len() as u64).await {
        Ok(()) => {}
        Err(crate::quota::QuotaError::Store(error)) => return Err(error.into()),
        Err(exceeded) => return Err(SaveError::Quota(exceeded.to_string())),
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
    let base = request.base_version_id.as_deref();
    let saved = store
        .add_version_after(chat_id, &file.id, base, &content, move |_| entry)
        .await;
    let (version, message) = match (saved, base) {
        (Err(StoreError::Stale(newest)), Some(base)) => return Err(conflict(&file.filename, &file.id, base, &newest)),
        (saved, _) => saved?,
    };
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

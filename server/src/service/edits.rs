//! New versions of a `.based` file that a client asks for: the user's own content
//! (`save_version` on the socket, `POST /file/{file_id}/versions` over REST), validated and
//! saved with a conversation entry by the user; and a revert to an older version.

use kafka_protocol::ws::{BasedFileContent, SaveConflict, SaveVersion, VersionSaved};
use serde_json::json;

use super::events::{message_added, version_added};
use super::{Done, ServiceError};
use crate::based;
use crate::http::based::{MAX_CODE_BYTES, diagnostic_info};
use crate::state::AppState;
use crate::store::{FileKind, MessageRecord, StoreError, VersionRecord};

/// The refusal of a save based on `base` while `latest` is the file's newest version.
fn conflict(filename: &str, file_id: &str, base: &str, latest: &str) -> ServiceError {
    ServiceError::Conflict {
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
pub async fn save(
    state: &AppState,
    user_id: &str,
    chat_id: &str,
    request: SaveVersion,
) -> Result<Done<VersionSaved>, ServiceError> {
    if request.content.len() as u64 > MAX_CODE_BYTES {
        return Err(ServiceError::TooLarge(format!(
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
        return Err(ServiceError::Invalid(format!(
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
    .map_err(|e| ServiceError::Internal(e.to_string()))?;
    let diagnostics = diagnostics.iter().map(diagnostic_info).collect();
    if content == latest.content {
        let unchanged = VersionSaved {
            file_id: file.id,
            version_id: None,
            unchanged: true,
            diagnostics,
        };
        return Ok(Done::new(unchanged, chat_id, Vec::new()));
    }
    // Stored twice: as the version and in the conversation entry that shows it.
    state.quota.admit(store, user_id, 2 * content.len() as u64).await?;
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
    let saved = VersionSaved {
        file_id: file.id,
        version_id: Some(version.id.clone()),
        unchanged: false,
        diagnostics,
    };
    let events = vec![version_added(&file.filename, &version), message_added(&message)];
    Ok(Done::new(saved, chat_id, events))
}

/// A revert carried out: the new version and what its entry says.
pub struct Reverted {
    pub version: VersionRecord,
    pub content: BasedFileContent,
}

/// Makes an old version of a `.based` file of `chat_id` its newest, with an assistant entry
/// that says so. `filename` must be the file's (clients send both, and a mismatch is refused).
pub async fn revert(
    state: &AppState,
    user_id: &str,
    chat_id: &str,
    version_id: &str,
    filename: &str,
) -> Result<Done<Reverted>, ServiceError> {
    let store = &state.store;
    // Only versions of this chat's files are found: another chat's ID answers "not found".
    let version = store.chat_version(chat_id, version_id).await?;
    let files = store.chat_files(chat_id).await?;
    let file = files
        .iter()
        .find(|f| f.id == version.file_id)
        .ok_or(StoreError::NotFound("File"))?;
    if file.filename != filename {
        return Err(ServiceError::Invalid(format!(
            "Version {version_id} belongs to {}, not {filename}.",
            file.filename
        )));
    }
    // Stored twice: as the new version and in the entry that announces it.
    state
        .quota
        .admit(store, user_id, 2 * version.content.len() as u64)
        .await?;
    let (from, name, content) = (version.id.clone(), file.filename.clone(), version.content.clone());
    let content_for = move |new_id: &str| BasedFileContent {
        based_filename: name.clone(),
        based_content: content.clone(),
        message: Some(format!("Reverted to version {from}; new version is {new_id}")),
    };
    // Stored with the original's `revert_notice` beside the brief's `message`.
    let (stored_content, from) = (content_for.clone(), version.id.clone());
    let (new_version, message) = store
        .add_version(chat_id, &file.id, &version.content, move |new| {
            let mut entry = json!(stored_content(&new.id));
            entry["revert_notice"] = json!(format!("Reverted from version {from}"));
            MessageRecord::file("assistant", entry)
        })
        .await?;
    let events = vec![version_added(&file.filename, &new_version), message_added(&message)];
    let reverted = Reverted {
        content: content_for(&new_version.id),
        version: new_version,
    };
    Ok(Done::new(reverted, chat_id, events))
}

//! `/file`: upload to a chat or a workspace, delete, rename (on disk too).

use kafka_protocol::rest::{Detail, FileRenameResponse, FileUploadResponse, SaveVersionRequest};
use kafka_protocol::ws::{SaveVersion, VersionSaved};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::form::{Form, FormFile, FromForm, typed_form};
use super::{caller, json_body, reply, with_state};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::service;
use crate::state::SharedState;
use crate::store::Resource;

pub fn routes(state: SharedState) -> BoxedFilter<(Response,)> {
    let limits = (state.settings.max_body_bytes, state.settings.max_upload_bytes);
    let upload = warp::path!("file" / "upload")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(caller(state.clone()))
        .and(typed_form(limits.0, limits.1))
        .then(|state: SharedState, caller, form| async move { reply(upload(&state, caller, form).await) });
    let rename = warp::path!("file" / "rename")
        .and(warp::patch())
        .and(with_state(state.clone()))
        .and(caller(state.clone()))
        .and(typed_form(64 * 1024, 64 * 1024))
        .then(|state: SharedState, caller, form| async move { reply(rename_file(&state, caller, form).await) });
    let delete = warp::path!("file" / "delete" / String)
        .and(warp::delete())
        .and(with_state(state.clone()))
        .and(caller(state.clone()))
        .then(|id: String, state: SharedState, caller| async move { reply(delete_file(&state, caller, &id).await) });
    let body_limit = state.settings.max_body_bytes;
    let save = warp::path!("file" / String / "versions")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(caller(state))
        .and(warp::body::content_length_limit(body_limit))
        .and(warp::body::bytes())
        .then(
            |id: String, state: SharedState, caller, body: bytes::Bytes| async move {
                reply(save_version(&state, caller, &id, &body).await)
            },
        );
    upload.or(rename).unify().or(delete).unify().or(save).unify().boxed()
}

/// The multipart fields of `POST /file/upload`.
#[derive(utoipa::ToSchema)]
pub struct UploadForm {
    /// Optional, as in the original (its web frontend sends none): the owner comes from the
    /// target (and the token). When given it must be the target's owner.
    user_id: Option<String>,
    /// A chat ID when `is_chat` is true, else a workspace ID.
    target_id: String,
    is_chat: bool,
    /// At least one.
    #[schema(value_type = Vec<String>, format = Binary)]
    files: Vec<FormFile>,
}

impl FromForm for UploadForm {
    fn from_form(mut form: Form) -> Result<Self, ApiError> {
        let files = form.take_files("files");
        if files.is_empty() {
            return Err(ApiError::Invalid(
                "Missing form field: files (at least one file).".into(),
            ));
        }
        Ok(Self {
            user_id: form.optional("user_id").filter(|id| !id.is_empty()).map(str::to_owned),
            target_id: form.non_blank_string("target_id")?,
            is_chat: form.boolean("is_chat")?,
            files,
        })
    }
}

#[utoipa::path(post, path = "/file/upload", tag = "File",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 200, body = FileUploadResponse), (status = 404, body = Detail), (status = 413, body = Detail), (status = 422, body = Detail), (status = 507, body = Detail)))]
async fn upload(
    state: &SharedState,
    caller: Caller,
    form: Result<UploadForm, ApiError>,
) -> Result<FileUploadResponse, ApiError> {
    let form = form?;
    let (user_id, target_id, is_chat) = (form.user_id.as_deref(), form.target_id.as_str(), form.is_chat);
    if let Some(user_id) = user_id {
        caller.check_user_field(&state.store, user_id).await?;
    }
    // Resolve the target before writing any bytes. Its owner must be the caller (token mode)
    // and the user_id given, if any; others' targets look missing.
    let (chat, owner) = if is_chat {
        let chat = state.store.chat(target_id).await?;
        let owner = chat.user_id.clone();
        (Some(chat), owner)
    } else {
        (None, state.store.workspace_owner(target_id).await?)
    };
    let foreign = user_id.is_some_and(|id| id != owner) || caller.user_id().is_some_and(|id| id != owner);
    if foreign {
        return Err(ApiError::NotFound(if is_chat { "Chat" } else { "Workspace" }));
    }
    let uploads: Vec<_> = form.files.into_iter().map(|f| (f.filename, f.bytes)).collect();
    let ids = match &chat {
        Some(chat) => {
            let done = service::files::upload_to_chat(state, chat, uploads, false).await?;
            let ids = done.value.iter().map(|upload| upload.file.file.id.clone()).collect();
            done.publish(&state.hub);
            ids
        }
        None => service::files::upload_to_workspace(state, &owner, target_id, uploads)
            .await?
            .into_iter()
            .map(|file| file.id)
            .collect(),
    };
    Ok(FileUploadResponse { files: ids })
}

#[utoipa::path(delete, path = "/file/delete/{file_id}", tag = "File",
    params(("file_id" = String, Path)),
    responses((status = 200, body = Detail), (status = 404, body = Detail)))]
async fn delete_file(state: &SharedState, caller: Caller, file_id: &str) -> Result<Detail, ApiError> {
    caller.check_owns(&state.store, Resource::File, file_id).await?;
    if let Some(done) = service::files::delete_file(state, file_id).await? {
        done.publish(&state.hub);
    }
    Ok(Detail::new("File deleted successfully."))
}

/// The fields of `PATCH /file/rename`.
#[derive(utoipa::ToSchema)]
pub struct RenameFileForm {
    file_id: String,
    /// Made safe like an uploaded file's name.
    new_name: String,
}

impl FromForm for RenameFileForm {
    fn from_form(form: Form) -> Result<Self, ApiError> {
        Ok(Self {
            file_id: form.non_blank_string("file_id")?,
            new_name: form.text("new_name")?.to_owned(),
        })
    }
}

#[utoipa::path(patch, path = "/file/rename", tag = "File",
    request_body(content = RenameFileForm, content_type = "multipart/form-data"),
    responses((status = 200, body = FileRenameResponse), (status = 404, body = Detail), (status = 422, body = Detail)))]
async fn rename_file(
    state: &SharedState,
    caller: Caller,
    form: Result<RenameFileForm, ApiError>,
) -> Result<FileRenameResponse, ApiError> {
    let RenameFileForm { file_id, new_name } = form?;
    caller.check_owns(&state.store, Resource::File, &file_id).await?;
    let renamed = service::files::rename_file(state, &file_id, &new_name).await?;
    Ok(FileRenameResponse {
        file_id: renamed.id,
        new_filename: renamed.filename,
        new_path: renamed.path,
    })
}

/// Saves the user's own content of a `.based` chat file as its new version, answered with the
/// validator's diagnostics (invalid Based is saved too). Content equal to the latest version
/// saves nothing (`unchanged`). With `base_version_id`, a file whose latest version is another
/// one is a `409` naming the latest, and nothing is saved. The new version reaches the chat's
/// live clients as `version_added` and `message_added` (role `user`, `edited_by_user`).
#[utoipa::path(post, path = "/file/{file_id}/versions", tag = "File",
    params(("file_id" = String, Path, description = "a `.based` file of one of the caller's chats")),
    request_body = SaveVersionRequest,
    responses((status = 200, body = VersionSaved), (status = 404, body = Detail), (status = 409, body = Detail),
               (status = 413, body = Detail), (status = 422, body = Detail), (status = 507, body = Detail)))]
async fn save_version(
    state: &SharedState,
    caller: Caller,
    file_id: &str,
    body: &[u8],
) -> Result<VersionSaved, ApiError> {
    let request: SaveVersionRequest = json_body(body)?;
    let owner = caller.check_owns(&state.store, Resource::File, file_id).await?;
    // Only chat files have versions; a workspace-only file is not one of them.
    let chat_id = state
        .store
        .stored_file(file_id)
        .await?
        .chat_id
        .ok_or(ApiError::NotFound("File"))?;
    let request = SaveVersion {
        file_id: file_id.to_owned(),
        content: request.content,
        base_version_id: request.base_version_id,
    };
    let done = service::edits::save(state, &owner, &chat_id, request).await?;
    Ok(done.publish(&state.hub))
}

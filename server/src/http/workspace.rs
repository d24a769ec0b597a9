//! `/workspace`: create (with files), rename, delete with everything in it.

use kafka_protocol::rest::{Detail, UploadedFile, WorkspaceNewResponse, WorkspaceRenameResponse};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::form::{Form, FormFile, FromForm, typed_form};
use super::{caller, reply, with_state};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::service;
use crate::state::SharedState;
use crate::store::Resource;

pub fn routes(state: SharedState) -> BoxedFilter<(Response,)> {
    let limits = (state.settings.max_body_bytes, state.settings.max_upload_bytes);
    let new = warp::path!("workspace" / "new")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(caller(state.clone()))
        .and(typed_form(limits.0, limits.1))
        .then(|state: SharedState, caller, form| async move { reply(new_workspace(&state, caller, form).await) });
    let rename = warp::path!("workspace" / "rename")
        .and(warp::patch())
        .and(with_state(state.clone()))
        .and(caller(state.clone()))
        .and(typed_form(limits.0, limits.1))
        .then(|state: SharedState, caller, form| async move { reply(rename_workspace(&state, caller, form).await) });
    let delete = warp::path!("workspace" / "delete" / String)
        .and(warp::delete())
        .and(with_state(state.clone()))
        .and(caller(state))
        .then(
            |id: String, state: SharedState, caller| async move { reply(delete_workspace(&state, caller, &id).await) },
        );
    new.or(rename).unify().or(delete).unify().boxed()
}

/// The multipart fields of `POST /workspace/new`.
#[derive(utoipa::ToSchema)]
pub struct NewWorkspaceForm {
    owner_id: String,
    name: String,
    /// Optional: files to start the workspace with.
    #[schema(value_type = Vec<String>, format = Binary)]
    files: Vec<FormFile>,
}

impl FromForm for NewWorkspaceForm {
    fn from_form(mut form: Form) -> Result<Self, ApiError> {
        Ok(Self {
            files: form.take_files("files"),
            owner_id: form.non_blank_string("owner_id")?,
            name: form.non_blank_string("name")?,
        })
    }
}

#[utoipa::path(post, path = "/workspace/new", tag = "Workspace",
    request_body(content = NewWorkspaceForm, content_type = "multipart/form-data"),
    responses((status = 200, body = WorkspaceNewResponse), (status = 404, body = Detail), (status = 413, body = Detail), (status = 422, body = Detail), (status = 507, body = Detail)))]
async fn new_workspace(
    state: &SharedState,
    caller: Caller,
    form: Result<NewWorkspaceForm, ApiError>,
) -> Result<WorkspaceNewResponse, ApiError> {
    let form = form?;
    let (owner_id, name) = (form.owner_id.as_str(), form.name.as_str());
    caller.check_user_field(&state.store, owner_id).await?;
    let uploads: Vec<_> = form.files.into_iter().map(|f| (f.filename, f.bytes)).collect();
    let files = service::files::store_new_workspace_files(state, owner_id, uploads).await?;
    let workspace_id = match state.store.create_workspace(owner_id, name, &files).await {
        Ok(id) => id,
        Err(error) => {
            state
                .uploads
                .remove_all(&files.iter().map(|f| f.path.clone()).collect::<Vec<_>>())
                .await;
            return Err(error.into());
        }
    };
    Ok(WorkspaceNewResponse {
        workspace_id,
        files: files
            .into_iter()
            .map(|f| UploadedFile {
                file_id: f.id,
                filename: f.filename,
            })
            .collect(),
    })
}

/// The fields of `PATCH /workspace/rename`.
#[derive(utoipa::ToSchema)]
pub struct RenameWorkspaceForm {
    workspace_id: String,
    new_name: String,
}

impl FromForm for RenameWorkspaceForm {
    fn from_form(form: Form) -> Result<Self, ApiError> {
        Ok(Self {
            workspace_id: form.non_blank_string("workspace_id")?,
            new_name: form.non_blank_string("new_name")?,
        })
    }
}

#[utoipa::path(patch, path = "/workspace/rename", tag = "Workspace",
    request_body(content = RenameWorkspaceForm, content_type = "multipart/form-data"),
    responses((status = 200, body = WorkspaceRenameResponse), (status = 404, body = Detail), (status = 422, body = Detail)))]
async fn rename_workspace(
    state: &SharedState,
    caller: Caller,
    form: Result<RenameWorkspaceForm, ApiError>,
) -> Result<WorkspaceRenameResponse, ApiError> {
    let form = form?;
    let (workspace_id, new_name) = (form.workspace_id.as_str(), form.new_name.as_str());
    caller
        .check_owns(&state.store, Resource::Workspace, workspace_id)
        .await?;
    state.store.rename_workspace(workspace_id, new_name).await?;
    Ok(WorkspaceRenameResponse {
        workspace_id: workspace_id.to_owned(),
        new_name: new_name.to_owned(),
    })
}

#[utoipa::path(delete, path = "/workspace/delete/{workspace_id}", tag = "Workspace",
    params(("workspace_id" = String, Path)),
    responses((status = 200, body = Detail), (status = 404, body = Detail)))]
async fn delete_workspace(state: &SharedState, caller: Caller, workspace_id: &str) -> Result<Detail, ApiError> {
    caller
        .check_owns(&state.store, Resource::Workspace, workspace_id)
        .await?;
    let (chat_ids, paths) = state.store.delete_workspace(workspace_id).await?;
    state.uploads.remove_all(&paths).await;
    for chat_id in &chat_ids {
        state.hub.chat_deleted(chat_id);
    }
    Ok(Detail::new("Workspace and all associated data deleted successfully."))
}

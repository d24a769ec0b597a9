//! `/chat`: create, delete, rename.

use kafka_protocol::rest::{ChatResponse, Detail};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::form::{Form, FromForm, typed_form};
use super::{caller, reply, with_state};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::service;
use crate::state::SharedState;
use crate::store::{ChatRecord, Resource};

pub fn routes(state: SharedState) -> BoxedFilter<(Response,)> {
    let limit = 64 * 1024;
    let new = warp::path!("chat" / "new")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(caller(state.clone()))
        .and(typed_form(limit, limit))
        .then(|state: SharedState, caller, form| async move { reply(new_chat(&state, caller, form).await) });
    let rename = warp::path!("chat" / "rename")
        .and(warp::patch())
        .and(with_state(state.clone()))
        .and(caller(state.clone()))
        .and(typed_form(limit, limit))
        .then(|state: SharedState, caller, form| async move { reply(rename_chat(&state, caller, form).await) });
    let delete = warp::path!("chat" / String)
        .and(warp::delete())
        .and(with_state(state.clone()))
        .and(caller(state))
        .then(|id: String, state: SharedState, caller| async move { reply(delete_chat(&state, caller, &id).await) });
    new.or(rename).unify().or(delete).unify().boxed()
}

fn chat_response(chat: ChatRecord) -> ChatResponse {
    ChatResponse {
        chat_id: chat.id,
        name: chat.name,
        last_updated: chat.last_updated,
    }
}

/// The fields of `POST /chat/new`.
#[derive(utoipa::ToSchema)]
pub struct NewChatForm {
    user_id: String,
    workspace_id: String,
    chat_name: String,
}

impl FromForm for NewChatForm {
    fn from_form(form: Form) -> Result<Self, ApiError> {
        Ok(Self {
            user_id: form.non_blank_string("user_id")?,
            workspace_id: form.non_blank_string("workspace_id")?,
            chat_name: form.non_blank_string("chat_name")?,
        })
    }
}

#[utoipa::path(post, path = "/chat/new", tag = "Chat",
    request_body(content = NewChatForm, content_type = "multipart/form-data"),
    responses((status = 200, body = ChatResponse), (status = 404, body = Detail), (status = 422, body = Detail)))]
async fn new_chat(
    state: &SharedState,
    caller: Caller,
    form: Result<NewChatForm, ApiError>,
) -> Result<ChatResponse, ApiError> {
    let form = form?;
    let (user_id, workspace_id, name) = (&form.user_id, &form.workspace_id, &form.chat_name);
    caller.check_user_field(&state.store, user_id).await?;
    let chat = service::chats::new_chat(state, user_id, workspace_id, name).await?;
    Ok(chat_response(chat))
}

/// The fields of `PATCH /chat/rename`.
#[derive(utoipa::ToSchema)]
pub struct RenameChatForm {
    chat_id: String,
    new_name: String,
}

impl FromForm for RenameChatForm {
    fn from_form(form: Form) -> Result<Self, ApiError> {
        Ok(Self {
            chat_id: form.non_blank_string("chat_id")?,
            new_name: form.non_blank_string("new_name")?,
        })
    }
}

#[utoipa::path(patch, path = "/chat/rename", tag = "Chat",
    request_body(content = RenameChatForm, content_type = "multipart/form-data"),
    responses((status = 200, body = ChatResponse), (status = 404, body = Detail), (status = 422, body = Detail)))]
async fn rename_chat(
    state: &SharedState,
    caller: Caller,
    form: Result<RenameChatForm, ApiError>,
) -> Result<ChatResponse, ApiError> {
    let form = form?;
    let (chat_id, new_name) = (&form.chat_id, &form.new_name);
    caller.check_owns(&state.store, Resource::Chat, chat_id).await?;
    let done = service::chats::rename_chat(state, chat_id, new_name).await?;
    let answer = chat_response(done.value.clone());
    done.publish(&state.hub);
    Ok(answer)
}

#[utoipa::path(delete, path = "/chat/{chat_id}", tag = "Chat",
    params(("chat_id" = String, Path)),
    responses((status = 200, body = Detail), (status = 404, body = Detail)))]
async fn delete_chat(state: &SharedState, caller: Caller, chat_id: &str) -> Result<Detail, ApiError> {
    caller.check_owns(&state.store, Resource::Chat, chat_id).await?;
    service::chats::delete_chat(state, chat_id).await?;
    Ok(Detail::new("Chat deleted successfully."))
}

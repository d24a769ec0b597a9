//! `/models`: a user's LLM endpoints. The API key (`ak`) is write-only.

use kafka_protocol::rest::{Detail, ModelInfo};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::form::{Form, FromForm, typed_form};
use super::{caller, reply, with_state};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::SharedState;
use crate::store::Resource;

pub fn routes(state: SharedState) -> BoxedFilter<(Response,)> {
    let limit = 64 * 1024;
    let new = warp::path!("models" / "new")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(caller(state.clone()))
        .and(typed_form(limit, limit))
        .then(|state: SharedState, caller, form| async move { reply(new_model(&state, caller, form).await) });
    let delete = warp::path!("models" / "delete" / String)
        .and(warp::delete())
        .and(with_state(state.clone()))
        .and(caller(state))
        .then(|id: String, state: SharedState, caller| async move { reply(delete_model(&state, caller, &id).await) });
    new.or(delete).unify().boxed()
}

/// The fields of `POST /models/new`.
#[derive(utoipa::ToSchema)]
pub struct NewModelForm {
    user_id: String,
    /// The model name sent to the provider, e.g. `gpt-4o-mini`.
    name: String,
    /// The provider's API key. Stored, never returned.
    ak: String,
    /// An OpenAI-compatible base URL, e.g. `https://api.openai.com/v1`. In token mode, a host on
    /// a loopback, private, link-local or cloud-metadata address is refused (422) unless the
    /// server runs with `--allow-private-model-hosts`.
    base_url: String,
}

impl FromForm for NewModelForm {
    fn from_form(form: Form) -> Result<Self, ApiError> {
        Ok(Self {
            user_id: form.non_blank_string("user_id")?,
            name: form.non_blank_string("name")?,
            // Local servers such as Ollama take any key; an empty one is allowed but must be sent.
            ak: form.text("ak")?.to_owned(),
            base_url: form.non_blank("base_url")?.trim_end_matches('/').to_owned(),
        })
    }
}

#[utoipa::path(post, path = "/models/new", tag = "Model",
    request_body(content = NewModelForm, content_type = "multipart/form-data"),
    responses((status = 200, body = ModelInfo), (status = 404, body = Detail), (status = 422, body = Detail)))]
async fn new_model(
    state: &SharedState,
    caller: Caller,
    form: Result<NewModelForm, ApiError>,
) -> Result<ModelInfo, ApiError> {
    let form = form?;
    let (user_id, name, api_key, base_url) = (&form.user_id, &form.name, &form.ak, &form.base_url);
    caller.check_user_field(&state.store, user_id).await?;
    // In token mode (unless allowed) internal hosts are refused: the server would call them.
    state
        .llm
        .check_base_url(base_url)
        .await
        .map_err(|refusal| ApiError::Invalid(format!("Field base_url: {refusal}.")))?;
    let model = state.store.create_model(user_id, name, api_key, base_url).await?;
    Ok(model.info())
}

#[utoipa::path(delete, path = "/models/delete/{model_id}", tag = "Model",
    params(("model_id" = String, Path)),
    responses((status = 200, body = Detail), (status = 404, body = Detail)))]
async fn delete_model(state: &SharedState, caller: Caller, model_id: &str) -> Result<Detail, ApiError> {
    caller.check_owns(&state.store, Resource::Model, model_id).await?;
    state.store.delete_model(model_id).await?;
    Ok(Detail::new("Model deleted successfully."))
}

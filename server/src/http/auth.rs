//! `/auth`: log in by email (the brief's open style).

use bytes::Bytes;
use email_address::EmailAddress;
use kafka_protocol::rest::{LoginRequest, LoginResponse};
use warp::Filter;
use warp::reply::Response;

use super::{json_body, reply, with_state};
use crate::error::ApiError;
use crate::state::SharedState;

pub fn routes(state: SharedState) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::path!("auth" / "login")
        .and(warp::post())
        .and(with_state(state))
        .and(warp::body::content_length_limit(64 * 1024))
        .and(warp::body::bytes())
        .then(|state: SharedState, body: Bytes| async move { reply(login(&state, &body).await) })
}

/// Creates the user (with a "Default Workspace") on first login and returns everything the
/// user owns.
#[utoipa::path(post, path = "/auth/login", tag = "Authentication",
    request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 422, body = kafka_protocol::rest::Detail)))]
async fn login(state: &SharedState, body: &[u8]) -> Result<LoginResponse, ApiError> {
    let request: LoginRequest = json_body(body)?;
    let email = normalize_email(&request.email)?;
    let user_id = state.store.login(&email).await?;
    Ok(state.store.user_overview(&user_id).await?)
}

/// Trims and lower-cases the address so that `A@x.io` and `a@x.io ` are one user.
fn normalize_email(raw: &str) -> Result<String, ApiError> {
    let email = raw.trim().to_lowercase();
    if !EmailAddress::is_valid(&email) {
        return Err(ApiError::Invalid(format!(
            "Field email: {raw:?} is not a valid email address."
        )));
    }
    Ok(email)
}

/// 404 unless the user exists.
pub(super) async fn require_user(state: &SharedState, user_id: &str) -> Result<(), ApiError> {
    if state.store.user_exists(user_id).await? {
        Ok(())
    } else {
        Err(ApiError::NotFound("User"))
    }
}

//! `/auth`: log in by email (the brief's style) or email and password, receiving a bearer
//! token; log out (revoke it); set a password.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use email_address::EmailAddress;
use kafka_protocol::rest::{Detail, LoginRequest, LoginResponse, PasswordRequest};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::HeaderMap;
use warp::reply::Response;

use super::{caller, json_body, reply, with_state};
use crate::auth::client_address::client_address;
use crate::auth::{Caller, passwords, tokens};
use crate::error::ApiError;
use crate::state::SharedState;
use crate::store::now_iso_after;

/// Login and password bodies are a few hundred bytes; this bounds parsing work.
const MAX_AUTH_BODY: u64 = 64 * 1024;
/// Wrong email/password combinations all get this one answer.
const INVALID_CREDENTIALS: &str = "Invalid credentials.";

pub fn routes(state: SharedState) -> BoxedFilter<(Response,)> {
    let login = warp::path!("auth" / "login")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(crate::connections::peer_addr())
        .and(warp::header::headers_cloned())
        .and(warp::body::content_length_limit(MAX_AUTH_BODY))
        .and(warp::body::bytes())
        .then(
            |state: SharedState, peer: Option<SocketAddr>, headers: HeaderMap, body: Bytes| async move {
                let forwarded: Vec<&str> = headers
                    .get_all("x-forwarded-for")
                    .iter()
                    .filter_map(|value| value.to_str().ok())
                    .collect();
                let address = client_address(peer.map(|p| p.ip()), &forwarded, &state.settings.trusted_proxies);
                reply(login(&state, address, &body).await)
            },
        );
    let logout = warp::path!("auth" / "logout")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(caller(state.clone()))
        .then(|state: SharedState, caller| async move { reply(logout(&state, caller).await) });
    let password = warp::path!("auth" / "password")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(caller(state))
        .and(warp::body::content_length_limit(MAX_AUTH_BODY))
        .and(warp::body::bytes())
        .then(
            |state: SharedState, caller, body: Bytes| async move { reply(set_password(&state, caller, &body).await) },
        );
    login.or(logout).unify().or(password).unify().boxed()
}

/// Creates the user (with a "Default Workspace") on first login and returns everything the
/// user owns, with a new bearer token. An account with a password needs it.
#[utoipa::path(post, path = "/auth/login", tag = "Authentication",
    request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = Detail),
        (status = 422, body = Detail), (status = 429, body = Detail)))]
async fn login(state: &SharedState, address: Option<IpAddr>, body: &[u8]) -> Result<LoginResponse, ApiError> {
    let request: LoginRequest = json_body(body)?;
    let email = normalize_email(&request.email)?;
    state
        .throttle
        .check(&email, address)
        .map_err(|wait| ApiError::Throttled(wait.as_secs().max(1)))?;
    let user_id = match state.store.credentials(&email).await? {
        Some(account) => match account.password_hash {
            Some(stored) => {
                let given = request.password.unwrap_or_default();
                if !passwords::verify(given, stored).await {
                    state.throttle.record_failure(&email, address);
                    return Err(ApiError::Unauthorized(INVALID_CREDENTIALS.into()));
                }
                account.user_id
            }
            None => account.user_id,
        },
        None => state.store.login(&email).await?,
    };
    state.throttle.record_success(&email);
    let token = tokens::new_token();
    let expires_at = now_iso_after(state.settings.token_ttl);
    let token_hash = tokens::token_hash(&token);
    let mut overview = state
        .store
        .create_token_with_overview(&user_id, &token_hash, &expires_at)
        .await?;
    overview.token = Some(token);
    overview.token_expires_at = Some(expires_at);
    Ok(overview)
}

/// Revokes the token the request carries.
#[utoipa::path(post, path = "/auth/logout", tag = "Authentication",
    security(("bearer" = [])),
    responses((status = 200, body = Detail), (status = 401, body = Detail)))]
async fn logout(state: &SharedState, caller: Result<Caller, ApiError>) -> Result<Detail, ApiError> {
    let Caller::User { token_hash, .. } = caller? else {
        return Err(ApiError::Unauthorized(crate::auth::NO_TOKEN.into()));
    };
    state.store.revoke_token(&token_hash).await?;
    state.hub.tokens_revoked(vec![token_hash]);
    Ok(Detail::new("Logged out."))
}

/// Sets or changes the password of the token's account; other sessions are logged out.
#[utoipa::path(post, path = "/auth/password", tag = "Authentication",
    security(("bearer" = [])),
    request_body = PasswordRequest,
    responses((status = 200, body = Detail), (status = 401, body = Detail), (status = 422, body = Detail)))]
async fn set_password(state: &SharedState, caller: Result<Caller, ApiError>, body: &[u8]) -> Result<Detail, ApiError> {
    let Caller::User {
        user_id, token_hash, ..
    } = caller?
    else {
        return Err(ApiError::Unauthorized(crate::auth::NO_TOKEN.into()));
    };
    let request: PasswordRequest = json_body(body)?;
    passwords::check_new(&request.password).map_err(ApiError::Invalid)?;
    let hash = passwords::hash(request.password).await.map_err(ApiError::internal)?;
    let revoked = state.store.set_password(&user_id, &hash, &token_hash).await?;
    state.hub.tokens_revoked(revoked);
    Ok(Detail::new("Password set. Other sessions were logged out."))
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

//! `/auth`: log in (email and password in protected mode; the email alone in open mode, the
//! brief's style, unless the account has a password), receiving a bearer token; log out
//! (revoke it); set or change a password.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use kafka_protocol::rest::{Detail, LoginRequest, LoginResponse, PasswordRequest};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::HeaderMap;
use warp::reply::Response;

use super::{caller, json_body, reply, with_state};
use crate::auth::client_address::client_address;
use crate::auth::throttle::Reservation;
use crate::auth::{AuthMode, Caller, passwords, tokens};
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
        .and(throttled_address(state.clone()))
        .and(warp::body::content_length_limit(MAX_AUTH_BODY))
        .and(warp::body::bytes())
        .then(|state: SharedState, address: Option<IpAddr>, body: Bytes| async move {
            reply(login(&state, address, &body).await)
        });
    let logout = warp::path!("auth" / "logout")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(caller(state.clone()))
        .then(|state: SharedState, caller| async move { reply(logout(&state, caller).await) });
    let password = warp::path!("auth" / "password")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(caller(state.clone()))
        .and(throttled_address(state))
        .and(warp::body::content_length_limit(MAX_AUTH_BODY))
        .and(warp::body::bytes())
        .then(
            |state: SharedState, caller, address: Option<IpAddr>, body: Bytes| async move {
                reply(set_password(&state, address, caller, &body).await)
            },
        );
    login.or(logout).unify().or(password).unify().boxed()
}

/// The client address the login throttle counts against (see `client_address`).
fn throttled_address(state: SharedState) -> impl Filter<Extract = (Option<IpAddr>,), Error = Infallible> + Clone {
    crate::connections::peer_addr().and(warp::header::headers_cloned()).map(
        move |peer: Option<SocketAddr>, headers: HeaderMap| {
            let forwarded: Vec<&str> = headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|value| value.to_str().ok())
                .collect();
            client_address(peer.map(|p| p.ip()), &forwarded, &state.settings.trusted_proxies)
        },
    )
}

/// Logs in and returns everything the user owns, with a new bearer token.
///
/// Protected mode: the password is always needed. A new email creates the account (with a
/// "Default Workspace") and that password; an account without a password (made in open mode)
/// cannot log in until `kafka-server user set-password` gives it one. Every refusal is the same
/// `401 Invalid credentials.`, after a password check of the same cost (against a dummy hash
/// when there is nothing to check), whether the email is known or not.
///
/// Open mode (the brief's style): the email alone logs in, creating the user on first login;
/// an account with a password needs it.
#[utoipa::path(post, path = "/auth/login", tag = "Authentication",
    request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = Detail),
        (status = 422, body = Detail), (status = 429, body = Detail)))]
async fn login(state: &SharedState, address: Option<IpAddr>, body: &[u8]) -> Result<LoginResponse, ApiError> {
    let request: LoginRequest = json_body(body)?;
    let email = normalize_email(&request.email)?;
    let user_id = match state.settings.auth {
        AuthMode::Token => protected_login(state, &email, address, request.password).await?,
        AuthMode::Open => open_login(state, &email, address, request.password).await?,
    };
    let token = tokens::new_token().map_err(ApiError::internal)?;
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

/// The user ID a protected-mode login gets, or why not.
async fn protected_login(
    state: &SharedState,
    email: &str,
    address: Option<IpAddr>,
    password: Option<String>,
) -> Result<String, ApiError> {
    // Without a password nothing is looked up: the answer cannot depend on the account.
    let Some(password) = password.filter(|p| !p.is_empty()) else {
        return Err(ApiError::Unauthorized(INVALID_CREDENTIALS.into()));
    };
    // No stored password is shorter or longer (`check_new` guards every way one is set).
    passwords::check_new(&password).map_err(ApiError::Invalid)?;
    let reservation = reserve(state, email, address)?;
    if let Some(account) = state.store.credentials(email).await? {
        check_password(state, reservation, password, account.password_hash).await?;
        return Ok(account.user_id);
    }
    let hash = match state.hasher.hash(password.clone()).await {
        Ok(hash) => hash,
        Err(error) => {
            state.throttle.release(reservation);
            return Err(error);
        }
    };
    if let Some(user_id) = state.store.create_user(email, Some(&hash)).await? {
        state.throttle.succeeded(reservation);
        return Ok(user_id);
    }
    // Someone created the account meanwhile: its password decides.
    let account = state
        .store
        .credentials(email)
        .await?
        .ok_or(ApiError::Unauthorized(INVALID_CREDENTIALS.into()))?;
    check_password(state, reservation, password, account.password_hash).await?;
    Ok(account.user_id)
}

/// The user ID an open-mode login gets: today's rules, the email alone for an account without
/// a password.
async fn open_login(
    state: &SharedState,
    email: &str,
    address: Option<IpAddr>,
    password: Option<String>,
) -> Result<String, ApiError> {
    state
        .throttle
        .check(email, address)
        .map_err(|wait| ApiError::Throttled(wait.as_secs().max(1)))?;
    match state.store.credentials(email).await? {
        Some(account) => {
            if let Some(stored) = account.password_hash {
                let reservation = reserve(state, email, address)?;
                check_password(state, reservation, password.unwrap_or_default(), Some(stored)).await?;
            }
            Ok(account.user_id)
        }
        None => Ok(state.store.login(email).await?),
    }
}

/// Counts an attempt on the account and the address before its password is checked, or the
/// `429` to answer.
fn reserve(state: &SharedState, email: &str, address: Option<IpAddr>) -> Result<Reservation, ApiError> {
    state
        .throttle
        .reserve(email, address)
        .map_err(|wait| ApiError::Throttled(wait.as_secs().max(1)))
}

/// Checks `given` against `stored` (a dummy hash when `None`, which never matches) on the
/// hashing pool; settles the throttle's reservation with the outcome.
async fn check_password(
    state: &SharedState,
    reservation: Reservation,
    given: String,
    stored: Option<String>,
) -> Result<(), ApiError> {
    match state.hasher.verify(given, stored).await {
        Ok(true) => {
            state.throttle.succeeded(reservation);
            Ok(())
        }
        // The reservation stays counted as a failure.
        Ok(false) => Err(ApiError::Unauthorized(INVALID_CREDENTIALS.into())),
        Err(error) => {
            state.throttle.release(reservation);
            Err(error)
        }
    }
}

/// Revokes the token the request carries.
#[utoipa::path(post, path = "/auth/logout", tag = "Authentication",
    security(("bearer" = [])),
    responses((status = 200, body = Detail), (status = 401, body = Detail)))]
async fn logout(state: &SharedState, caller: Caller) -> Result<Detail, ApiError> {
    let Caller::User { token_hash, .. } = caller else {
        return Err(ApiError::Unauthorized(crate::auth::NO_TOKEN.into()));
    };
    state.store.revoke_token(&token_hash).await?;
    state.hub.tokens_revoked(vec![token_hash]);
    Ok(Detail::new("Logged out."))
}

/// Sets or changes the password of the token's account; other sessions are logged out. When
/// the account has a password, `current_password` must be it (`401` otherwise, nothing changes).
#[utoipa::path(post, path = "/auth/password", tag = "Authentication",
    security(("bearer" = [])),
    request_body = PasswordRequest,
    responses((status = 200, body = Detail), (status = 401, body = Detail), (status = 422, body = Detail),
        (status = 429, body = Detail)))]
async fn set_password(
    state: &SharedState,
    address: Option<IpAddr>,
    caller: Caller,
    body: &[u8],
) -> Result<Detail, ApiError> {
    let Caller::User {
        user_id, token_hash, ..
    } = caller
    else {
        return Err(ApiError::Unauthorized(crate::auth::NO_TOKEN.into()));
    };
    let request: PasswordRequest = json_body(body)?;
    passwords::check_new(&request.password).map_err(ApiError::Invalid)?;
    let (email, stored) = state.store.user_credentials(&user_id).await?;
    if let Some(stored) = stored {
        // A stolen token must not be a way to guess the password: throttled like a login.
        let reservation = reserve(state, &email, address)?;
        let current = request.current_password.unwrap_or_default();
        check_password(state, reservation, current, Some(stored)).await?;
    }
    let hash = state.hasher.hash(request.password).await?;
    let revoked = state.store.set_password(&user_id, &hash, &token_hash).await?;
    state.hub.tokens_revoked(revoked);
    Ok(Detail::new("Password set. Other sessions were logged out."))
}

/// The login's email, normalized (see `auth::normalize_email`).
fn normalize_email(raw: &str) -> Result<String, ApiError> {
    crate::auth::normalize_email(raw).map_err(ApiError::Invalid)
}

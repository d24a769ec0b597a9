//! The HTTP surface: one module per router of the brief, assembled here, plus the single
//! place where rejections become `{"detail": …}` responses.

mod auth;
pub(crate) mod based;
pub mod browsers;
mod chat;
mod docs;
mod file;
mod file_content;
mod form;
mod models;
mod workspace;

use std::convert::Infallible;

use kafka_protocol::rest::{Detail, Health, Welcome};
use serde::Serialize;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::SharedState;

pub use docs::ApiDoc;

/// Every route of the server.
pub fn routes(state: SharedState) -> BoxedFilter<(Response,)> {
    let policy = browsers::Policy::new(&state.settings.cors_origins, state.settings.auth);
    let root = warp::path::end().and(warp::get()).map(|| {
        json_ok(&Welcome {
            message: "Welcome to the Kafka API. Docs at /docs.".into(),
        })
    });
    let health = warp::path!("healthz")
        .and(warp::get())
        .map(|| json_ok(&Health { status: "ok".into() }));
    // Each router is boxed where it joins the tree, so the tree's type stays small: no crate
    // that names it needs a raised recursion limit, and it compiles faster.
    let api = root
        .or(health)
        .unify()
        .or(auth::routes(state.clone()))
        .unify()
        .or(workspace::routes(state.clone()))
        .unify()
        .or(chat::routes(state.clone()))
        .unify()
        .or(file::routes(state.clone()))
        .unify()
        .or(file_content::routes(state.clone()))
        .unify()
        .or(models::routes(state.clone()))
        .unify()
        .or(based::routes(state.clone()))
        .unify()
        .or(crate::ws::route(state.clone()))
        .unify()
        .or(docs::routes())
        .unify()
        .boxed();
    browsers::preflight(policy.clone())
        .or(browsers::guard(policy).and(api).map(browsers::decorate))
        .unify()
        .recover(handle_rejection)
        .unify()
        .with(warp::trace::request())
        .map(Reply::into_response)
        .boxed()
}

/// The request's caller, from its `Authorization: Bearer` header. A missing (in protected
/// mode) or bad token rejects the request here, so routes put this filter before their body
/// filters: the `401` is answered from the headers alone, before any of the body is read.
pub(crate) fn caller(state: SharedState) -> impl Filter<Extract = (Caller,), Error = Rejection> + Clone {
    warp::header::optional::<String>("authorization")
        .and(with_state(state))
        .and_then(|header: Option<String>, state: SharedState| async move {
            let resolved = match header.as_deref().map(crate::auth::bearer).transpose() {
                Ok(token) => crate::auth::authenticate(&state, token).await,
                Err(error) => Err(error),
            };
            resolved.map_err(|error| warp::reject::custom(Refused(error)))
        })
}

/// A request refused before its handler ran (e.g. `401` for a missing token); answered by
/// [`handle_rejection`] with the error's status and `{"detail": …}`.
#[derive(Debug)]
pub(crate) struct Refused(pub ApiError);

impl warp::reject::Reject for Refused {}

/// Passes the shared state into a handler.
pub(crate) fn with_state(state: SharedState) -> impl Filter<Extract = (SharedState,), Error = Infallible> + Clone {
    warp::any().map(move || state.clone())
}

/// A handler's result as a response: the body as JSON, or the error's status and detail.
fn reply<T: Serialize>(result: Result<T, ApiError>) -> Response {
    match result {
        Ok(body) => json_ok(&body),
        Err(error) => error_response(&error),
    }
}

fn json_ok<T: Serialize>(body: &T) -> Response {
    warp::reply::json(body).into_response()
}

pub(crate) fn error_response(error: &ApiError) -> Response {
    if let ApiError::Internal(reason) = error {
        tracing::error!(%reason, "request failed");
    }
    warp::reply::with_status(warp::reply::json(&error.detail()), error.status()).into_response()
}

/// Parses a JSON body ourselves so that errors name the field in the brief's shape.
/// Bodies are size-capped by each route; nesting is capped here.
fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    crate::json::check_depth(body).map_err(ApiError::Invalid)?;
    serde_json::from_slice(body).map_err(|e| ApiError::Invalid(format!("Invalid JSON body: {e}.")))
}

/// Turns warp's own rejections (no route, wrong method, body limits) into `{"detail": …}`.
async fn handle_rejection(rejection: Rejection) -> Result<Response, Infallible> {
    if let Some(Refused(error)) = rejection.find::<Refused>() {
        return Ok(error_response(error));
    }
    let (status, detail) = if let Some(browsers::Forbidden(why)) = rejection.find() {
        (StatusCode::FORBIDDEN, why.clone())
    } else if rejection.is_not_found() {
        (StatusCode::NOT_FOUND, "Not Found".to_owned())
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        (StatusCode::PAYLOAD_TOO_LARGE, "Request body is too large.".to_owned())
    } else if rejection.find::<warp::reject::LengthRequired>().is_some() {
        (
            StatusCode::LENGTH_REQUIRED,
            "A Content-Length header is required.".to_owned(),
        )
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        (StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed".to_owned())
    } else if let Some(e) = rejection.find::<warp::reject::InvalidHeader>() {
        (StatusCode::BAD_REQUEST, e.to_string())
    } else {
        tracing::warn!(?rejection, "unhandled rejection");
        (StatusCode::BAD_REQUEST, format!("Bad request: {rejection:?}"))
    };
    Ok(warp::reply::with_status(warp::reply::json(&Detail::new(detail)), status).into_response())
}

//! One error type for every HTTP handler, answered as the brief's `{"detail": …}`.

use kafka_protocol::rest::Detail;
use warp::http::StatusCode;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// `404 {"detail": "Chat not found."}`: `0` is the thing, e.g. "Chat".
    #[error("{0} not found.")]
    NotFound(&'static str),
    #[error("{0}")]
    BadRequest(String),
    /// A missing or ill-typed field (FastAPI answered these with 422 too).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    TooLarge(String),
    /// The request was made against a state that changed meanwhile (a stale base version).
    #[error("{0}")]
    Conflict(String),
    /// A missing, unknown or expired token, or wrong credentials at login.
    #[error("{0}")]
    Unauthorized(String),
    /// Too many failed logins: try again after this many seconds.
    #[error("Too many failed login attempts; try again in {0} seconds.")]
    Throttled(u64),
    /// The password-hashing pool is full: try again shortly (`429`).
    #[error("{0}")]
    Busy(String),
    /// The user's storage quota has no room for this (`507 Insufficient Storage`).
    #[error("{0}")]
    QuotaExceeded(String),
    /// Something broke on our side; logged, answered with a generic message.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Throttled(_) | ApiError::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::QuotaExceeded(_) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The body a client sees. Internal details stay in the log.
    pub fn detail(&self) -> Detail {
        match self {
            ApiError::Internal(_) => Detail::new("Internal server error."),
            other => Detail::new(other.to_string()),
        }
    }

    pub fn internal(error: impl std::fmt::Display) -> Self {
        ApiError::Internal(error.to_string())
    }
}

impl From<crate::quota::QuotaError> for ApiError {
    fn from(error: crate::quota::QuotaError) -> Self {
        match error {
            crate::quota::QuotaError::Store(error) => error.into(),
            exceeded => ApiError::QuotaExceeded(exceeded.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(what) => ApiError::NotFound(what),
            other => ApiError::internal(other),
        }
    }
}

impl From<std::io::Error> for ApiError {
    fn from(error: std::io::Error) -> Self {
        ApiError::internal(error)
    }
}

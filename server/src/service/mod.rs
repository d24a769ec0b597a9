//! Every change a client can ask for, written once. REST handlers (`http/`) and WebSocket
//! actions (`ws/`) both call these, so a change has the same checks, side effects and events
//! whichever way it came.
//!
//! A service validates, checks the owner's storage quota, commits through the store, and
//! returns what it did with the events for the chat's live clients ([`Done`]). The transport
//! answers its caller first and publishes after, so a client sees its answer before the echo
//! of it.

pub mod agent;
pub mod chats;
pub mod conversation;
pub mod edits;
pub mod events;
pub mod files;

use kafka_protocol::ws::{ChatEvent, SaveConflict};

use crate::error::ApiError;
use crate::files::UploadError;
use crate::hub::Hub;
use crate::quota::QuotaError;
use crate::store::StoreError;

/// A committed change: its result, and the events its chat's live clients are to get.
#[must_use = "publish the events once the caller is answered"]
pub struct Done<T> {
    pub value: T,
    chat_id: String,
    events: Vec<ChatEvent>,
}

impl<T> Done<T> {
    fn new(value: T, chat_id: &str, events: Vec<ChatEvent>) -> Self {
        Self {
            value,
            chat_id: chat_id.to_owned(),
            events,
        }
    }

    /// Sends the events to the chat's live clients (on every instance); returns the result.
    pub fn publish(self, hub: &Hub) -> T {
        for event in self.events {
            hub.publish(&self.chat_id, event);
        }
        self.value
    }
}

/// Why a change was refused or failed; nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Missing things (another user's look missing too), or a storage failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    TooLarge(String),
    /// The owner's storage quota has no room for it.
    #[error("{0}")]
    Quota(String),
    /// A save based on a version that is no longer the latest.
    #[error("{message}")]
    Conflict { message: String, conflict: SaveConflict },
    /// Something broke on our side (logged by the transport, answered generically).
    #[error("{0}")]
    Internal(String),
}

impl From<QuotaError> for ServiceError {
    fn from(error: QuotaError) -> Self {
        match error {
            QuotaError::Store(error) => ServiceError::Store(error),
            exceeded => ServiceError::Quota(exceeded.to_string()),
        }
    }
}

impl From<UploadError> for ServiceError {
    fn from(error: UploadError) -> Self {
        match error {
            UploadError::BadName(detail) => ServiceError::Invalid(detail),
            too_large @ (UploadError::TooLarge { .. } | UploadError::TooMany { .. }) => {
                ServiceError::TooLarge(too_large.to_string())
            }
            UploadError::Io(error) => ServiceError::Internal(error.to_string()),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::Store(error) => error.into(),
            ServiceError::Invalid(detail) => ApiError::Invalid(detail),
            ServiceError::TooLarge(detail) => ApiError::TooLarge(detail),
            ServiceError::Quota(detail) => ApiError::QuotaExceeded(detail),
            ServiceError::Conflict { message, .. } => ApiError::Conflict(message),
            ServiceError::Internal(detail) => ApiError::Internal(detail),
        }
    }
}

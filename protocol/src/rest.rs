//! REST request and response bodies, as in the brief's "Endpoint Docs".
//!
//! Form and multipart endpoints take their fields by name (see the server's `http` module);
//! only JSON bodies and every response body are typed here.

use serde::{Deserialize, Serialize};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// Every error, and the plain confirmations of deletes: `{"detail": "Chat not found."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Detail {
    pub detail: String,
}

impl Detail {
    pub fn new(detail: impl Into<String>) -> Self {
        Self { detail: detail.into() }
    }
}

/// `GET /`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Welcome {
    pub message: String,
}

/// `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Health {
    pub status: String,
}

/// `POST /auth/login` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct LoginRequest {
    pub email: String,
    /// Protected mode: always needed (a new email's account is created with it). Open mode:
    /// needed once the account has a password (`POST /auth/password`); ignored otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// `POST /auth/login` response: the user with everything they own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct LoginResponse {
    pub user_id: String,
    pub email: String,
    pub workspaces: Vec<WorkspaceSummary>,
    #[serde(default)]
    pub models: Vec<ModelInfo>,
    /// Bearer token for `Authorization: Bearer …` and the WebSocket's `?token=`. Absent from
    /// the original's responses, so optional for clients that talk to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// When `token` stops working (ISO 8601, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_expires_at: Option<String>,
}

/// `POST /auth/password` body: sets (or changes) the account's password. Needs a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct PasswordRequest {
    pub password: String,
    /// The account's present password, needed when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_password: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct WorkspaceSummary {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub files: Vec<FileSummary>,
    pub chats: Vec<ChatSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct FileSummary {
    pub id: String,
    pub filename: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ChatSummary {
    pub id: String,
    pub name: String,
    pub last_updated: Option<String>,
    /// Versions of all `.based` files of the chat, added up.
    pub num_versions: i64,
}

/// `POST /workspace/new` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct WorkspaceNewResponse {
    pub workspace_id: String,
    pub files: Vec<UploadedFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct UploadedFile {
    pub file_id: String,
    pub filename: String,
}

/// `PATCH /workspace/rename` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct WorkspaceRenameResponse {
    pub workspace_id: String,
    pub new_name: String,
}

/// `POST /chat/new` and `PATCH /chat/rename` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ChatResponse {
    pub chat_id: String,
    pub name: String,
    pub last_updated: Option<String>,
}

/// `POST /file/upload` response: the new file IDs, in upload order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct FileUploadResponse {
    pub files: Vec<String>,
}

/// `PATCH /file/rename` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct FileRenameResponse {
    pub file_id: String,
    pub new_filename: String,
    pub new_path: String,
}

/// A model as clients see it. The API key (`ak`) is write-only and never part of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ModelInfo {
    pub id: String,
    pub name: String,
    pub base_url: String,
    pub user_id: String,
}

/// `POST /based/validate` body: the original validation service's request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ValidateRequest {
    pub code: String,
}

/// `POST /based/validate` response: `{"status":"success"}` or
/// `{"status":"error","error":"<first error>","diagnostics":[…]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ValidateResponse {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Every diagnostic, warnings included, sorted by position.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<DiagnosticInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct DiagnosticInfo {
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    /// `"error"` or `"warning"`.
    pub severity: String,
    pub code: String,
    pub message: String,
}

/// `POST /file/{file_id}/versions` body: the user's content for a `.based` file. The answer
/// is [`crate::ws::VersionSaved`]; `409` when `base_version_id` is no longer the latest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SaveVersionRequest {
    pub content: String,
    /// The version the edit started from; omit to save over whatever the latest is.
    #[serde(default)]
    pub base_version_id: Option<String>,
}

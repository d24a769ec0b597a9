//! Who is calling: bearer tokens, passwords, failed-login throttling, and the ownership
//! checks every handler runs on the IDs a request names.
//!
//! Open mode keeps the brief's style (IDs in requests are trusted) for a local tool on
//! loopback; protected mode needs a token on every call. A token, when sent, is checked in
//! both modes, and with a token every named resource must be the token user's own — others'
//! resources answer 404 exactly like missing ones, so existence is not revealed.

pub mod admin;
pub mod client_address;
pub mod passwords;
pub mod throttle;
pub mod tokens;

use crate::error::ApiError;
use crate::state::SharedState;
use crate::store::{Resource, Store};

/// How the server treats requests without a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// No token needed (the brief's style).
    Open,
    /// Every endpoint but login, health and docs needs a bearer token.
    Token,
}

/// The authenticated party of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No token, in open mode: the IDs in the request are trusted.
    Anonymous,
    /// The user of a valid token. A WebSocket opened with it closes when the token is
    /// revoked (logout, password change) or at `expires_at`.
    User {
        user_id: String,
        token_hash: String,
        expires_at: String,
    },
}

/// The 401 body for a missing, unknown, revoked or expired token.
pub const BAD_TOKEN: &str = "Invalid or expired token.";
pub const NO_TOKEN: &str = "Not authenticated: send Authorization: Bearer <token> (from POST /auth/login).";

/// Resolves the caller from an `Authorization` header value or a `?token=` value.
pub async fn authenticate(state: &SharedState, credential: Option<&str>) -> Result<Caller, ApiError> {
    let Some(credential) = credential else {
        return match state.settings.auth {
            AuthMode::Open => Ok(Caller::Anonymous),
            AuthMode::Token => Err(ApiError::Unauthorized(NO_TOKEN.into())),
        };
    };
    let token_hash = tokens::token_hash(credential);
    match state.store.token_user(&token_hash).await? {
        Some(live) => Ok(Caller::User {
            user_id: live.user_id,
            token_hash,
            expires_at: live.expires_at,
        }),
        None => Err(ApiError::Unauthorized(BAD_TOKEN.into())),
    }
}

/// Trims and lower-cases an email so that `A@x.io` and `a@x.io ` are one user; the message is
/// for the client.
pub fn normalize_email(raw: &str) -> Result<String, String> {
    let email = raw.trim().to_lowercase();
    if !email_address::EmailAddress::is_valid(&email) {
        return Err(format!("Field email: {raw:?} is not a valid email address."));
    }
    Ok(email)
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
pub fn bearer(header: &str) -> Result<&str, ApiError> {
    match header.trim().split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => Ok(token.trim()),
        _ => Err(ApiError::Unauthorized(
            "The Authorization header must be `Bearer <token>`.".into(),
        )),
    }
}

impl Caller {
    /// The token user's ID, if any.
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Caller::Anonymous => None,
            Caller::User { user_id, .. } => Some(user_id),
        }
    }

    /// 404 unless `id` exists and, with a token, belongs to the caller; else its owner.
    pub async fn check_owns(&self, store: &Store, resource: Resource, id: &str) -> Result<String, ApiError> {
        let owner = store.owner_of(resource, id).await?;
        match self.user_id() {
            Some(user_id) if user_id != owner => Err(ApiError::NotFound(resource.name())),
            _ => Ok(owner),
        }
    }

    /// A `user_id`/`owner_id` form field: it must name an existing user and, with a token,
    /// the token's user. Anything else is "User not found." (404).
    pub async fn check_user_field(&self, store: &Store, user_id: &str) -> Result<(), ApiError> {
        match self.user_id() {
            Some(own) if own == user_id => Ok(()),
            Some(_) => Err(ApiError::NotFound("User")),
            None if store.user_exists(user_id).await? => Ok(()),
            None => Err(ApiError::NotFound("User")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::bearer;

    #[test]
    fn bearer_headers_parse_strictly() {
        assert_eq!(bearer("Bearer abc").unwrap(), "abc");
        assert_eq!(bearer("bearer  abc ").unwrap(), "abc");
        assert!(bearer("Basic abc").is_err());
        assert!(bearer("Bearer").is_err());
        assert!(bearer("Bearer   ").is_err());
        assert!(bearer("abc").is_err());
    }
}

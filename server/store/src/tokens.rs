//! Credentials: bearer tokens (stored as SHA-256 hashes) and optional password hashes.

use super::{Store, StoreResult, found, now_iso};

/// A token that is neither revoked nor expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveToken {
    pub user_id: String,
    /// When it stops working, as `now_iso` writes times; a WebSocket opened with it closes then.
    pub expires_at: String,
}

/// What login needs to know about an account.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user_id: String,
    /// An argon2id PHC string, when the account has a password.
    pub password_hash: Option<String>,
}

impl Store {
    pub async fn credentials(&self, email: &str) -> StoreResult<Option<Credentials>> {
        let row: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT id, password_hash FROM users WHERE email = $1")
                .bind(email)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(user_id, password_hash)| Credentials { user_id, password_hash }))
    }

    /// The email and password hash (if any) of the user: `/auth/password` checks the present
    /// password, and throttles by email as logins do.
    pub async fn user_credentials(&self, user_id: &str) -> StoreResult<(String, Option<String>)> {
        let row: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT email, password_hash FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        found(row, "User")
    }

    /// Sets the password and, in the same transaction, revokes every other token of the user:
    /// a password change logs out the other sessions. Returns the revoked tokens' hashes.
    pub async fn set_password(&self, user_id: &str, password_hash: &str, keep_token: &str) -> StoreResult<Vec<String>> {
        let (user_id, password_hash, keep_token) =
            (user_id.to_owned(), password_hash.to_owned(), keep_token.to_owned());
        self.write(move |conn| {
            Box::pin(async move {
                let updated = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                    .bind(&password_hash)
                    .bind(&user_id)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                found((updated > 0).then_some(()), "User")?;
                Ok(sqlx::query_scalar(
                    "DELETE FROM auth_tokens WHERE user_id = $1 AND token_hash <> $2 RETURNING token_hash",
                )
                .bind(&user_id)
                .bind(&keep_token)
                .fetch_all(&mut *conn)
                .await?)
            })
        })
        .await
    }

    /// Records a new token: one statement, on the login hot path (expired tokens are
    /// purged at start-up, not here). On SQLite concurrent logins share a commit.
    pub async fn create_token(&self, user_id: &str, token_hash: &str, expires_at: &str) -> StoreResult<()> {
        let row = (token_hash.to_owned(), user_id.to_owned(), expires_at.to_owned());
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO auth_tokens (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(&row.0)
                .bind(&row.1)
                .bind(now_iso())
                .bind(&row.2)
                .execute(&mut *conn)
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// Deletes every expired token; returns how many.
    pub async fn purge_expired_tokens(&self) -> StoreResult<u64> {
        self.write(|conn| {
            Box::pin(async move {
                let purged = sqlx::query("DELETE FROM auth_tokens WHERE expires_at <= $1")
                    .bind(now_iso())
                    .execute(&mut *conn)
                    .await?;
                Ok(purged.rows_affected())
            })
        })
        .await
    }

    /// The token's user and expiry; `None` for an unknown, revoked or expired token.
    pub async fn token_user(&self, token_hash: &str) -> StoreResult<Option<LiveToken>> {
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT user_id, expires_at FROM auth_tokens WHERE token_hash = $1 AND expires_at > $2")
                .bind(token_hash)
                .bind(now_iso())
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(user_id, expires_at)| LiveToken { user_id, expires_at }))
    }

    pub async fn revoke_token(&self, token_hash: &str) -> StoreResult<()> {
        let token_hash = token_hash.to_owned();
        self.write(move |conn| {
            Box::pin(async move {
                sqlx::query("DELETE FROM auth_tokens WHERE token_hash = $1")
                    .bind(&token_hash)
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            })
        })
        .await
    }
}

//! Passwords: argon2id (the crate's defaults follow OWASP's recommendation), hashed and
//! checked on the blocking pool so that a login never stalls the async workers.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// Shortest and longest password accepted (the upper bound caps hashing work per request).
pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 1024;

/// Checks a new password's length; the message is for the client.
pub fn check_new(password: &str) -> Result<(), String> {
    let chars = password.chars().count();
    if chars < MIN_LEN {
        return Err(format!("Field password: use at least {MIN_LEN} characters."));
    }
    if password.len() > MAX_LEN {
        return Err(format!("Field password: use at most {MAX_LEN} bytes."));
    }
    Ok(())
}

/// The PHC string to store for `password`.
pub async fn hash(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
    })
    .await?
}

/// Whether `password` matches the stored PHC string. A damaged hash never matches.
pub async fn verify(password: String, stored: String) -> bool {
    if password.len() > MAX_LEN {
        return false;
    }
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&stored)
            .is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let stored = hash("hunter2-but-longer".into()).await.unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify("hunter2-but-longer".into(), stored.clone()).await);
        assert!(!verify("hunter3-but-longer".into(), stored.clone()).await);
        assert!(!verify("hunter2-but-longer".into(), "not a hash".into()).await);
    }

    #[test]
    fn new_passwords_have_bounded_length() {
        assert!(check_new("short").is_err());
        assert!(check_new("long enough").is_ok());
        assert!(check_new(&"x".repeat(MAX_LEN + 1)).is_err());
    }
}

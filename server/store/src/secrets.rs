//! Model API keys at rest. With `KAFKA_SECRET_KEY` set, keys are sealed with
//! ChaCha20-Poly1305 (a random nonce per value, the model's ID as associated data so a sealed
//! key cannot be moved to another row), so a copied database file hands out no provider keys.
//! Without it they are stored as given, as the original did.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};

/// Marks a sealed value; anything else is a plain (legacy or unencrypted) key.
const SEALED_PREFIX: &str = "enc:v1:";
/// Separates our key derivation from any other use of the same secret.
const DERIVATION_LABEL: &[u8] = b"kafka model api keys v1\0";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("a model key is encrypted but KAFKA_SECRET_KEY is not set")]
    NoKey,
    #[error("a model key could not be decrypted (wrong KAFKA_SECRET_KEY, or a damaged row)")]
    Undecryptable,
    #[error("a model key could not be encrypted (the system's randomness failed)")]
    Unsealable,
}

/// Seals and opens model keys. Cheap to clone.
#[derive(Clone, Default)]
pub struct Sealer {
    key: Option<Arc<LessSafeKey>>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer").field("active", &self.is_active()).finish()
    }
}

impl Sealer {
    /// A sealer for `secret` (any string; a long random one, e.g. `openssl rand -base64 32`).
    /// An empty secret means no encryption.
    pub fn new(secret: Option<&str>) -> Self {
        let Some(secret) = secret.filter(|s| !s.is_empty()) else {
            return Self::default();
        };
        let material = digest(&SHA256, &[DERIVATION_LABEL, secret.as_bytes()].concat());
        // A SHA-256 digest is always the 32 bytes ChaCha20-Poly1305 takes.
        #[expect(clippy::expect_used, reason = "a SHA-256 digest is a valid key")]
        let key = UnboundKey::new(&CHACHA20_POLY1305, material.as_ref()).expect("32-byte key");
        Self {
            key: Some(Arc::new(LessSafeKey::new(key))),
        }
    }

    pub fn is_active(&self) -> bool {
        self.key.is_some()
    }

    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(SEALED_PREFIX)
    }

    /// What to store for `plain`, the key of model `model_id`.
    pub fn seal(&self, plain: &str, model_id: &str) -> Result<String, SecretError> {
        let Some(key) = &self.key else {
            return Ok(plain.to_owned());
        };
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SecretError::Unsealable)?;
        let mut data = plain.as_bytes().to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(model_id.as_bytes()),
            &mut data,
        )
        .map_err(|_| SecretError::Unsealable)?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&data);
        Ok(format!("{SEALED_PREFIX}{}", STANDARD.encode(sealed)))
    }

    /// The plain key from what was stored for model `model_id`.
    pub fn open(&self, stored: &str, model_id: &str) -> Result<String, SecretError> {
        let Some(encoded) = stored.strip_prefix(SEALED_PREFIX) else {
            return Ok(stored.to_owned());
        };
        let key = self.key.as_ref().ok_or(SecretError::NoKey)?;
        let bytes = STANDARD.decode(encoded).map_err(|_| SecretError::Undecryptable)?;
        if bytes.len() < NONCE_LEN {
            return Err(SecretError::Undecryptable);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretError::Undecryptable)?;
        let mut sealed = sealed.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(model_id.as_bytes()), &mut sealed)
            .map_err(|_| SecretError::Undecryptable)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SecretError::Undecryptable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_the_same_secret_and_model() {
        let sealer = Sealer::new(Some("correct horse battery staple"));
        let sealed = sealer.seal("sk-live-123", "model-1").unwrap();
        assert!(Sealer::is_sealed(&sealed));
        assert!(!sealed.contains("sk-live-123"));
        assert_eq!(sealer.open(&sealed, "model-1").unwrap(), "sk-live-123");
        // Two seals of one key differ (random nonce).
        assert_ne!(sealed, sealer.seal("sk-live-123", "model-1").unwrap());
        assert_eq!(sealer.open(&sealed, "model-2"), Err(SecretError::Undecryptable));
        let other = Sealer::new(Some("another secret"));
        assert_eq!(other.open(&sealed, "model-1"), Err(SecretError::Undecryptable));
        assert_eq!(Sealer::default().open(&sealed, "model-1"), Err(SecretError::NoKey));
    }

    #[test]
    fn without_a_secret_keys_pass_through() {
        let sealer = Sealer::new(None);
        assert_eq!(sealer.seal("sk-1", "m").unwrap(), "sk-1");
        assert_eq!(sealer.open("sk-1", "m").unwrap(), "sk-1");
        assert!(!Sealer::new(Some("")).is_active());
        // A sealer with a secret still reads keys stored before the secret was set.
        assert_eq!(Sealer::new(Some("s")).open("sk-1", "m").unwrap(), "sk-1");
        assert_eq!(
            Sealer::new(Some("s")).open("enc:v1:!!", "m"),
            Err(SecretError::Undecryptable)
        );
    }
}

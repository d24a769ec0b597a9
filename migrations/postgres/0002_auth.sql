-- Twin of ../0002_auth.sql (the same statements): optional passwords (argon2id PHC strings)
-- and bearer tokens, stored as their SHA-256 (hex) so a leaked database holds no usable token.

ALTER TABLE users ADD COLUMN password_hash TEXT;

CREATE TABLE auth_tokens (
    token_hash  TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
CREATE INDEX auth_tokens_user_id ON auth_tokens(user_id);

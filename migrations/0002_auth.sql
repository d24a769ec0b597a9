-- Security: optional passwords (argon2id PHC strings) and bearer tokens.
-- Tokens are stored as their SHA-256 (hex): a leaked database holds no usable token.
-- Portable SQL: the same statements run on SQLite and PostgreSQL.

ALTER TABLE users ADD COLUMN password_hash TEXT;

CREATE TABLE auth_tokens (
    token_hash  TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
CREATE INDEX auth_tokens_user_id ON auth_tokens(user_id);

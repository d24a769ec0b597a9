-- Kafka's schema on PostgreSQL: the same tables as ../0001_init.sql (integer columns are
-- BIGINT so that sqlx's Any driver reads them as i64 on both databases). Each migration of
-- ../ has its twin here under the same number; PostgreSQL-only ones are numbered from 1001.

CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    email       TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

CREATE TABLE workspaces (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    owner_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  TEXT NOT NULL
);
CREATE INDEX workspaces_owner_id ON workspaces(owner_id);

-- Files of a workspace. A file uploaded to a chat is also a workspace file with the same id.
CREATE TABLE files (
    id            TEXT PRIMARY KEY,
    filename      TEXT NOT NULL,
    path          TEXT NOT NULL,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    created_at    TEXT NOT NULL
);
CREATE INDEX files_workspace_id ON files(workspace_id);

CREATE TABLE chats (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    last_updated  TEXT,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    workspace_id  TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE
);
CREATE INDEX chats_user_id ON chats(user_id);
CREATE INDEX chats_workspace_id ON chats(workspace_id);

-- `content` holds JSON: a string for text entries, an object for file entries.
CREATE TABLE chat_conversations (
    id          TEXT PRIMARY KEY,
    chat_id     TEXT NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    seq         BIGINT NOT NULL,
    role        TEXT NOT NULL,
    type        TEXT NOT NULL,
    content     TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (chat_id, seq)
);
CREATE INDEX chat_conversations_chat_id ON chat_conversations(chat_id);

-- Files of a chat. `kind` is based | text | image | binary; `extracted_text` is the text
-- the agent and clients see, extracted once at upload. Generated `.based` files have no
-- bytes on disk (`path` is empty): their content lives in their versions.
CREATE TABLE chat_files (
    id              TEXT PRIMARY KEY,
    filename        TEXT NOT NULL,
    path            TEXT NOT NULL,
    chat_id         TEXT NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    kind            TEXT NOT NULL,
    extracted_text  TEXT,
    created_at      TEXT NOT NULL
);
CREATE INDEX chat_files_chat_id ON chat_files(chat_id);

CREATE TABLE chat_file_versions (
    id            TEXT PRIMARY KEY,
    chat_file_id  TEXT NOT NULL REFERENCES chat_files(id) ON DELETE CASCADE,
    seq           BIGINT NOT NULL,
    timestamp     TEXT NOT NULL,
    content       TEXT NOT NULL,
    UNIQUE (chat_file_id, seq)
);
CREATE INDEX chat_file_versions_chat_file_id ON chat_file_versions(chat_file_id);

-- `ak` is the model's API key: written, read by the agent, never sent to a client.
CREATE TABLE models (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    ak          TEXT NOT NULL,
    base_url    TEXT NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  TEXT NOT NULL
);
CREATE INDEX models_user_id ON models(user_id);

-- Issue 21: one row per finished agent run: how it ended and the tokens its model calls used
-- (NULL when the provider did not say). `message_seq` is the conversation entry it produced.
CREATE TABLE agent_runs (
    id                 TEXT PRIMARY KEY,
    chat_id            TEXT NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    model              TEXT NOT NULL,
    outcome            TEXT NOT NULL,
    message_seq        BIGINT,
    prompt_tokens      BIGINT,
    completion_tokens  BIGINT,
    total_tokens       BIGINT,
    started_at         TEXT NOT NULL,
    finished_at        TEXT NOT NULL
);
CREATE INDEX agent_runs_chat_id ON agent_runs(chat_id);

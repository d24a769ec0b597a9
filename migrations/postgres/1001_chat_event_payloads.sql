-- Live chat events travel between server instances as NOTIFY payloads, which PostgreSQL caps
-- at 8000 bytes. A bigger event (a large file's content) is written here and the NOTIFY
-- carries only its id; listeners fetch it by id. Rows are short-lived: each insert removes
-- those older than a few minutes, long after every listener has read them.
CREATE TABLE chat_event_payloads (
    id          TEXT PRIMARY KEY,
    body        TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX chat_event_payloads_created_at ON chat_event_payloads(created_at);

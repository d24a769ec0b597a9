-- Performance (issue 9): drop indexes that duplicate the leading column of a UNIQUE
-- constraint. `UNIQUE (chat_id, seq)` and `UNIQUE (chat_file_id, seq)` already index those
-- foreign keys, so each insert maintained one B-tree too many. Portable SQL.
DROP INDEX IF EXISTS chat_conversations_chat_id;
DROP INDEX IF EXISTS chat_file_versions_chat_file_id;

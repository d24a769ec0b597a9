-- Issue 17: a per-user storage quota over uploads and conversation. What a user stores is
-- counted on the row that owns it, so that deleting the owner (a chat, a chat file, a file)
-- forgets its bytes with it and no counter can drift: `files.size` (the uploaded bytes),
-- `chats.stored_bytes` (its conversation entries), `chat_files.stored_bytes` (its versions).
-- A user's total is the sum over their rows (`Store::stored_bytes`). Files uploaded before
-- this migration count as 0 bytes: their size was not recorded.
ALTER TABLE files ADD COLUMN size BIGINT NOT NULL DEFAULT 0;
ALTER TABLE chats ADD COLUMN stored_bytes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE chat_files ADD COLUMN stored_bytes BIGINT NOT NULL DEFAULT 0;

UPDATE chats SET stored_bytes =
    (SELECT COALESCE(SUM(octet_length(content)), 0) FROM chat_conversations WHERE chat_id = chats.id);
UPDATE chat_files SET stored_bytes =
    (SELECT COALESCE(SUM(octet_length(content)), 0) FROM chat_file_versions WHERE chat_file_id = chat_files.id);

-- The entry's bytes join the chat's count in the statement that already touches the chat.
DROP TRIGGER chat_conversations_touch_chat;
CREATE TRIGGER chat_conversations_touch_chat AFTER INSERT ON chat_conversations
BEGIN
    UPDATE chats SET last_updated = NEW.created_at, stored_bytes = stored_bytes + octet_length(NEW.content)
    WHERE id = NEW.chat_id;
END;

CREATE TRIGGER chat_file_versions_count_bytes AFTER INSERT ON chat_file_versions
BEGIN
    UPDATE chat_files SET stored_bytes = stored_bytes + octet_length(NEW.content) WHERE id = NEW.chat_file_id;
END;

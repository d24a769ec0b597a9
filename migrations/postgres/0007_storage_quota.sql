-- Twin of ../0007_storage_quota.sql: a user's stored bytes, counted on the rows that own them
-- (`files.size`, `chats.stored_bytes`, `chat_files.stored_bytes`), kept by triggers.
ALTER TABLE files ADD COLUMN size BIGINT NOT NULL DEFAULT 0;
ALTER TABLE chats ADD COLUMN stored_bytes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE chat_files ADD COLUMN stored_bytes BIGINT NOT NULL DEFAULT 0;

UPDATE chats SET stored_bytes =
    (SELECT COALESCE(SUM(octet_length(content)), 0) FROM chat_conversations WHERE chat_id = chats.id);
UPDATE chat_files SET stored_bytes =
    (SELECT COALESCE(SUM(octet_length(content)), 0) FROM chat_file_versions WHERE chat_file_id = chat_files.id);

CREATE FUNCTION count_conversation_bytes() RETURNS trigger AS $$
BEGIN
    UPDATE chats SET stored_bytes = stored_bytes + octet_length(NEW.content) WHERE id = NEW.chat_id;
    RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER chat_conversations_count_bytes AFTER INSERT ON chat_conversations
    FOR EACH ROW EXECUTE FUNCTION count_conversation_bytes();

CREATE FUNCTION count_version_bytes() RETURNS trigger AS $$
BEGIN
    UPDATE chat_files SET stored_bytes = stored_bytes + octet_length(NEW.content) WHERE id = NEW.chat_file_id;
    RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER chat_file_versions_count_bytes AFTER INSERT ON chat_file_versions
    FOR EACH ROW EXECUTE FUNCTION count_version_bytes();

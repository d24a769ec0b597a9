-- Issue 19: on SQLite a new conversation entry touches its chat's `last_updated` itself, so
-- that the one writer saves a group of appends (the echoes of many sessions) with one
-- statement, in one call to SQLite, committed on its own. PostgreSQL needs no twin: its
-- writers touch the chat first (`lock_chat`), which also locks the chat's row.
CREATE TRIGGER chat_conversations_touch_chat AFTER INSERT ON chat_conversations
BEGIN
    UPDATE chats SET last_updated = NEW.created_at WHERE id = NEW.chat_id;
END;

-- Twin of ../0005_conversation_rowid.sql. Inserts no longer name a conversation entry's id
-- (SQLite numbers its rows itself); here the TEXT key is kept and filled in by default.
ALTER TABLE chat_conversations ALTER COLUMN id SET DEFAULT gen_random_uuid()::text;

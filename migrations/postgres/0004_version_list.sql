-- Twin of ../0004_version_list.sql (the same statement): the version list of an initial
-- payload read from the index alone, never from rows that hold the whole file.
CREATE INDEX chat_file_versions_list ON chat_file_versions (chat_file_id, seq, id, timestamp);

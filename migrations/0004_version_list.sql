-- Performance (issue 9): an initial payload lists every version of a chat's files by id, seq
-- and timestamp. Each version row also holds the whole file (kilobytes), so reading the list
-- from the table touched a page or more per version; from this index it is an index-only
-- scan. Portable SQL.
CREATE INDEX chat_file_versions_list ON chat_file_versions (chat_file_id, seq, id, timestamp);

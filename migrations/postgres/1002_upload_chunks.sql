-- Uploaded bytes in the database (`--upload-store db`, the default on PostgreSQL), so that
-- several instances need no shared disk. A file's bytes are rows of at most 1 MiB, written in
-- the transaction that records the file and removed with its `files` row (ON DELETE CASCADE):
-- a failed upload leaves no chunks, a deleted file (or workspace, or user) leaves none.
-- A chat file always has its `files` twin with the same id, so one foreign key covers both.
CREATE TABLE upload_chunks (
    file_id  TEXT NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    seq      BIGINT NOT NULL,
    data     BYTEA NOT NULL,
    PRIMARY KEY (file_id, seq)
);
-- Uploads are mostly compressed already (PDFs, images): store them out of line without
-- trying to compress them again.
ALTER TABLE upload_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

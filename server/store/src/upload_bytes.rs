//! Uploaded bytes kept in the database (`upload_chunks`, PostgreSQL): rows of at most
//! [`CHUNK_BYTES`], written in the transaction that records their file and removed with its
//! `files` row by the foreign key, so bytes and rows never part. Reads go a chunk at a time.

use std::io;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use sqlx::{AnyConnection, Row};

use super::{Backend, Store, StoreError, StoreResult};

/// Bytes per stored chunk: a read holds one chunk at a time, not the file.
pub const CHUNK_BYTES: usize = 1024 * 1024;

/// An upload's bytes, to be stored with its row in the database.
#[derive(Clone, PartialEq, Eq)]
pub struct DbBytes(pub Bytes);

impl std::fmt::Debug for DbBytes {
    // Never print an upload's content (logs, test failures).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DbBytes({} bytes)", self.0.len())
    }
}

/// The stored size of a file's bytes: its chunks and their total length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredBytes {
    pub chunks: i64,
    pub len: u64,
}

/// Writes `bytes` as the chunks of `file_id` (whose `files` row must exist). An empty file is
/// one empty chunk, so that "has chunks" always means "its bytes are here".
pub(super) async fn insert_chunks(conn: &mut AnyConnection, file_id: &str, bytes: &[u8]) -> StoreResult<()> {
    let empty: &[u8] = &[];
    let chunks: Vec<&[u8]> = match bytes.is_empty() {
        true => vec![empty],
        false => bytes.chunks(CHUNK_BYTES).collect(),
    };
    for (seq, chunk) in chunks.into_iter().enumerate() {
        sqlx::query("INSERT INTO upload_chunks (file_id, seq, data) VALUES ($1, $2, $3)")
            .bind(file_id)
            .bind(seq as i64)
            .bind(chunk)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

impl Store {
    fn require_postgres(&self) -> StoreResult<()> {
        match self.backend {
            Backend::Postgres => Ok(()),
            Backend::Sqlite => Err(StoreError::Write(
                "uploaded bytes are kept in the database only on PostgreSQL; SQLite keeps them in the data directory"
                    .into(),
            )),
        }
    }

    /// Whether this database can hold uploaded bytes (PostgreSQL).
    pub fn can_store_upload_bytes(&self) -> bool {
        self.backend == Backend::Postgres
    }

    /// The size of a file's bytes in the database, `None` when it has none there.
    pub async fn upload_bytes_size(&self, file_id: &str) -> StoreResult<Option<StoredBytes>> {
        self.require_postgres()?;
        let row = sqlx::query(
            "SELECT COUNT(*) AS chunks, CAST(COALESCE(SUM(LENGTH(data)), 0) AS BIGINT) AS len
             FROM upload_chunks WHERE file_id = $1",
        )
        .bind(file_id)
        .fetch_one(&self.pool)
        .await?;
        let chunks: i64 = row.get("chunks");
        let len: i64 = row.get("len");
        Ok((chunks > 0).then_some(StoredBytes {
            chunks,
            len: len as u64,
        }))
    }

    /// A file's bytes as a stream of its chunks, read one query at a time. A file deleted
    /// meanwhile ends the stream with an error.
    pub fn upload_bytes_stream(&self, file_id: &str, size: StoredBytes) -> BoxStream<'static, io::Result<Bytes>> {
        let (pool, file_id) = (self.pool.clone(), file_id.to_owned());
        Box::pin(futures_util::stream::try_unfold(0i64, move |seq| {
            let (pool, file_id) = (pool.clone(), file_id.clone());
            async move {
                if seq >= size.chunks {
                    return Ok(None);
                }
                let row = sqlx::query("SELECT data FROM upload_chunks WHERE file_id = $1 AND seq = $2")
                    .bind(&file_id)
                    .bind(seq)
                    .fetch_optional(&pool)
                    .await
                    .map_err(io::Error::other)?;
                let row = row.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the file was deleted"))?;
                let data: Vec<u8> = row.get("data");
                Ok(Some((Bytes::from(data), seq + 1)))
            }
        }))
    }

    /// Stores `bytes` as the file's bytes in one transaction, replacing any there (the
    /// `uploads to-db` command). A file whose row is gone is `NotFound`.
    pub async fn put_upload_bytes(&self, file_id: &str, bytes: Bytes) -> StoreResult<()> {
        self.require_postgres()?;
        let file_id = file_id.to_owned();
        self.write(move |conn| {
            Box::pin(async move {
                let exists = sqlx::query("SELECT id FROM files WHERE id = $1 FOR UPDATE")
                    .bind(&file_id)
                    .fetch_optional(&mut *conn)
                    .await?;
                super::found(exists, "File")?;
                sqlx::query("DELETE FROM upload_chunks WHERE file_id = $1")
                    .bind(&file_id)
                    .execute(&mut *conn)
                    .await?;
                insert_chunks(conn, &file_id, &bytes).await
            })
        })
        .await
    }

    /// Removes a file's bytes from the database, keeping its rows (`uploads to-dir
    /// --remove-source`, once the bytes are in the data directory).
    pub async fn delete_upload_bytes(&self, file_id: &str) -> StoreResult<()> {
        self.require_postgres()?;
        sqlx::query("DELETE FROM upload_chunks WHERE file_id = $1")
            .bind(file_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every uploaded file with bytes somewhere, as `(id, stored path)`, by ID: the workspace
    /// rows (a chat upload has one too). Generated `.based` files have no path.
    pub async fn uploaded_files(&self) -> StoreResult<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT id, path FROM files WHERE path <> '' ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|r| (r.get("id"), r.get("path"))).collect())
    }
}

//! Where uploaded bytes live: one small interface, [`ByteStore`], keyed by the stored path
//! (`uploads/files/<id>_<name>`) that the database records.
//!
//! [`LocalDir`] keeps them under the data directory, which is right for one instance. Several
//! instances on PostgreSQL keep them in the database instead (`Uploads::in_database`, not a
//! `ByteStore`: its writes belong to the transaction that records the file). An S3-compatible
//! bucket would implement the same four calls (`put` = PutObject, `delete` = DeleteObject,
//! `rename` = CopyObject then DeleteObject, `open` = GetObject) and be handed to
//! `Uploads::with_store`; nothing else changes, since the rest of the server only sees keys.

use std::io;
use std::path::{Component, Path, PathBuf};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;

/// Stored bytes being read: their length, then the bytes a piece at a time.
pub struct Download {
    pub len: u64,
    pub chunks: BoxStream<'static, io::Result<Bytes>>,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// Stored bytes by key. Keys are relative paths of plain components (checked by the store).
pub trait ByteStore: Send + Sync + std::fmt::Debug {
    /// Writes `bytes` under `key`, replacing what was there.
    fn put<'a>(&'a self, key: &'a str, bytes: &'a [u8]) -> BoxFuture<'a, io::Result<()>>;
    /// Removes `key`; a key already gone is not an error.
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, io::Result<()>>;
    /// Moves the bytes of `from` to `to`.
    fn rename<'a>(&'a self, from: &'a str, to: &'a str) -> BoxFuture<'a, io::Result<()>>;
    /// Reads `key` as a stream; a missing key is `NotFound`.
    fn open<'a>(&'a self, key: &'a str) -> BoxFuture<'a, io::Result<Download>>;
}

/// Bytes as files under a local directory (the data directory).
#[derive(Debug, Clone)]
pub struct LocalDir {
    root: PathBuf,
}

impl LocalDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The absolute path of a key, refusing anything that could leave the directory.
    pub fn path_of(&self, key: &str) -> io::Result<PathBuf> {
        let relative = Path::new(key);
        if !relative.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "stored path leaves the data directory",
            ));
        }
        Ok(self.root.join(relative))
    }
}

impl ByteStore for LocalDir {
    fn put<'a>(&'a self, key: &'a str, bytes: &'a [u8]) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            let path = self.path_of(key)?;
            if let Some(dir) = path.parent() {
                tokio::fs::create_dir_all(dir).await?;
            }
            tokio::fs::write(&path, bytes).await
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            match tokio::fs::remove_file(self.path_of(key)?).await {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        })
    }

    fn rename<'a>(&'a self, from: &'a str, to: &'a str) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move { tokio::fs::rename(self.path_of(from)?, self.path_of(to)?).await })
    }

    fn open<'a>(&'a self, key: &'a str) -> BoxFuture<'a, io::Result<Download>> {
        Box::pin(async move {
            let file = tokio::fs::File::open(self.path_of(key)?).await?;
            let len = file.metadata().await?.len();
            let chunks = tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024);
            Ok(Download {
                len,
                chunks: Box::pin(chunks),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_dir_puts_renames_deletes_and_refuses_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDir::new(dir.path());
        store.put("uploads/files/a_x.txt", b"hi").await.unwrap();
        store
            .rename("uploads/files/a_x.txt", "uploads/files/a_y.txt")
            .await
            .unwrap();
        assert_eq!(std::fs::read(dir.path().join("uploads/files/a_y.txt")).unwrap(), b"hi");
        let download = store.open("uploads/files/a_y.txt").await.unwrap();
        assert_eq!(download.len, 2);
        let read: Vec<Bytes> = futures_util::TryStreamExt::try_collect(download.chunks).await.unwrap();
        assert_eq!(read.concat(), b"hi");
        store.delete("uploads/files/a_y.txt").await.unwrap();
        store.delete("uploads/files/a_y.txt").await.unwrap();
        let gone = store.open("uploads/files/a_y.txt").await.unwrap_err();
        assert_eq!(gone.kind(), io::ErrorKind::NotFound);
        assert!(store.put("../escape", b"no").await.is_err());
        assert!(store.put("/abs", b"no").await.is_err());
    }
}

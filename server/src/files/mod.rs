//! Uploaded bytes: where they are stored, how names are made safe, what text they hold.
//!
//! Every upload path (REST and WebSocket) goes through [`Uploads`], so the rules are the same
//! everywhere. Stored paths are relative to the data directory (`uploads/files/<id>_<name>`),
//! as the original returned them.

mod extract;
pub mod extractor;
pub mod moving;
mod names;
mod storage;

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

pub use extract::{Extracted, classify};
pub use extractor::{ExtractLimits, Extractor};
pub use names::sanitize_filename;
pub use storage::{ByteStore, Download, LocalDir};

use crate::store::{DbBytes, NewChatFile, NewFile, Store, StoredFile};

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("{0}")]
    BadName(String),
    #[error("File {name:?} is larger than the {limit_mib} MiB upload limit.")]
    TooLarge { name: String, limit_mib: u64 },
    #[error("At most {limit} files may be uploaded at once; this upload has {count}.")]
    TooMany { count: usize, limit: usize },
    #[error("could not store the upload: {0}")]
    Io(#[from] io::Error),
}

/// An upload whose bytes are stored, ready to be recorded.
#[derive(Debug, Clone)]
pub struct SavedUpload {
    pub file: NewFile,
    pub extracted: Extracted,
}

impl SavedUpload {
    pub fn into_chat_file(self) -> NewChatFile {
        NewChatFile {
            file: self.file,
            kind: self.extracted.kind,
            extracted_text: self.extracted.text,
        }
    }
}

/// Where uploads go, relative to the data directory.
pub const UPLOAD_DIR: &str = "uploads/files";

/// The upload store: names, limits and text extraction here, the bytes in their [`Home`].
#[derive(Debug, Clone)]
pub struct Uploads {
    home: Home,
    extractor: Extractor,
    max_files: usize,
}

/// Where uploaded bytes live.
#[derive(Debug, Clone)]
enum Home {
    /// A [`ByteStore`]: the data directory by default (see `storage` for a shared one).
    Store(Arc<dyn ByteStore>),
    /// The database (PostgreSQL), written and deleted with the file's rows. Bytes of files
    /// uploaded before the switch may still be in the data directory (`local`) until
    /// `kafka-server uploads to-db` has moved them: reads fall back to it, and renames and
    /// deletes reach it too.
    Database { store: Store, local: LocalDir },
}

/// Files of one upload request at most, unless `with_max_files` says otherwise.
pub const DEFAULT_MAX_FILES: usize = 100;

impl Uploads {
    /// Uploads kept under `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self::with_store(Arc::new(LocalDir::new(data_dir)))
    }

    /// Uploads kept in `bytes`, e.g. a bucket every instance shares.
    pub fn with_store(bytes: Arc<dyn ByteStore>) -> Self {
        Self::with_home(Home::Store(bytes))
    }

    /// Uploads kept in the database `store` (PostgreSQL), with those not moved there yet
    /// under `data_dir`.
    pub fn in_database(store: Store, data_dir: impl Into<PathBuf>) -> Self {
        Self::with_home(Home::Database {
            store,
            local: LocalDir::new(data_dir),
        })
    }

    fn with_home(home: Home) -> Self {
        Self {
            home,
            extractor: Extractor::new(ExtractLimits::default()),
            max_files: DEFAULT_MAX_FILES,
        }
    }

    /// At most `max_files` files per upload request.
    pub fn with_max_files(self, max_files: usize) -> Self {
        Self {
            max_files: max_files.max(1),
            ..self
        }
    }

    /// PDF text read by children within `limits`.
    pub fn with_extract_limits(self, limits: ExtractLimits) -> Self {
        Self {
            extractor: Extractor::new(limits),
            ..self
        }
    }

    /// What an upload holds; a PDF is read by a child process (see `extractor`).
    async fn extract(&self, name: &str, bytes: &[u8]) -> Extracted {
        if extract::is_pdf(name) {
            extract::pdf(name, self.extractor.pdf_text(bytes).await)
        } else {
            classify(name, bytes)
        }
    }

    /// Kills running text readers and starts no more (at shutdown).
    pub fn stop_readers(&self) {
        self.extractor.stop();
    }

    /// The stored path for a file: `uploads/files/<id>_<name>`. `name` must be sanitized.
    pub fn stored_path(id: &str, name: &str) -> String {
        format!("{UPLOAD_DIR}/{id}_{name}")
    }

    /// Whether the bytes are kept in the database (written with the rows, see `NewFile`).
    pub fn in_db(&self) -> bool {
        matches!(self.home, Home::Database { .. })
    }

    /// Checks, stores and classifies uploads `(client name, bytes)`. All or nothing: on any
    /// error the bytes already written are removed again. In the database, nothing is
    /// written here: the bytes travel in `NewFile::db_bytes` to the transaction that records
    /// the rows.
    pub async fn save_all(
        &self,
        uploads: Vec<(String, bytes::Bytes)>,
        max_bytes: u64,
    ) -> Result<Vec<SavedUpload>, UploadError> {
        if uploads.len() > self.max_files {
            return Err(UploadError::TooMany {
                count: uploads.len(),
                limit: self.max_files,
            });
        }
        let mut checked = Vec::with_capacity(uploads.len());
        for (raw_name, bytes) in uploads {
            let name = sanitize_filename(&raw_name).map_err(UploadError::BadName)?;
            if bytes.len() as u64 > max_bytes {
                return Err(UploadError::TooLarge {
                    name,
                    limit_mib: max_bytes / (1024 * 1024),
                });
            }
            checked.push((name, bytes));
        }
        let mut saved: Vec<SavedUpload> = Vec::with_capacity(checked.len());
        for (name, bytes) in checked {
            let id = crate::store::new_id();
            let path = match self.save(&id, &name, &bytes).await {
                Ok(path) => path,
                Err(error) => {
                    let paths: Vec<String> = saved.iter().map(|s| s.file.path.clone()).collect();
                    self.remove_all(&paths).await;
                    return Err(error.into());
                }
            };
            let extracted = self.extract(&name, &bytes).await;
            let size = bytes.len() as u64;
            let db_bytes = self.in_db().then(|| DbBytes(bytes));
            saved.push(SavedUpload {
                file: NewFile {
                    id,
                    filename: name,
                    path,
                    size,
                    db_bytes,
                },
                extracted,
            });
        }
        Ok(saved)
    }

    /// Writes the bytes (to a `ByteStore`; the database takes them with the rows) and
    /// returns the stored path.
    async fn save(&self, id: &str, name: &str, bytes: &[u8]) -> io::Result<String> {
        let stored = Self::stored_path(id, name);
        if let Home::Store(store) = &self.home {
            store.put(&stored, bytes).await?;
        }
        Ok(stored)
    }

    /// Removes stored bytes; a file already gone is not an error. In the database they went
    /// with the rows; a copy left in the data directory goes now.
    pub async fn remove(&self, stored: &str) -> io::Result<()> {
        match &self.home {
            Home::Store(store) => store.delete(stored).await,
            Home::Database { local, .. } => local.delete(stored).await,
        }
    }

    /// Removes each path, logging (not failing on) what could not be removed: the rows are
    /// already gone, and leftover bytes are harmless.
    pub async fn remove_all(&self, stored: &[String]) {
        for path in stored {
            self.discard(path).await;
        }
    }

    /// Removes one stored file, logging a failure (see `remove_all`).
    pub async fn discard(&self, stored: &str) {
        if let Err(error) = self.remove(stored).await {
            tracing::warn!(path = stored, %error, "could not remove uploaded bytes");
        }
    }

    /// Moves stored bytes to the name `new_name`; returns the new stored path.
    pub async fn rename(&self, stored: &str, id: &str, new_name: &str) -> io::Result<String> {
        let renamed = Self::stored_path(id, new_name);
        match &self.home {
            Home::Store(store) => store.rename(stored, &renamed).await?,
            // Chunks are keyed by the file's ID: only the row's path changes. A copy still in
            // the data directory follows the name.
            Home::Database { local, .. } => match local.rename(stored, &renamed).await {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            },
        }
        Ok(renamed)
    }

    /// Reads a file's bytes as a stream (one chunk in memory at a time). A file without
    /// stored bytes (a generated `.based` file) or whose bytes are gone is `NotFound`.
    pub async fn open(&self, file: &StoredFile) -> io::Result<Download> {
        if file.path.is_empty() {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no uploaded bytes"));
        }
        match &self.home {
            Home::Store(store) => store.open(&file.path).await,
            Home::Database { store, local } => match store.upload_bytes_size(&file.id).await {
                Ok(Some(size)) => Ok(Download {
                    len: size.len,
                    chunks: store.upload_bytes_stream(&file.id, size),
                }),
                Ok(None) => local.open(&file.path).await,
                Err(error) => Err(io::Error::other(error)),
            },
        }
    }
}

//! Uploaded bytes: where they are stored, how names are made safe, what text they hold.
//!
//! Every upload path (REST and WebSocket) goes through [`Uploads`], so the rules are the same
//! everywhere. Stored paths are relative to the data directory (`uploads/files/<id>_<name>`),
//! as the original returned them.

mod extract;
pub mod extractor;
mod names;
mod storage;

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

pub use extract::{Extracted, classify};
pub use extractor::{ExtractLimits, Extractor};
pub use names::sanitize_filename;
pub use storage::{ByteStore, LocalDir};

use crate::store::{NewChatFile, NewFile};

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

/// The upload store: names, limits and text extraction here, the bytes in a [`ByteStore`]
/// (a local directory by default; see `storage` for a shared one).
#[derive(Debug, Clone)]
pub struct Uploads {
    bytes: Arc<dyn ByteStore>,
    extractor: Extractor,
    max_files: usize,
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
        Self {
            bytes,
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

    /// Checks, stores and classifies uploads `(client name, bytes)`. All or nothing: on any
    /// error the bytes already written are removed again.
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
            saved.push(SavedUpload {
                file: NewFile {
                    id,
                    filename: name,
                    path,
                    size: bytes.len() as u64,
                },
                extracted,
            });
        }
        Ok(saved)
    }

    /// Writes the bytes and returns the stored path.
    pub async fn save(&self, id: &str, name: &str, bytes: &[u8]) -> io::Result<String> {
        let stored = Self::stored_path(id, name);
        self.bytes.put(&stored, bytes).await?;
        Ok(stored)
    }

    /// Removes stored bytes; a file already gone is not an error.
    pub async fn remove(&self, stored: &str) -> io::Result<()> {
        self.bytes.delete(stored).await
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
        self.bytes.rename(stored, &renamed).await?;
        Ok(renamed)
    }
}

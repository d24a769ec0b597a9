//! The per-user storage quota (`--storage-quota-mb`): uploads, conversation entries and file
//! versions together.
//!
//! The database keeps each user's count (see migration 0007 and [`Store::stored_bytes`]); this
//! module decides before a write whether it fits. Reading the count for every chat message
//! would add a query to the hottest path, so a count read recently is reused, plus what this
//! server admitted since. Another instance's writes (PostgreSQL) are therefore seen within
//! [`FRESH`], and a refusal always reads the count again, so deleting files frees room at once.
//! The server's own additions to an admitted request (the agent's answer, a deletion note) are
//! not refused: they are bounded by the reply cap, and a quota must never block a delete.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::store::{Store, StoreError};

/// How long a count read from the database is reused.
const FRESH: Duration = Duration::from_secs(2);
/// Past this many remembered users, stale entries are dropped.
const REMEMBERED: usize = 10_000;

const MIB: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    #[error(
        "Storage quota reached: you store {} of your {} (--storage-quota-mb) and this needs {} more. \
         Delete files or chats to make room.",
        in_mib(*used), in_mib(*limit), in_mib(*needed)
    )]
    Exceeded { used: u64, needed: u64, limit: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn in_mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB as f64)
}

#[derive(Debug)]
pub struct StorageQuota {
    /// Bytes one user may store; `None`: no limit.
    limit: Option<u64>,
    counts: Mutex<HashMap<String, Count>>,
}

/// A user's stored bytes as read at `read_at`, plus what was admitted since.
#[derive(Debug, Clone, Copy)]
struct Count {
    bytes: u64,
    read_at: Instant,
}

impl StorageQuota {
    pub fn new(limit: Option<u64>) -> Self {
        Self {
            limit,
            counts: Mutex::default(),
        }
    }

    /// Admits a write that adds `needed` bytes to what `user_id` stores, or says why not.
    pub async fn admit(&self, store: &Store, user_id: &str, needed: u64) -> Result<(), QuotaError> {
        let Some(limit) = self.limit else {
            return Ok(());
        };
        if self.admit_counted(user_id, needed, limit) {
            return Ok(());
        }
        let used = store.stored_bytes(user_id).await?;
        if used.saturating_add(needed) > limit {
            self.forget(user_id);
            return Err(QuotaError::Exceeded { used, needed, limit });
        }
        self.remember(user_id, used + needed);
        Ok(())
    }

    /// Admits from a fresh remembered count, adding to it; false when the database must say.
    fn admit_counted(&self, user_id: &str, needed: u64, limit: u64) -> bool {
        let mut counts = self.lock();
        match counts.get_mut(user_id) {
            Some(count) if count.read_at.elapsed() < FRESH && count.bytes.saturating_add(needed) <= limit => {
                count.bytes += needed;
                true
            }
            _ => false,
        }
    }

    fn remember(&self, user_id: &str, bytes: u64) {
        let mut counts = self.lock();
        if counts.len() >= REMEMBERED {
            counts.retain(|_, count| count.read_at.elapsed() < FRESH);
        }
        let read_at = Instant::now();
        counts.insert(user_id.to_owned(), Count { bytes, read_at });
    }

    fn forget(&self, user_id: &str) {
        self.lock().remove(user_id);
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, HashMap<String, Count>> {
        self.counts.lock()
    }
}

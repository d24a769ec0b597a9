//! The journal copier: a thread with a connection of its own that copies journaled chat
//! messages into the conversation table (see `append_journal`), so that the write thread
//! goes on answering appends while a copy runs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;

use rusqlite::{Connection, ErrorCode, TransactionBehavior, params};
use tokio::sync::oneshot;

use super::append_journal::{JournalEntry, JournalLock, Segment};
use super::{StoreError, StoreResult};

/// The copier thread's nice value: the lowest priority (see `run`).
const COPIER_NICE: i32 = 19;
/// Most entries copied in one transaction when handovers have queued up: a bound on how long
/// the copy holds the database's write lock.
const MAX_COPY: usize = 16_384;

/// Entries journaled and entries copied into the table, counted since start-up. Equal counts
/// mean a reader has nothing to wait for.
#[derive(Debug, Default)]
pub(super) struct Progress {
    pub logged: AtomicU64,
    pub copied: AtomicU64,
}

impl Progress {
    /// Entries journaled but not yet in the table.
    pub(super) fn uncopied(&self) -> u64 {
        let copied = self.copied.load(Ordering::Acquire);
        self.logged.load(Ordering::Acquire).saturating_sub(copied)
    }

    pub(super) fn settled(&self) -> bool {
        self.uncopied() == 0
    }
}

/// Answered once everything handed over before has been copied (or the copy failed).
pub(super) type Waiter = oneshot::Sender<StoreResult<()>>;

/// What the write thread hands over: entries to copy, the finished journal segment that holds
/// them, and who waits for them.
pub(super) struct Handover {
    pub entries: Vec<JournalEntry>,
    /// `None` when there are no entries (a waiter for earlier handovers only).
    pub segment: Option<PathBuf>,
    /// `Progress::logged` when handed over: `Progress::copied` once these are in.
    pub through: u64,
    pub waiters: Vec<Waiter>,
}

/// Copies the segments a previous run left into the table, then removes them.
pub(super) fn recover(conn: &mut Connection, segments: Vec<Segment>) -> rusqlite::Result<()> {
    let (paths, entries): (Vec<PathBuf>, Vec<Vec<JournalEntry>>) =
        segments.into_iter().map(|s| (s.path, s.entries)).unzip();
    let entries: Vec<JournalEntry> = entries.into_iter().flatten().collect();
    if !entries.is_empty() {
        tracing::info!(
            entries = entries.len(),
            "copying chat messages journaled by the last run"
        );
    }
    copy(conn, &entries)?;
    for path in paths {
        remove(&path);
    }
    Ok(())
}

/// Starts the thread; it ends when the sender is dropped and everything handed over is done.
/// After a copy, it finishes a WAL checkpoint when `finish_checkpoint` asks for one.
/// The thread holds `lock` until it ends: its last copy removes segments.
pub(super) fn start(
    conn: Connection,
    lock: Arc<JournalLock>,
    progress: Arc<Progress>,
    finish_checkpoint: Arc<AtomicBool>,
) -> StoreResult<mpsc::Sender<Handover>> {
    let (handovers, queue) = mpsc::channel();
    thread::Builder::new()
        .name("kafka-journal-copier".into())
        .spawn(move || {
            run(conn, &queue, &progress, &finish_checkpoint);
            drop(lock);
        })
        .map_err(|e| StoreError::Write(format!("start the journal copier: {e}")))?;
    Ok(handovers)
}

fn run(mut conn: Connection, queue: &mpsc::Receiver<Handover>, progress: &Progress, finish_checkpoint: &AtomicBool) {
    // Copies can wait; sessions waiting for an answer cannot. With the copier at normal
    // priority the scheduler shared the two cores with it evenly: 42,000 echoes a second at 10
    // sessions, 37,500 at 100; at the lowest priority it runs on the time they leave over:
    // 46,000–47,600 and 57,000–60,000 (the write thread stops journaling if it falls far behind).
    if let Err(error) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), COPIER_NICE) {
        tracing::debug!(%error, "lowering the journal copier's priority");
    }
    // Entries whose copy failed: tried again, first, with the next handover.
    let mut carried: Vec<JournalEntry> = Vec::new();
    let mut segments: Vec<PathBuf> = Vec::new();
    while let Ok(first) = queue.recv() {
        // Whatever queued meanwhile goes into the same transaction.
        let mut waiters = Vec::new();
        let mut through = 0;
        let mut next = Some(first);
        while let Some(handover) = next.take() {
            carried.extend(handover.entries);
            segments.extend(handover.segment);
            waiters.extend(handover.waiters);
            through = handover.through;
            if carried.len() < MAX_COPY {
                next = queue.try_recv().ok();
            }
        }
        let outcome = match copy(&mut conn, &carried) {
            Ok(()) => {
                carried.clear();
                for segment in segments.drain(..) {
                    remove(&segment);
                }
                progress.copied.store(through, Ordering::Release);
                Ok(())
            }
            Err(error) => {
                tracing::error!(%error, entries = carried.len(), "copying journaled messages into the table (kept; tried again)");
                Err(error.to_string())
            }
        };
        for waiter in waiters {
            let _ = waiter.send(outcome.clone().map_err(StoreError::Write));
        }
        if finish_checkpoint.swap(false, Ordering::AcqRel) {
            // Between transactions of the connection that writes the most WAL frames: the next
            // one can start the WAL over (see `sqlite_writer::checkpoint_while_open`).
            if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::warn!(%error, "wal checkpoint");
            }
        }
    }
}

/// Inserts the entries in one transaction and touches their chats' `last_updated`. An entry
/// whose chat was deleted meanwhile (or that is in the table already: a copy repeated after a
/// crash) is skipped, as the table's constraints say; any other failure rolls everything back.
fn copy(conn: &mut Connection, entries: &[JournalEntry]) -> rusqlite::Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO chat_conversations (chat_id, seq, role, type, content, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let mut newest: HashMap<&str, &str> = HashMap::new();
        for e in entries {
            match insert.execute(params![e.chat_id, e.seq, e.role, e.kind, e.content, e.created_at]) {
                Ok(_) => {
                    newest.insert(&e.chat_id, &e.created_at);
                }
                Err(error) if error.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => {
                    if is_foreign_key(&error) {
                        tracing::debug!(
                            chat_id = e.chat_id,
                            seq = e.seq,
                            "journaled entry of a deleted chat skipped"
                        );
                    } else {
                        tracing::warn!(chat_id = e.chat_id, seq = e.seq, %error, "journaled entry already in the table");
                    }
                }
                Err(error) => return Err(error),
            }
        }
        let mut touch =
            tx.prepare_cached("UPDATE chats SET last_updated = MAX(COALESCE(last_updated, ''), ?1) WHERE id = ?2")?;
        for (chat_id, at) in newest {
            touch.execute(params![at, chat_id])?;
        }
    }
    tx.commit()
}

fn is_foreign_key(error: &rusqlite::Error) -> bool {
    matches!(error, rusqlite::Error::SqliteFailure(e, _) if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY)
}

fn remove(segment: &Path) {
    if let Err(error) = std::fs::remove_file(segment) {
        // Harmless but for the disk: a later start copies it again, skipping what is there.
        tracing::warn!(%error, path = %segment.display(), "removing a copied journal segment");
    }
}

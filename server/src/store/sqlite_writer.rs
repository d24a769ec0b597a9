//! The SQLite write thread: conversation appends and login tokens from every session,
//! committed in batches on one thread of its own.
//!
//! Why: every chat message is committed before its reply goes out. Through the async pool a
//! transaction costs a thread hop per statement (BEGIN, read, insert, touch, COMMIT — each a
//! wake-up of sqlx's connection thread and one back), which capped a server at ≈5,000 echoes
//! a second with the cores mostly idle. Here the statements run synchronously, prepared once,
//! and whatever queued while a commit ran goes into the next transaction: one commit for many
//! sessions, with the same promise — a caller hears back only after its rows are committed.
//!
//! The other write transactions still run on the pool's writer connection; SQLite's file
//! lock makes the two take turns (`LOCK_POLL`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};
use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use super::conversation::MessageRecord;
use super::{StoreError, StoreResult, now_iso};

/// Jobs waiting for the thread before senders wait too.
const QUEUE: usize = 4096;
/// Most jobs in one transaction: a bound on how long the first of them waits.
const MAX_BATCH: usize = 1024;
/// How often the WAL is copied back into the database (see `checkpoint_while_open`).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);
/// The write thread finishes a checkpoint (a pause of a few milliseconds) only once the WAL
/// holds more frames than this (64 MiB of 4 KiB pages); under light load the WAL restarts
/// by itself whenever a checkpoint beside the thread catches up.
const FINISH_CHECKPOINT_FRAMES: i64 = 16_384;
/// While the pool's writer holds the lock, poll this often (SQLite's own busy handler sleeps
/// 1, 2, 5, 10… ms: far longer than the other side's transactions last)…
const LOCK_POLL: Duration = Duration::from_micros(100);
/// …for at most this long, then fail the batch ("database is locked").
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// A login's token row.
#[derive(Debug)]
pub(super) struct NewToken {
    pub token_hash: String,
    pub user_id: String,
    pub expires_at: String,
}

/// One caller's write; answered once the transaction holding it has committed.
enum Job {
    /// Messages appended to a chat, in order; answered with their `seq`.
    Append {
        chat_id: String,
        messages: Vec<MessageRecord>,
        done: oneshot::Sender<StoreResult<Vec<MessageRecord>>>,
    },
    Token {
        token: NewToken,
        done: oneshot::Sender<StoreResult<()>>,
    },
}

/// A job's own outcome, until the commit says whether it stands: the saved messages (none
/// for a token), or why this job wrote nothing.
type Outcome = StoreResult<Vec<MessageRecord>>;

/// The sending half; the thread ends when the last clone is dropped.
#[derive(Debug, Clone)]
pub(super) struct SqliteWriter {
    jobs: mpsc::Sender<Job>,
}

impl SqliteWriter {
    /// Opens the write connection at `path` and starts the thread, plus a task on the current
    /// runtime that checkpoints the WAL through `readers` (the thread's connection has
    /// automatic checkpoints off: they would run inside a commit, with their fsyncs).
    pub(super) fn start(path: &str, readers: AnyPool) -> StoreResult<Self> {
        let conn = open(path).map_err(write_error)?;
        let (jobs, queue) = mpsc::channel(QUEUE);
        let finish_checkpoint = Arc::new(AtomicBool::new(false));
        let finish = finish_checkpoint.clone();
        thread::Builder::new()
            .name("kafka-sqlite-writer".into())
            .spawn(move || write_batches(conn, queue, &finish))
            .map_err(|e| StoreError::Write(format!("start the write thread: {e}")))?;
        tokio::spawn(checkpoint_while_open(jobs.downgrade(), readers, finish_checkpoint));
        Ok(Self { jobs })
    }

    /// Appends `messages` to the chat; returns them with their `seq` once committed.
    pub(super) async fn append(&self, chat_id: &str, messages: Vec<MessageRecord>) -> StoreResult<Vec<MessageRecord>> {
        let (done, answer) = oneshot::channel();
        let chat_id = chat_id.to_owned();
        self.submit(
            Job::Append {
                chat_id,
                messages,
                done,
            },
            answer,
        )
        .await
    }

    /// Records a login's token; returns once committed.
    pub(super) async fn insert_token(&self, token: NewToken) -> StoreResult<()> {
        let (done, answer) = oneshot::channel();
        self.submit(Job::Token { token, done }, answer).await
    }

    async fn submit<T>(&self, job: Job, answer: oneshot::Receiver<StoreResult<T>>) -> StoreResult<T> {
        self.jobs.send(job).await.map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }
}

fn writer_gone() -> StoreError {
    StoreError::Write("the write thread has stopped".into())
}

fn write_error(error: rusqlite::Error) -> StoreError {
    StoreError::Write(error.to_string())
}

/// The connection, set up as the pool's are (WAL and foreign keys stick to the file and
/// the connection respectively), without automatic checkpoints.
fn open(path: &str) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;
         PRAGMA wal_autocheckpoint = 0; PRAGMA cache_size = -16384;",
    )?;
    conn.busy_handler(Some(wait_for_lock))?;
    Ok(conn)
}

/// SQLite's busy callback: `tries` is how many times it was called for this lock.
fn wait_for_lock(tries: i32) -> bool {
    let waited = LOCK_POLL * u32::try_from(tries).unwrap_or(u32::MAX);
    if waited >= LOCK_WAIT {
        return false;
    }
    thread::sleep(LOCK_POLL);
    true
}

/// The thread: gathers a batch, commits it, answers, repeats.
fn write_batches(conn: Connection, mut queue: mpsc::Receiver<Job>, finish_checkpoint: &AtomicBool) {
    let mut writer = Writer {
        conn,
        last_seq: LastSeq::default(),
    };
    while let Some(first) = queue.blocking_recv() {
        let batch = gather(first, &mut queue);
        writer.commit(batch);
        if finish_checkpoint.swap(false, Ordering::AcqRel) {
            writer.finish_checkpoint();
        }
    }
}

/// The batch that starts with `first`: it and whatever queued behind it while the last
/// commit ran. (Waiting, spinning or yielding for more measured no faster: ≈22,000 echoes/s at
/// 10 sessions either way, and they burn a core.)
fn gather(first: Job, queue: &mut mpsc::Receiver<Job>) -> Vec<Job> {
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        match queue.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    batch
}

/// Each chat's last conversation `seq`, remembered across batches while no other connection
/// has written: one index seek per chat saved on most jobs. `PRAGMA data_version` changes
/// when another connection commits (an upload's entry, a deleted chat), and then everything
/// remembered is forgotten.
#[derive(Default)]
struct LastSeq {
    data_version: i64,
    by_chat: HashMap<String, i64>,
}

impl LastSeq {
    /// Chats remembered at most; past this the map starts over.
    const LIMIT: usize = 100_000;

    /// Forgets everything if another connection has committed since the last look. Call
    /// inside the write transaction: nobody else can commit until it ends.
    fn check(&mut self, tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
        let version: i64 = tx.query_row("PRAGMA data_version", [], |row| row.get(0))?;
        if version != self.data_version || self.by_chat.len() > Self::LIMIT {
            self.by_chat.clear();
            self.data_version = version;
        }
        Ok(())
    }

    fn get(&self, tx: &rusqlite::Transaction<'_>, chat_id: &str) -> rusqlite::Result<i64> {
        if let Some(seq) = self.by_chat.get(chat_id) {
            return Ok(*seq);
        }
        // One index seek: `MAX(seq)` would step through the chat's entries.
        tx.prepare_cached("SELECT seq FROM chat_conversations WHERE chat_id = ?1 ORDER BY seq DESC LIMIT 1")?
            .query_row([chat_id], |row| row.get(0))
            .or_else(|e| {
                if e == rusqlite::Error::QueryReturnedNoRows {
                    Ok(0)
                } else {
                    Err(e)
                }
            })
    }
}

struct Writer {
    conn: Connection,
    last_seq: LastSeq,
}

impl Writer {
    /// Under steady writes the checkpoints beside this thread never catch up (frames arrive
    /// while they sync), so the WAL is never restarted: it grew by ≈190 MB a second under the
    /// echo load. After one beside it, this thread checkpoints the few frames written
    /// meanwhile, between batches — a short pause, as the big copy and sync are done — and
    /// the next transaction writes the WAL from its start again.
    fn finish_checkpoint(&mut self) {
        if let Err(error) = self.conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(%error, "wal checkpoint");
        }
    }

    /// Writes the batch in one transaction and answers every job. A job that cannot be
    /// written (its chat was deleted) gets its own error and writes nothing; any other failure
    /// rolls the whole batch back and every job gets it.
    fn commit(&mut self, batch: Vec<Job>) {
        match self.write_all(&batch) {
            Ok(outcomes) => {
                for (job, outcome) in batch.into_iter().zip(outcomes) {
                    answer(job, outcome);
                }
            }
            Err(error) => {
                // What was remembered during the rolled-back transaction is not so.
                self.last_seq.by_chat.clear();
                tracing::error!(%error, jobs = batch.len(), "sqlite write batch failed");
                for job in batch {
                    fail(job, StoreError::Write(error.to_string()));
                }
            }
        }
    }

    fn write_all(&mut self, batch: &[Job]) -> rusqlite::Result<Vec<Outcome>> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        self.last_seq.check(&tx)?;
        let now = now_iso();
        let mut outcomes = Vec::with_capacity(batch.len());
        for job in batch {
            outcomes.push(match job {
                Job::Append { chat_id, messages, .. } => append(&tx, &mut self.last_seq, chat_id, messages, &now)?,
                Job::Token { token, .. } => insert_token(&tx, token, &now).map(|()| Ok(Vec::new()))?,
            });
        }
        tx.commit()?;
        Ok(outcomes)
    }
}

/// Numbers and inserts one job's messages after the chat's last entry, and touches the chat.
/// The outer error aborts the batch; the inner one (no such chat) is this job's answer.
fn append(
    tx: &rusqlite::Transaction<'_>,
    last_seq: &mut LastSeq,
    chat_id: &str,
    messages: &[MessageRecord],
    now: &str,
) -> rusqlite::Result<Outcome> {
    let touched = tx
        .prepare_cached("UPDATE chats SET last_updated = ?1 WHERE id = ?2")?
        .execute(params![now, chat_id])?;
    if touched == 0 {
        return Ok(Err(StoreError::NotFound("Chat")));
    }
    let seq = last_seq.get(tx, chat_id)?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO chat_conversations (chat_id, seq, role, type, content, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut saved = Vec::with_capacity(messages.len());
    for (message, seq) in messages.iter().zip(seq + 1..) {
        let content = message.content.to_string();
        insert.execute(params![chat_id, seq, message.role, message.kind, content, now])?;
        saved.push(MessageRecord { seq, ..message.clone() });
    }
    last_seq.by_chat.insert(chat_id.to_owned(), seq + messages.len() as i64);
    Ok(Ok(saved))
}

fn insert_token(tx: &rusqlite::Transaction<'_>, token: &NewToken, now: &str) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT INTO auth_tokens (token_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![token.token_hash, token.user_id, now, token.expires_at])?;
    Ok(())
}

fn answer(job: Job, outcome: Outcome) {
    // A caller that stopped waiting (its socket closed) is no error: its rows are saved.
    match job {
        Job::Append { done, .. } => drop(done.send(outcome)),
        Job::Token { done, .. } => drop(done.send(outcome.map(drop))),
    }
}

fn fail(job: Job, error: StoreError) {
    match job {
        Job::Append { done, .. } => drop(done.send(Err(error))),
        Job::Token { done, .. } => drop(done.send(Err(error))),
    }
}

/// PASSIVE checkpoints every `CHECKPOINT_EVERY` on a reader connection (they copy what they
/// can without waiting for, or blocking, anyone), until the store is dropped; when the WAL has
/// grown long, the write thread is asked to finish one (`Writer::finish_checkpoint`).
async fn checkpoint_while_open(jobs: mpsc::WeakSender<Job>, readers: AnyPool, finish: Arc<AtomicBool>) {
    let mut ticks = tokio::time::interval(CHECKPOINT_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        ticks.tick().await;
        if jobs.upgrade().is_none() {
            return;
        }
        // (busy, frames in the WAL, frames copied to the database)
        match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&readers)
            .await
        {
            Ok((_, frames, _)) if frames > FINISH_CHECKPOINT_FRAMES => finish.store(true, Ordering::Release),
            Ok(_) => {}
            Err(error) => tracing::debug!(%error, "wal checkpoint"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{MessageRecord, Store, StoreError};
    use tempfile::TempDir;

    /// A store on a new file with one user and `chats` chats.
    async fn store_with_chats(chats: usize) -> (TempDir, Store, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("kafka.db").display());
        let store = Store::connect(&url).await.unwrap();
        let user = store.login("writer@test.example").await.unwrap();
        let workspace = store.create_workspace(&user, "W", &[]).await.unwrap();
        let mut ids = Vec::new();
        for i in 0..chats {
            ids.push(store.create_chat(&user, &workspace, &format!("C{i}")).await.unwrap().id);
        }
        (dir, store, ids)
    }

    fn pair(tag: &str) -> [MessageRecord; 2] {
        [MessageRecord::text("user", tag), MessageRecord::text("assistant", tag)]
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_are_numbered_without_gaps_and_kept_together() {
        let (_dir, store, chats) = store_with_chats(4).await;
        let mut tasks = Vec::new();
        for round in 0..25 {
            for chat in &chats {
                let (store, chat) = (store.clone(), chat.clone());
                tasks.push(tokio::spawn(async move {
                    store.append_messages(&chat, &pair(&format!("m{round}"))).await.unwrap()
                }));
            }
        }
        for task in tasks {
            let saved = task.await.unwrap();
            assert_eq!(saved[1].seq, saved[0].seq + 1, "one call's messages are adjacent");
        }
        for chat in &chats {
            let conversation = store.conversation(chat).await.unwrap();
            let seqs: Vec<i64> = conversation.iter().map(|m| m.seq).collect();
            assert_eq!(seqs, (1..=50).collect::<Vec<i64>>());
            for two in conversation.chunks(2) {
                assert_eq!((two[0].role.as_str(), two[1].role.as_str()), ("user", "assistant"));
                assert_eq!(two[0].content, two[1].content);
            }
        }
    }

    #[tokio::test]
    async fn numbers_follow_entries_written_through_the_pool() {
        let (_dir, store, chats) = store_with_chats(1).await;
        let chat = &chats[0];
        store.append_messages(chat, &pair("first")).await.unwrap();
        // Written by the pool's connection: the thread must not reuse seq 3.
        let (_, entry) = store
            .create_based_file(
                chat,
                "a.based",
                "say(\"hi\")\n",
                &MessageRecord::text("assistant", "made"),
            )
            .await
            .unwrap();
        assert_eq!(entry.seq, 3);
        let saved = store.append_messages(chat, &pair("after")).await.unwrap();
        assert_eq!((saved[0].seq, saved[1].seq), (4, 5));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_append_to_a_deleted_chat_fails_alone() {
        let (_dir, store, chats) = store_with_chats(2).await;
        store.append_messages(&chats[1], &pair("before")).await.unwrap();
        store.delete_chat(&chats[1]).await.unwrap();
        let (kept, gone) = (pair("kept"), pair("gone"));
        let (kept, gone) = tokio::join!(
            store.append_messages(&chats[0], &kept),
            store.append_messages(&chats[1], &gone),
        );
        assert_eq!(kept.unwrap().len(), 2);
        assert!(matches!(gone, Err(StoreError::NotFound("Chat"))), "{gone:?}");
        assert!(store.conversation(&chats[1]).await.unwrap().is_empty());
        assert_eq!(store.foreign_key_violations().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_login_token_is_readable_once_answered() {
        let (_dir, store, _) = store_with_chats(0).await;
        let user = store.login("writer@test.example").await.unwrap();
        store
            .create_token(&user, "hash-1", "2999-01-01T00:00:00.000000")
            .await
            .unwrap();
        assert_eq!(store.token_user("hash-1").await.unwrap().map(|t| t.user_id), Some(user));
        assert!(
            store
                .create_token("no-such-user", "hash-2", "2999-01-01T00:00:00.000000")
                .await
                .is_err()
        );
        assert_eq!(store.token_user("hash-2").await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_in_memory_database_is_refused() {
        let refused = Store::connect("sqlite::memory:").await;
        assert!(matches!(refused, Err(StoreError::UnsupportedUrl(_))), "{refused:?}");
    }
}

//! The SQLite write thread: conversation appends and login tokens from every session, on one
//! thread of its own.
//!
//! Why: every chat message is durable before its reply goes out. Through the async pool a
//! transaction costs a thread hop per statement, which capped a server at ≈5,000 echoes a
//! second; committing batches of appends on this thread still wrote a table leaf per chat in
//! every commit (≈25,000 a second). Now an append is answered once it is in the append journal
//! (`append_journal`: one write per batch, the durability of SQLite's WAL), and the
//! `journal_copier` thread copies the journaled entries into the conversation table in large
//! batches: every `COPY_EVERY`, when many are waiting, and whenever someone is about to read
//! or number the conversation (`settle`, `hold`). Readers never read the journal, only the
//! table after such a copy.
//!
//! Login tokens are committed here in batches. The other write transactions run on the pool's
//! writer connection; SQLite's file lock makes the three take turns (`LOCK_POLL`).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior, params};
use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use super::append_journal::{Journal, JournalEntry};
use super::conversation::MessageRecord;
use super::journal_copier::{self, Handover, Progress, Waiter};
use super::users::{OVERVIEW, OverviewRow};
use super::{StoreError, StoreResult, now_iso};

/// Most jobs handled in one go: a bound on how long the first of them waits.
const MAX_BATCH: usize = 1024;
/// How long an answered append may wait in the journal when nobody reads its chat.
const COPY_EVERY: Duration = Duration::from_millis(20);
/// Past this many journaled entries they are handed to the copier at once.
const COPY_AT: usize = 8192;
/// Past this many entries journaled but not yet copied, the thread waits for the copier before
/// it journals more (the copier runs at the lowest priority, so on a saturated machine it
/// falls behind): a bound on memory and on a reader's wait.
const MAX_UNCOPIED: u64 = 65_536;
/// How often the thread looks whether the copier has caught up…
const CATCH_UP_POLL: Duration = Duration::from_millis(1);
/// …and how long it waits for that before journaling on regardless.
const CATCH_UP_WAIT: Duration = Duration::from_secs(10);
/// How often the WAL is copied back into the database (see `checkpoint_while_open`).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);
/// The copier finishes a checkpoint (a pause of a few milliseconds) only once the WAL holds
/// more frames than this (64 MiB of 4 KiB pages); under light load the WAL restarts by
/// itself whenever a checkpoint beside the writers catches up.
const FINISH_CHECKPOINT_FRAMES: i64 = 16_384;
/// While another connection holds the lock, poll this often (SQLite's own busy handler
/// sleeps 1, 2, 5, 10… ms: far longer than the other side's transactions last)…
const LOCK_POLL: Duration = Duration::from_micros(100);
/// …for at most this long, then fail ("database is locked").
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// A login's token row.
#[derive(Debug)]
pub(super) struct NewToken {
    pub token_hash: String,
    pub user_id: String,
    pub expires_at: String,
}

type Answer<T> = oneshot::Sender<StoreResult<T>>;

/// What the thread is asked to do.
enum Job {
    /// Messages appended to a chat, in order; answered with their `seq` once journaled.
    Append {
        chat_id: String,
        messages: Vec<MessageRecord>,
        done: Answer<Vec<MessageRecord>>,
    },
    /// A login's token; answered once committed (see `TokenFor`).
    Token {
        token: NewToken,
        done: TokenFor,
    },
    /// Answered once every append answered before is in the table (a reader is waiting).
    Settle {
        done: Waiter,
    },
    /// Like `Settle`, and from then on the chat's appends wait until a `Release`: a pool
    /// transaction is about to number an entry in it.
    Hold {
        chat_id: String,
        done: Waiter,
    },
    Release {
        chat_id: String,
    },
    /// The timer's: hand the journaled entries to the copier, if there are any.
    Copy,
}

/// The sending half; the thread ends when the last clone (and every `ChatHold`) is dropped.
#[derive(Debug, Clone)]
pub(super) struct SqliteWriter {
    jobs: mpsc::UnboundedSender<Job>,
    progress: Arc<Progress>,
}

/// While alive, appends to the chat wait (see `SqliteWriter::hold`).
#[derive(Debug)]
pub(super) struct ChatHold {
    chat_id: String,
    jobs: mpsc::UnboundedSender<Job>,
}

impl Drop for ChatHold {
    fn drop(&mut self) {
        let chat_id = std::mem::take(&mut self.chat_id);
        // Fails only when the thread is gone, and with it every hold.
        let _ = self.jobs.send(Job::Release { chat_id });
    }
}

impl SqliteWriter {
    /// Opens the connections to the database file at `path`, copies what the journal holds
    /// from the last run into the table, and starts the write thread and the copier, plus
    /// tasks on the current runtime that ask for a copy every `COPY_EVERY` and checkpoint the
    /// WAL through `readers` (the threads' connections have automatic checkpoints off: they
    /// would run inside a commit).
    pub(super) fn start(path: &str, readers: AnyPool) -> StoreResult<Self> {
        let conn = open(path).map_err(write_error)?;
        let mut copier_conn = open(path).map_err(write_error)?;
        let (journal, left_behind) =
            Journal::open(path).map_err(|e| StoreError::Write(format!("open the append journal: {e}")))?;
        journal_copier::recover(&mut copier_conn, left_behind).map_err(write_error)?;

        let progress = Arc::new(Progress::default());
        let finish_checkpoint = Arc::new(AtomicBool::new(false));
        let copier = journal_copier::start(copier_conn, journal.lock(), progress.clone(), finish_checkpoint.clone())?;
        let writer = Writer::new(conn, journal, copier, progress.clone());
        let (jobs, queue) = mpsc::unbounded_channel();
        thread::Builder::new()
            .name("kafka-sqlite-writer".into())
            .spawn(move || writer.run(queue))
            .map_err(|e| StoreError::Write(format!("start the write thread: {e}")))?;
        tokio::spawn(checkpoint_while_open(jobs.downgrade(), readers, finish_checkpoint));
        tokio::spawn(copy_while_open(jobs.downgrade(), progress.clone()));
        Ok(Self { jobs, progress })
    }

    /// Appends `messages` to the chat; returns them with their `seq` once journaled.
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
        let done = TokenFor::Token(done);
        self.submit(Job::Token { token, done }, answer).await
    }

    /// Records a login's token and reads its user's overview (see `TokenFor::Login`).
    pub(super) async fn token_with_overview(&self, token: NewToken) -> StoreResult<Option<Vec<OverviewRow>>> {
        let (done, answer) = oneshot::channel();
        let done = TokenFor::Login(done);
        self.submit(Job::Token { token, done }, answer).await
    }

    /// Returns once every append answered so far is in the conversation table: call before
    /// reading it. Nothing to wait for (the common case for a reader) costs two atomic loads.
    pub(super) async fn settle(&self) -> StoreResult<()> {
        if self.progress.settled() {
            return Ok(());
        }
        let (done, answer) = oneshot::channel();
        self.submit(Job::Settle { done }, answer).await
    }

    /// Brings the journal into the table and holds the chat's appends back while the guard
    /// lives: a pool transaction that numbers an entry of the chat takes this before it
    /// begins, so that its `MAX(seq) + 1` follows every answered append.
    pub(super) async fn hold(&self, chat_id: &str) -> StoreResult<ChatHold> {
        // The guard exists before the request: however this future ends, the hold the thread
        // counts is released.
        let hold = ChatHold {
            chat_id: chat_id.to_owned(),
            jobs: self.jobs.clone(),
        };
        let (done, answer) = oneshot::channel();
        let chat_id = chat_id.to_owned();
        self.submit(Job::Hold { chat_id, done }, answer).await?;
        Ok(hold)
    }

    async fn submit<T>(&self, job: Job, answer: oneshot::Receiver<StoreResult<T>>) -> StoreResult<T> {
        self.jobs.send(job).map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }
}

fn writer_gone() -> StoreError {
    StoreError::Write("the write thread has stopped".into())
}

fn write_error(error: rusqlite::Error) -> StoreError {
    StoreError::Write(error.to_string())
}

/// A connection set up as the pool's are (WAL and foreign keys stick to the file and the
/// connection respectively), without automatic checkpoints.
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

/// Each chat's last `seq` handed out, remembered while no other connection has written: one
/// query saved on most appends. `PRAGMA data_version` changes when another connection
/// commits (a copy, an upload's entry, a deleted chat), and then everything remembered is
/// forgotten; a chat remembered here exists.
#[derive(Default)]
struct LastSeq {
    data_version: i64,
    by_chat: HashMap<String, i64>,
}

impl LastSeq {
    /// Chats remembered at most; past this the map starts over.
    const LIMIT: usize = 100_000;

    /// Forgets everything if another connection has committed since the last look.
    fn check(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        let version: i64 = conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |row| row.get(0))?;
        if version != self.data_version || self.by_chat.len() > Self::LIMIT {
            self.by_chat.clear();
            self.data_version = version;
        }
        Ok(())
    }
}

/// The chat's last `seq` in the table, `None` if the chat does not exist.
fn stored_last_seq(conn: &Connection, chat_id: &str) -> rusqlite::Result<Option<i64>> {
    // The newest entry by one index seek: `MAX(seq)` would step through the chat.
    let (exists, stored): (bool, Option<i64>) = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM chats WHERE id = ?1),
                    (SELECT seq FROM chat_conversations WHERE chat_id = ?1 ORDER BY seq DESC LIMIT 1)",
        )?
        .query_row([chat_id], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(exists.then_some(stored.unwrap_or(0)))
}

/// A chat whose appends wait: how many holds are out, and the appends that came meanwhile.
#[derive(Default)]
struct Held {
    holds: usize,
    waiting: Vec<Job>,
}

/// Each chat's last journaled `seq` among some entries not yet known to be in the table.
type LastOf = HashMap<String, i64>;

struct Writer {
    conn: Connection,
    journal: Journal,
    /// Journaled entries not yet handed to the copier, in order, and each chat's last.
    pending: Vec<JournalEntry>,
    pending_last: LastOf,
    /// Each handover the copier may not have finished: its `through` and its chats' last.
    copying: VecDeque<(u64, LastOf)>,
    last_seq: LastSeq,
    held: HashMap<String, Held>,
    /// Appends released from a hold, handled before the queue.
    backlog: VecDeque<Job>,
    copier: std::sync::mpsc::Sender<Handover>,
    progress: Arc<Progress>,
}

impl Writer {
    fn new(
        conn: Connection,
        journal: Journal,
        copier: std::sync::mpsc::Sender<Handover>,
        progress: Arc<Progress>,
    ) -> Self {
        Writer {
            conn,
            journal,
            pending: Vec::new(),
            pending_last: HashMap::new(),
            copying: VecDeque::new(),
            last_seq: LastSeq::default(),
            held: HashMap::new(),
            backlog: VecDeque::new(),
            copier,
            progress,
        }
    }

    /// The thread: takes what has queued, handles it, repeats. When the last sender is gone
    /// it hands the rest to the copier, which finishes before it stops.
    fn run(mut self, mut queue: mpsc::UnboundedReceiver<Job>) {
        loop {
            let mut batch: Vec<Job> = self.backlog.drain(..).collect();
            if batch.is_empty() {
                match queue.blocking_recv() {
                    Some(job) => batch.push(job),
                    None => break,
                }
            }
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            self.handle(batch);
        }
        self.hand_over(Vec::new());
    }

    /// Handles a batch in its order: appends are journaled (with one write), tokens committed
    /// (one transaction), then the journal is handed to the copier if anyone asked or it has
    /// grown, with the readers and holders who wait for it.
    fn handle(&mut self, batch: Vec<Job>) {
        let mut appends = Vec::new();
        let mut tokens = Vec::new();
        let mut waiters = Vec::new();
        let mut copy = false;
        for job in batch {
            match job {
                Job::Append { ref chat_id, .. } if self.held.contains_key(chat_id) => {
                    if let Some(held) = self.held.get_mut(chat_id) {
                        held.waiting.push(job);
                    }
                }
                Job::Append { .. } => appends.push(job),
                Job::Token { token, done } => tokens.push((token, done)),
                Job::Settle { done } => {
                    copy = true;
                    waiters.push(done);
                }
                Job::Hold { chat_id, done } => {
                    // Counted at once: the holder's guard releases it whatever the answer.
                    self.held.entry(chat_id).or_default().holds += 1;
                    copy = true;
                    waiters.push(done);
                }
                Job::Release { chat_id } => self.release(&chat_id),
                Job::Copy => copy = true,
            }
        }
        self.append_all(appends);
        self.commit_tokens(tokens);
        if copy || self.pending.len() >= COPY_AT {
            self.hand_over(waiters);
        }
    }

    /// Ends one hold of the chat; after the last, its waiting appends go first in the next batch.
    fn release(&mut self, chat_id: &str) {
        let Some(held) = self.held.get_mut(chat_id) else {
            return tracing::error!(chat_id, "release of a chat that is not held");
        };
        held.holds -= 1;
        if held.holds == 0 {
            let held = self.held.remove(chat_id).unwrap_or_default();
            // The holder numbered entries of its own: read the chat's last seq afresh.
            self.last_seq.by_chat.remove(chat_id);
            self.backlog.extend(held.waiting);
        }
    }

    /// Gives the copier the journaled entries (starting a new journal segment) and `waiters`,
    /// who are answered once it has copied these and everything handed over before.
    fn hand_over(&mut self, waiters: Vec<Waiter>) {
        if self.pending.is_empty() && self.progress.settled() {
            // Everything is in the table already: no trip through the (low-priority) copier.
            for waiter in waiters {
                let _ = waiter.send(Ok(()));
            }
            return;
        }
        let segment = if self.pending.is_empty() {
            None
        } else {
            match self.journal.rotate() {
                Ok(finished) => Some(finished),
                Err(error) => {
                    // The entries stay journaled and pending; the next handover tries again.
                    tracing::error!(%error, "starting a new journal segment");
                    for waiter in waiters {
                        let _ = waiter.send(Err(StoreError::Write(format!("append journal: {error}"))));
                    }
                    return;
                }
            }
        };
        let through = self.progress.logged.load(Ordering::Acquire);
        if segment.is_some() {
            self.copying
                .push_back((through, std::mem::take(&mut self.pending_last)));
        }
        let handover = Handover {
            entries: std::mem::take(&mut self.pending),
            segment,
            through,
            waiters,
        };
        if let Err(std::sync::mpsc::SendError(handover)) = self.copier.send(handover) {
            // The copier died: the entries are in their segment, copied at the next start.
            tracing::error!("the journal copier has stopped");
            for waiter in handover.waiters {
                let _ = waiter.send(Err(StoreError::Write("the journal copier has stopped".into())));
            }
        }
    }

    /// Numbers the appends, journals them with one write and answers them.
    fn append_all(&mut self, jobs: Vec<Job>) {
        if jobs.is_empty() {
            return;
        }
        self.wait_for_copier();
        if let Err(error) = self.last_seq.check(&self.conn) {
            return fail_all(jobs, &error.to_string());
        }
        // Handovers the copier has finished are in the table: their numbers are read there.
        let copied = self.progress.copied.load(Ordering::Acquire);
        while self.copying.front().is_some_and(|(through, _)| *through <= copied) {
            self.copying.pop_front();
        }
        let now = now_iso();
        let mut entries = Vec::new();
        let mut outcomes = Vec::with_capacity(jobs.len());
        for job in &jobs {
            let Job::Append { chat_id, messages, .. } = job else {
                continue;
            };
            outcomes.push(self.number(chat_id, messages, &now, &mut entries));
        }
        if let Err(error) = self.journal.append(&entries) {
            tracing::error!(%error, "writing the append journal");
            // The numbers handed out were not used.
            for entry in &entries {
                self.last_seq.by_chat.remove(&entry.chat_id);
            }
            return fail_all(jobs, &format!("append journal: {error}"));
        }
        self.progress.logged.fetch_add(entries.len() as u64, Ordering::AcqRel);
        for entry in &entries {
            self.pending_last.insert(entry.chat_id.clone(), entry.seq);
        }
        self.pending.extend(entries);
        for (job, outcome) in jobs.into_iter().zip(outcomes) {
            if let Job::Append { done, .. } = job {
                // A caller that stopped waiting (its socket closed) is no error: its rows are kept.
                let _ = done.send(outcome);
            }
        }
    }

    /// Waits while the copier is far behind; the appends queue meanwhile (backpressure).
    fn wait_for_copier(&mut self) {
        if self.progress.uncopied() <= MAX_UNCOPIED {
            return;
        }
        // What is journaled must be handed over, or the copier has nothing to catch up with.
        if !self.pending.is_empty() {
            self.hand_over(Vec::new());
        }
        let started = std::time::Instant::now();
        // Resume soon after: a short pause at a time (p99 at 1,000 closed-loop sessions
        // 185 ms waiting for half the bound, 110 ms for this).
        while self.progress.uncopied() > MAX_UNCOPIED - COPY_AT as u64 {
            if started.elapsed() > CATCH_UP_WAIT {
                // A copier that cannot copy (its errors are logged) must not stop the appends:
                // they are safe in the journal.
                return tracing::error!("the journal copier is not catching up; journaling on");
            }
            thread::sleep(CATCH_UP_POLL);
        }
    }

    /// Numbers one job's messages after the chat's last entry, adding them to `entries`; the
    /// job's answer, or why it writes nothing (no such chat).
    fn number(
        &mut self,
        chat_id: &str,
        messages: &[MessageRecord],
        now: &str,
        entries: &mut Vec<JournalEntry>,
    ) -> StoreResult<Vec<MessageRecord>> {
        let last = match self.last_seq.by_chat.get(chat_id) {
            Some(last) => *last,
            None => match stored_last_seq(&self.conn, chat_id) {
                // Entries journaled but perhaps not yet in the table come after the stored ones.
                Ok(Some(stored)) => stored.max(self.unstored_last(chat_id)),
                Ok(None) => return Err(StoreError::NotFound("Chat")),
                Err(error) => return Err(write_error(error)),
            },
        };
        let mut saved = Vec::with_capacity(messages.len());
        for (message, seq) in messages.iter().zip(last + 1..) {
            entries.push(JournalEntry {
                chat_id: chat_id.to_owned(),
                seq,
                role: message.role.clone(),
                kind: message.kind.clone(),
                content: message.content.to_string(),
                created_at: now.to_owned(),
            });
            saved.push(MessageRecord { seq, ..message.clone() });
        }
        self.last_seq
            .by_chat
            .insert(chat_id.to_owned(), last + messages.len() as i64);
        Ok(saved)
    }

    /// The chat's last seq among entries journaled but perhaps not yet in the table (0: none).
    fn unstored_last(&self, chat_id: &str) -> i64 {
        std::iter::once(&self.pending_last)
            .chain(self.copying.iter().map(|(_, last)| last))
            .filter_map(|last| last.get(chat_id).copied())
            .max()
            .unwrap_or(0)
    }

    /// Commits the tokens in one transaction and answers them (a login with its user's
    /// overview). A token that cannot be written (no such user) gets its own error; any other
    /// failure fails them all.
    fn commit_tokens(&mut self, tokens: Vec<(NewToken, TokenFor)>) {
        if tokens.is_empty() {
            return;
        }
        let outcomes = match insert_tokens(&mut self.conn, &tokens) {
            Ok(outcomes) => outcomes,
            Err(error) => {
                tracing::error!(%error, tokens = tokens.len(), "sqlite token batch failed");
                let error = error.to_string();
                tokens.iter().map(|_| Err(StoreError::Write(error.clone()))).collect()
            }
        };
        for ((token, waiter), outcome) in tokens.into_iter().zip(outcomes) {
            match waiter {
                TokenFor::Token(done) => drop(done.send(outcome)),
                TokenFor::Login(done) => {
                    let overview = outcome.and_then(|()| self.overview(&token.user_id));
                    drop(done.send(overview));
                }
            }
        }
    }

    /// The user's overview rows, read on this connection; `None` while journaled entries are
    /// on their way into the table (their chats' `last_updated` would be stale).
    fn overview(&self, user_id: &str) -> StoreResult<Option<Vec<OverviewRow>>> {
        if !self.progress.settled() {
            return Ok(None);
        }
        let read = || -> rusqlite::Result<Vec<OverviewRow>> {
            self.conn
                .prepare_cached(OVERVIEW)?
                .query_map([user_id], |row| {
                    Ok(OverviewRow {
                        part: row.get("part")?,
                        id: row.get("id")?,
                        name: row.get("name")?,
                        parent: row.get("parent")?,
                        desc_key: row.get("desc_key")?,
                        num_versions: row.get("num_versions")?,
                        base_url: row.get("base_url")?,
                    })
                })?
                .collect()
        };
        read().map(Some).map_err(write_error)
    }
}

/// Who waits for a token's commit.
enum TokenFor {
    Token(Answer<()>),
    /// A login, answered with its user's overview read on this connection after the commit;
    /// `None` when journaled entries are not all in the table yet (the caller reads after
    /// settling).
    Login(Answer<Option<Vec<OverviewRow>>>),
}

fn insert_tokens(conn: &mut Connection, tokens: &[(NewToken, TokenFor)]) -> rusqlite::Result<Vec<StoreResult<()>>> {
    let now = now_iso();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut outcomes = Vec::with_capacity(tokens.len());
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO auth_tokens (token_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (token, _) in tokens {
            outcomes.push(
                match insert.execute(params![token.token_hash, token.user_id, now, token.expires_at]) {
                    Ok(_) => Ok(()),
                    Err(error) if error.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => {
                        Err(write_error(error))
                    }
                    Err(error) => return Err(error),
                },
            );
        }
    }
    tx.commit()?;
    Ok(outcomes)
}

/// Answers every append with the same failure (`error`: the driver's or the file's words).
fn fail_all(jobs: Vec<Job>, error: &str) {
    for job in jobs {
        if let Job::Append { done, .. } = job {
            let _ = done.send(Err(StoreError::Write(error.to_owned())));
        }
    }
}

/// Asks the thread to hand its journaled entries to the copier every `COPY_EVERY` while any
/// wait, until the store is dropped.
async fn copy_while_open(jobs: mpsc::WeakUnboundedSender<Job>, progress: Arc<Progress>) {
    let mut ticks = tokio::time::interval(COPY_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        ticks.tick().await;
        let Some(jobs) = jobs.upgrade() else {
            return;
        };
        if !progress.settled() && jobs.send(Job::Copy).is_err() {
            return;
        }
    }
}

/// PASSIVE checkpoints every `CHECKPOINT_EVERY` on a reader connection (they copy what they
/// can without waiting for, or blocking, anyone), until the store is dropped. Under steady
/// writes they never catch up (frames arrive while they sync), so the WAL would never start
/// over (it grew by ≈190 MB a second under the echo load): when it has grown long, the copier
/// is asked to finish one between its transactions — a short pause, as the big copy and sync
/// are done — after which the next transaction writes the WAL from its start.
async fn checkpoint_while_open(jobs: mpsc::WeakUnboundedSender<Job>, readers: AnyPool, finish: Arc<AtomicBool>) {
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
    use super::super::append_journal::{Journal, JournalEntry};
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pool_entries_and_journaled_appends_share_one_numbering_without_gaps() {
        let (_dir, store, chats) = store_with_chats(1).await;
        let chat = &chats[0];
        let mut appends = Vec::new();
        let mut files = Vec::new();
        for i in 0..20 {
            let (s, c) = (store.clone(), chat.clone());
            appends.push(tokio::spawn(async move {
                s.append_messages(&c, &pair(&format!("m{i}"))).await.unwrap()
            }));
            let (store, chat) = (store.clone(), chat.clone());
            files.push(tokio::spawn(async move {
                let note = MessageRecord::text("assistant", &format!("f{i}"));
                store
                    .create_based_file(&chat, &format!("f{i}.based"), "say(\"hi\")\n", &note)
                    .await
                    .unwrap()
                    .1
            }));
        }
        let mut numbers = Vec::new();
        for task in appends {
            let saved = task.await.unwrap();
            assert_eq!(saved[1].seq, saved[0].seq + 1, "one call's messages are adjacent");
            numbers.extend(saved.iter().map(|m| m.seq));
        }
        for task in files {
            numbers.push(task.await.unwrap().seq);
        }
        numbers.sort_unstable();
        assert_eq!(numbers, (1..=60).collect::<Vec<i64>>(), "every number handed out once");
        let stored: Vec<i64> = store.conversation(chat).await.unwrap().iter().map(|m| m.seq).collect();
        assert_eq!(stored, numbers, "and every entry in the table");
    }

    #[tokio::test]
    async fn a_journal_left_by_a_crash_is_copied_into_the_table_at_start() {
        let (dir, store, chats) = store_with_chats(2).await;
        store.append_messages(&chats[0], &pair("copied")).await.unwrap();
        store.settle().await.unwrap();
        drop(store);

        // What a process killed between journaling and copying leaves behind: an entry that was
        // copied already (the kill fell between the copy's commit and the emptying), new ones,
        // and one of a chat deleted meanwhile.
        let database = dir.path().join("kafka.db").display().to_string();
        let entry = |chat_id: &str, seq: i64, text: &str| JournalEntry {
            chat_id: chat_id.to_owned(),
            seq,
            role: "user".into(),
            kind: "text".into(),
            content: serde_json::Value::String(text.into()).to_string(),
            created_at: "2999-01-01T00:00:00.000000".into(),
        };
        let (mut journal, _) = Journal::open(&database).unwrap();
        journal
            .append(&[
                entry(&chats[0], 2, "copied twice?"),
                entry(&chats[0], 3, "journaled"),
                entry(&chats[1], 1, "other chat"),
                entry("deleted-chat", 1, "gone"),
            ])
            .unwrap();
        drop(journal);

        let store = Store::connect(&format!("sqlite://{database}")).await.unwrap();
        let texts = |conversation: Vec<MessageRecord>| -> Vec<(i64, String)> {
            conversation
                .into_iter()
                .map(|m| (m.seq, m.content.as_str().unwrap_or_default().to_owned()))
                .collect()
        };
        assert_eq!(
            texts(store.conversation(&chats[0]).await.unwrap()),
            [(1, "copied".into()), (2, "copied".into()), (3, "journaled".into())]
        );
        assert_eq!(
            texts(store.conversation(&chats[1]).await.unwrap()),
            [(1, "other chat".into())]
        );
        assert_eq!(
            store.chat(&chats[1]).await.unwrap().last_updated.as_deref(),
            Some("2999-01-01T00:00:00.000000"),
            "the copy touches the chat"
        );
        let segments: Vec<u64> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_prefix("kafka.db-kafka-appends.")
                    .is_some_and(|n| n.parse::<u64>().is_ok())
            })
            .map(|e| e.metadata().unwrap().len())
            .collect();
        assert_eq!(segments, [0], "copied segments removed; the new one empty");
        assert_eq!(store.foreign_key_violations().await.unwrap(), 0);
        let saved = store.append_messages(&chats[0], &pair("after")).await.unwrap();
        assert_eq!((saved[0].seq, saved[1].seq), (4, 5));
    }

    #[tokio::test]
    async fn a_login_sees_its_chats_updated_by_messages_still_in_the_journal() {
        let (_dir, store, chats) = store_with_chats(1).await;
        let user = store.login("writer@test.example").await.unwrap();
        let before = store.chat(&chats[0]).await.unwrap().last_updated.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        store.append_messages(&chats[0], &pair("new")).await.unwrap();
        // Most likely still journaled (copies run every 20 ms): the login reads after the copy.
        let overview = store
            .create_token_with_overview(&user, "hash-1", "2999-01-01T00:00:00.000000")
            .await
            .unwrap();
        let chat = overview
            .workspaces
            .iter()
            .flat_map(|w| &w.chats)
            .find(|c| c.id == chats[0])
            .expect("the chat in the overview");
        assert!(
            chat.last_updated.as_deref().unwrap() > before.as_str(),
            "{chat:?} vs {before}"
        );
        assert_eq!(
            store.token_user("hash-1").await.unwrap().map(|t| t.user_id),
            Some(user.clone())
        );
        // And with nothing journaled, from the write thread's own read.
        let again = store
            .create_token_with_overview(&user, "hash-2", "2999-01-01T00:00:00.000000")
            .await
            .unwrap();
        assert_eq!(again.workspaces, overview.workspaces);
        assert_eq!(again.email, "writer@test.example");
        assert!(
            store
                .create_token_with_overview("no-such-user", "hash-3", "2999-01-01T00:00:00.000000")
                .await
                .is_err()
        );
    }
}

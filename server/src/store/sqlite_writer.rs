//! The SQLite writer: one task owns the database's only write connection and takes every
//! write from a queue, committing whatever has queued in one transaction (group commit).
//!
//! Each job runs inside a savepoint of the group's transaction: a job that fails is rolled
//! back alone and gets its own error; the others commit. Every caller is answered after the
//! commit, with the commit's error if it failed (nothing of the group is then stored): an
//! answer is never ahead of the disk. Jobs run in the order they were queued, so entries
//! numbered in a chat (`seq`) follow the order in which their writers were answered. Readers
//! (the pool, `PRAGMA query_only`) see committed rows only.
//!
//! The writer lives in a task of its own, so a caller that stops waiting (its socket closed)
//! cancels nothing: its job commits or fails with the group.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::future::BoxFuture;
use sqlx::{AnyConnection, AnyPool, Executor};
use tokio::sync::{mpsc, oneshot};

use super::conversation::MessageRecord;
use super::{StoreError, StoreResult, now_iso};

/// Most jobs committed together: a bound on how long the first of them waits.
const MAX_GROUP: usize = 512;
/// How often the WAL is copied back into the database, beside the writer (see `checkpoints`).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);
/// Past this many frames in the WAL (64 MiB of 4 KiB pages) the writer finishes a checkpoint
/// itself, between two groups, so that the WAL starts over.
const FINISH_CHECKPOINT_FRAMES: i64 = 16_384;

/// A write, run on the write connection inside a transaction.
pub(super) trait WriteFn<T>:
    for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, StoreResult<T>> + Send + 'static
{
}
impl<T, F> WriteFn<T> for F where
    F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, StoreResult<T>> + Send + 'static
{
}

/// A queued write, type-erased: run it (true: it succeeded), then answer it with the commit's
/// outcome.
trait Job: Send {
    fn run<'a>(&'a mut self, conn: &'a mut AnyConnection) -> BoxFuture<'a, bool>;
    fn answer(self: Box<Self>, commit: Result<(), &str>);
    /// Conversation entries, which a run of such jobs writes together.
    fn as_append(&mut self) -> Option<&mut Append> {
        None
    }
    fn is_append(&self) -> bool {
        false
    }
}

/// A job's answer: its own failure, whatever became of the others; else the commit's.
fn outcome<T>(result: Option<StoreResult<T>>, commit: Result<(), &str>) -> StoreResult<T> {
    match (result, commit) {
        (Some(Err(error)), _) => Err(error),
        (Some(Ok(value)), Ok(())) => Ok(value),
        (_, Err(error)) => Err(StoreError::Write(error.to_owned())),
        (None, Ok(())) => Err(StoreError::Write("the write did not run".into())),
    }
}

struct Write<T, F> {
    f: Option<F>,
    result: Option<StoreResult<T>>,
    done: oneshot::Sender<StoreResult<T>>,
}

impl<T: Send + 'static, F: WriteFn<T>> Job for Write<T, F> {
    fn run<'a>(&'a mut self, conn: &'a mut AnyConnection) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let Some(f) = self.f.take() else {
                return false;
            };
            let result = f(conn).await;
            let ok = result.is_ok();
            self.result = Some(result);
            ok
        })
    }

    fn answer(self: Box<Self>, commit: Result<(), &str>) {
        // A caller that stopped waiting is no error: what committed stays committed.
        let _ = self.done.send(outcome(self.result, commit));
    }
}

/// Messages to append to a chat, in order (the hot path: every echo is one).
pub(super) struct Append {
    chat_id: String,
    messages: Vec<MessageRecord>,
    result: Option<StoreResult<Vec<MessageRecord>>>,
    done: oneshot::Sender<StoreResult<Vec<MessageRecord>>>,
}

impl Job for Append {
    fn run<'a>(&'a mut self, conn: &'a mut AnyConnection) -> BoxFuture<'a, bool> {
        Box::pin(append_all(conn, vec![self]))
    }

    fn answer(self: Box<Self>, commit: Result<(), &str>) {
        let _ = self.done.send(outcome(self.result, commit));
    }

    fn as_append(&mut self) -> Option<&mut Append> {
        Some(self)
    }

    fn is_append(&self) -> bool {
        true
    }
}

/// Appends a run of queued jobs' messages with one statement, numbered after each chat's last
/// entry in the order queued (SQLite materializes the `SELECT` before inserting, as it reads
/// the table); a trigger touches their chats (migration 0006). A job whose chat does not exist
/// gets `NotFound` and writes nothing. Each call to SQLite is a hop to sqlx's thread for the
/// connection (≈100 µs on a busy machine): the statement is one for the whole run.
const APPEND: &str = "INSERT INTO chat_conversations (chat_id, seq, role, type, content, created_at)
    SELECT m.chat,
           COALESCE((SELECT c.seq FROM chat_conversations c WHERE c.chat_id = m.chat ORDER BY c.seq DESC LIMIT 1), 0)
               + ROW_NUMBER() OVER (PARTITION BY m.chat ORDER BY m.k),
           m.role, m.kind, m.content, $2
    FROM (SELECT CAST(key AS INTEGER) AS k, value ->> 0 AS chat, value ->> 1 AS role, value ->> 2 AS kind,
                 value ->> 3 AS content FROM json_each($1)) m
    WHERE EXISTS (SELECT 1 FROM chats WHERE id = m.chat)
    RETURNING chat_id, seq";

/// Runs `APPEND` for `run`; false (every job failed) if a statement failed.
async fn append_all(conn: &mut AnyConnection, run: Vec<&mut Append>) -> bool {
    let contents: Vec<Vec<String>> = run
        .iter()
        .map(|a| a.messages.iter().map(|m| m.content.to_string()).collect())
        .collect();
    let mut rows: Vec<[&str; 4]> = Vec::new();
    for (a, contents) in run.iter().zip(&contents) {
        for (m, content) in a.messages.iter().zip(contents) {
            rows.push([&a.chat_id, &m.role, &m.kind, content]);
        }
    }
    let now = now_iso();
    let written = async {
        let json = serde_json::to_string(&rows).map_err(|e| StoreError::Write(e.to_string()))?;
        let numbered: Vec<(String, i64)> = sqlx::query_as(APPEND)
            .bind(&json)
            .bind(&now)
            .fetch_all(&mut *conn)
            .await?;
        Ok::<_, StoreError>(numbered)
    }
    .await;
    let numbered = match written {
        Ok(numbered) => numbered,
        Err(error) => {
            let error = error.to_string();
            for a in run {
                a.result = Some(Err(StoreError::Write(error.clone())));
            }
            return false;
        }
    };
    let mut by_chat: HashMap<String, Vec<i64>> = HashMap::new();
    for (chat, seq) in numbered {
        by_chat.entry(chat).or_default().push(seq);
    }
    let mut by_chat: HashMap<String, VecDeque<i64>> = by_chat
        .into_iter()
        .map(|(chat, mut seqs)| {
            seqs.sort_unstable();
            (chat, seqs.into())
        })
        .collect();
    for a in run {
        a.result = Some(match by_chat.get_mut(&a.chat_id) {
            None => Err(StoreError::NotFound("Chat")),
            Some(seqs) => a
                .messages
                .iter()
                .map(|m| {
                    let seq = seqs
                        .pop_front()
                        .ok_or_else(|| StoreError::Write("an entry was not numbered".into()))?;
                    Ok(MessageRecord { seq, ..m.clone() })
                })
                .collect(),
        });
    }
    true
}

/// The sending half; the task ends (and closes the connection) when the last clone is dropped.
#[derive(Debug, Clone)]
pub(super) struct SqliteWriter {
    jobs: mpsc::UnboundedSender<Box<dyn Job>>,
}

impl SqliteWriter {
    /// Starts the writer on `conn`, the one connection that writes to the database (its
    /// automatic checkpoints are turned off: they would run inside a commit, fsyncs included),
    /// and the checkpoints beside it through `readers`.
    pub(super) async fn start(mut conn: AnyConnection, readers: AnyPool) -> StoreResult<Self> {
        conn.execute("PRAGMA wal_autocheckpoint = 0").await?;
        let (jobs, queue) = mpsc::unbounded_channel();
        let finish = Arc::new(AtomicBool::new(false));
        tokio::spawn(run(conn, queue, finish.clone()));
        tokio::spawn(checkpoints(jobs.downgrade(), readers, finish));
        Ok(Self { jobs })
    }

    /// Queues `f`; returns its result once the group it ran in has committed.
    pub(super) async fn write<T: Send + 'static>(&self, f: impl WriteFn<T>) -> StoreResult<T> {
        let (done, answer) = oneshot::channel();
        let job = Write {
            f: Some(f),
            result: None,
            done,
        };
        self.jobs.send(Box::new(job)).map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }

    /// Queues messages for the chat; returns them with their `seq` once committed.
    pub(super) async fn append(&self, chat_id: &str, messages: Vec<MessageRecord>) -> StoreResult<Vec<MessageRecord>> {
        let (done, answer) = oneshot::channel();
        let job = Append {
            chat_id: chat_id.to_owned(),
            messages,
            result: None,
            done,
        };
        self.jobs.send(Box::new(job)).map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }
}

fn writer_gone() -> StoreError {
    StoreError::Write("the database writer has stopped".into())
}

/// The task: takes what has queued, runs it as one group, answers, repeats.
async fn run(mut conn: AnyConnection, mut queue: mpsc::UnboundedReceiver<Box<dyn Job>>, finish: Arc<AtomicBool>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while queue.recv_many(&mut group, MAX_GROUP).await > 0 {
        // Sessions whose writes are on their way (their tasks ready to run) join this group.
        tokio::task::yield_now().await;
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let outcome = commit_group(&mut conn, &mut group).await;
        if let Err(error) = &outcome {
            tracing::error!(%error, jobs = group.len(), "a group commit failed; nothing of it is stored");
        }
        let commit = outcome.as_ref().map(|_| ()).map_err(String::as_str);
        for job in group.drain(..) {
            job.answer(commit);
        }
        if finish.swap(false, Ordering::AcqRel)
            && let Err(error) = exec(&mut conn, "PRAGMA wal_checkpoint(PASSIVE)").await
        {
            tracing::warn!(%error, "wal checkpoint");
        }
    }
    let _ = sqlx::Connection::close(conn).await;
}

/// Runs the jobs in one transaction, each in a savepoint; commits. On any failure outside a
/// job's own statements (a savepoint that cannot be rolled back — SQLite may have rolled back
/// the whole transaction, as on a full disk — or the commit), rolls back everything. The
/// transaction control between two jobs goes to SQLite as one call.
async fn commit_group(conn: &mut AnyConnection, jobs: &mut [Box<dyn Job>]) -> Result<(), String> {
    if jobs.iter().all(|j| j.is_append()) {
        // Appends only (the echoes of many sessions): one statement, its own transaction.
        let run = jobs.iter_mut().filter_map(|j| j.as_append()).collect();
        return match append_all(conn, run).await {
            true => Ok(()),
            false => Err("the appends failed".into()),
        };
    }
    let outcome = async {
        exec(conn, "BEGIN IMMEDIATE; SAVEPOINT job").await?;
        let mut i = 0;
        while i < jobs.len() {
            // Consecutive appends (queued one after the other) are written together.
            let appends = jobs[i..].iter().take_while(|j| j.is_append()).count();
            let ok = if appends > 1 {
                let run = jobs[i..i + appends].iter_mut().filter_map(|j| j.as_append()).collect();
                i += appends;
                append_all(conn, run).await
            } else {
                i += 1;
                jobs[i - 1].run(conn).await
            };
            let end = if ok { "" } else { "ROLLBACK TO job; " };
            let next = if i == jobs.len() { "COMMIT" } else { "SAVEPOINT job" };
            exec(conn, &format!("{end}RELEASE job; {next}")).await?;
        }
        Ok(())
    }
    .await;
    if outcome.is_err() {
        // Fails harmlessly when SQLite has rolled back already.
        let _ = exec(conn, "ROLLBACK").await;
    }
    outcome
}

/// PASSIVE checkpoints every `CHECKPOINT_EVERY` on a reader connection (they copy what they
/// can without waiting for, or blocking, the writer), until the writer is gone. Under steady
/// writes they never catch up (frames arrive while they sync) and the WAL would never start
/// over: when it has grown long, the writer is asked to finish one between two groups.
async fn checkpoints(jobs: mpsc::WeakUnboundedSender<Box<dyn Job>>, readers: AnyPool, finish: Arc<AtomicBool>) {
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

/// Transaction control as plain text: no prepared statement, and sqlx's own transaction depth
/// is never involved (it would be wrong after SQLite rolls back by itself).
async fn exec(conn: &mut AnyConnection, sql: &str) -> Result<(), String> {
    conn.execute(sqlx::raw_sql(sql))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_job_fails_alone_and_its_group_commits() {
        let (_dir, store, chats) = store_with_chats(2).await;
        store.append_messages(&chats[1], &pair("before")).await.unwrap();
        store.delete_chat(&chats[1]).await.unwrap();
        // Queued together: one group; the job that fails must not take the others with it.
        let (one, two, three) = (pair("kept"), pair("gone"), pair("also kept"));
        let (kept, gone, also_kept) = tokio::join!(
            store.append_messages(&chats[0], &one),
            store.append_messages(&chats[1], &two),
            store.append_messages(&chats[0], &three),
        );
        assert_eq!(kept.unwrap().len(), 2);
        assert!(matches!(gone, Err(StoreError::NotFound("Chat"))), "{gone:?}");
        assert_eq!(also_kept.unwrap().len(), 2);
        assert_eq!(store.conversation(&chats[0]).await.unwrap().len(), 4);
        assert!(store.conversation(&chats[1]).await.unwrap().is_empty());
        // A job that failed half-way (its first statement done) leaves nothing behind.
        let half = store
            .write(|conn| {
                Box::pin(async move {
                    sqlx::query("INSERT INTO users (id, email, created_at) VALUES ('half', 'half@x', 't')")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("INSERT INTO users (id, email, created_at) VALUES ('half', 'dup@x', 't')")
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            })
            .await;
        assert!(half.is_err());
        assert!(!store.user_exists("half").await.unwrap());
        assert_eq!(store.foreign_key_violations().await.unwrap(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_commit_answers_every_job_of_its_group_with_an_error() {
        let (_dir, store, chats) = store_with_chats(1).await;
        store.append_messages(&chats[0], &pair("before")).await.unwrap();
        // The database may not grow: the commit of the next group fails (a stand-in for a
        // full disk), and no job of it may be told it was saved.
        let pages: i64 = store
            .write(|conn| {
                Box::pin(async move { Ok(sqlx::query_scalar("PRAGMA page_count").fetch_one(&mut *conn).await?) })
            })
            .await
            .unwrap();
        let limit = format!("PRAGMA max_page_count = {pages}");
        store
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query_scalar::<_, i64>(&limit).fetch_one(&mut *conn).await?;
                    Ok(())
                })
            })
            .await
            .unwrap();
        let big = "x".repeat(200_000);
        let mut answered = Vec::new();
        for round in 0..4 {
            let (store, chat, big) = (store.clone(), chats[0].clone(), big.clone());
            answered.push(tokio::spawn(async move {
                store.append_messages(&chat, &pair(&format!("{round}{big}"))).await
            }));
        }
        let mut saved = 0;
        for task in answered {
            saved += usize::from(task.await.unwrap().is_ok());
        }
        assert_eq!(saved, 0, "nothing fits, nothing is acknowledged");
        assert_eq!(store.conversation(&chats[0]).await.unwrap().len(), 2);
        // Space again: writes go on.
        store
            .write(|conn| {
                Box::pin(async move {
                    sqlx::query_scalar::<_, i64>("PRAGMA max_page_count = 1073741823")
                        .fetch_one(&mut *conn)
                        .await?;
                    Ok(())
                })
            })
            .await
            .unwrap();
        store.append_messages(&chats[0], &pair(&big)).await.unwrap();
        assert_eq!(store.conversation(&chats[0]).await.unwrap().len(), 4);
    }

    #[tokio::test]
    async fn numbers_are_shared_by_appends_and_entries_of_other_writes() {
        let (_dir, store, chats) = store_with_chats(1).await;
        let chat = &chats[0];
        store.append_messages(chat, &pair("first")).await.unwrap();
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

    #[tokio::test]
    async fn a_second_store_on_the_same_file_is_refused_and_readers_beside_the_writer_work() {
        let (dir, store, chats) = store_with_chats(1).await;
        let url = format!("sqlite://{}", dir.path().join("kafka.db").display());
        let refused = Store::connect(&url).await.unwrap_err();
        assert!(refused.to_string().contains("another Kafka server"), "{refused}");
        // The first store goes on reading and writing.
        store.append_messages(&chats[0], &pair("still")).await.unwrap();
        assert_eq!(store.conversation(&chats[0]).await.unwrap().len(), 2);
        drop(store);
        // Once it is gone (its connections close in the background), the file is free.
        let mut reopened = None;
        for _ in 0..100 {
            match Store::connect(&url).await {
                Ok(store) => {
                    reopened = Some(store);
                    break;
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
        let store = reopened.expect("the file is free once the first store is gone");
        assert_eq!(store.conversation(&chats[0]).await.unwrap().len(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn entries_of_all_writes_share_one_numbering_without_gaps() {
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
}

//! The SQLite writer: one thread takes every write from a queue and commits whatever has
//! queued in one transaction (group commit).
//!
//! Conversation appends (every echo is one) run on the thread's own rusqlite connection,
//! statement by statement with no thread hop; the other writes are sqlx closures, run on
//! sqlx's write connection. Both connections are used by this thread only, one after the
//! other: a group is cut into runs of one kind, each run one transaction, committed before
//! the next starts. Each job runs inside a savepoint: a job that fails (or panics) is rolled
//! back alone and gets its own error; the others commit. Every caller is answered after its
//! run's commit, with the commit's error if it failed (nothing of the run is then stored): an
//! answer is never ahead of the disk. Jobs run in the order they were queued, so entries
//! numbered in a chat (`seq`) follow the order in which their writers were answered. Readers
//! (the pool, `PRAGMA query_only`) see committed rows only.
//!
//! A caller that stops waiting (its socket closed) cancels nothing: its job commits or fails
//! with its run.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use rusqlite::OptionalExtension;
use sqlx::{AnyConnection, AnyPool, Executor};
use tokio::runtime::Handle;
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

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        StoreError::Write(error.to_string())
    }
}

/// A queued sqlx write, type-erased: run it (true: it succeeded), then answer it with the
/// commit's outcome.
trait Job: Send {
    fn run<'a>(&'a mut self, conn: &'a mut AnyConnection) -> BoxFuture<'a, bool>;
    fn answer(self: Box<Self>, commit: Result<(), &str>);
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
            // A panic is this job's failure: its savepoint is rolled back like any other.
            let result = AssertUnwindSafe(async move { f(conn).await })
                .catch_unwind()
                .await
                .unwrap_or_else(|_| Err(StoreError::Write("the write failed (it panicked)".into())));
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
    done: oneshot::Sender<StoreResult<Vec<MessageRecord>>>,
}

/// What the writer takes: appends run on rusqlite, the rest on sqlx.
enum Queued {
    Append(Append),
    Other(Box<dyn Job>),
}

/// The sending half; the thread ends (and closes its connections) when the last clone is
/// dropped.
#[derive(Debug, Clone)]
pub(super) struct SqliteWriter {
    jobs: mpsc::UnboundedSender<Queued>,
}

impl SqliteWriter {
    /// Starts the writer thread on the database `file` with `conn`, sqlx's write connection
    /// (`pragmas` are applied to the thread's own connection too; automatic checkpoints are
    /// turned off on both: they would run inside a commit, fsyncs included), and the
    /// checkpoints beside it through `readers`.
    pub(super) async fn start(
        mut conn: AnyConnection,
        file: &str,
        pragmas: &str,
        readers: AnyPool,
    ) -> StoreResult<Self> {
        conn.execute("PRAGMA wal_autocheckpoint = 0").await?;
        let db = rusqlite::Connection::open(file)?;
        db.execute_batch(pragmas)?;
        db.execute_batch("PRAGMA wal_autocheckpoint = 0")?;
        let (jobs, queue) = mpsc::unbounded_channel();
        let finish = Arc::new(AtomicBool::new(false));
        let runtime = Handle::current();
        let flag = finish.clone();
        std::thread::Builder::new()
            .name("kafka-writer".into())
            .spawn(move || run(db, conn, queue, flag, runtime))
            .map_err(|e| StoreError::Write(format!("starting the writer thread: {e}")))?;
        tokio::spawn(checkpoints(jobs.downgrade(), readers, finish));
        Ok(Self { jobs })
    }

    /// Queues `f`; returns its result once the run it was in has committed.
    pub(super) async fn write<T: Send + 'static>(&self, f: impl WriteFn<T>) -> StoreResult<T> {
        let (done, answer) = oneshot::channel();
        let job = Write {
            f: Some(f),
            result: None,
            done,
        };
        self.jobs
            .send(Queued::Other(Box::new(job)))
            .map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }

    /// Queues messages for the chat; returns them with their `seq` once committed.
    pub(super) async fn append(&self, chat_id: &str, messages: Vec<MessageRecord>) -> StoreResult<Vec<MessageRecord>> {
        let (done, answer) = oneshot::channel();
        let chat_id = chat_id.to_owned();
        let job = Append {
            chat_id,
            messages,
            done,
        };
        self.jobs.send(Queued::Append(job)).map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }
}

fn writer_gone() -> StoreError {
    StoreError::Write("the database writer did not answer".into())
}

/// The thread: takes what has queued, runs it as a group (a transaction per run of one
/// kind), answers, repeats.
fn run(
    mut db: rusqlite::Connection,
    mut conn: AnyConnection,
    mut queue: mpsc::UnboundedReceiver<Queued>,
    finish: Arc<AtomicBool>,
    runtime: Handle,
) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = queue.blocking_recv() {
        group.push(first);
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let mut jobs = group.drain(..).peekable();
        while let Some(job) = jobs.next() {
            match job {
                Queued::Append(first) => {
                    let mut run = vec![first];
                    while let Some(Queued::Append(next)) = jobs.next_if(|j| matches!(j, Queued::Append(_))) {
                        run.push(next);
                    }
                    commit_appends(&mut db, run);
                }
                Queued::Other(first) => {
                    let mut run = vec![first];
                    while let Some(Queued::Other(next)) = jobs.next_if(|j| matches!(j, Queued::Other(_))) {
                        run.push(next);
                    }
                    let outcome = runtime.block_on(commit_group(&mut conn, &mut run));
                    if let Err(error) = &outcome {
                        tracing::error!(%error, jobs = run.len(), "a group commit failed; nothing of it is stored");
                    }
                    let commit = outcome.as_ref().map(|_| ()).map_err(String::as_str);
                    for job in run {
                        job.answer(commit);
                    }
                }
            }
        }
        if finish.swap(false, Ordering::AcqRel)
            && let Err(error) = db.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
        {
            tracing::warn!(%error, "wal checkpoint");
        }
    }
    drop(db);
    let _ = runtime.block_on(sqlx::Connection::close(conn));
}

/// Appends the run's messages in one transaction on the thread's connection, each job in a
/// savepoint (so a job refused by a constraint or trigger fails alone), and answers each job
/// once committed. A panic is caught: the transaction is rolled back and every job of the run
/// gets an error; the writer goes on.
fn commit_appends(db: &mut rusqlite::Connection, run: Vec<Append>) {
    let now = now_iso();
    let written = std::panic::catch_unwind(AssertUnwindSafe(|| append_all(db, &run, &now)));
    let results = match written {
        Ok(Ok(results)) => results,
        failed => {
            let error = match failed {
                Ok(Err(error)) => error.to_string(),
                _ => "the write failed (it panicked)".to_owned(),
            };
            tracing::error!(%error, jobs = run.len(), "a group commit failed; nothing of it is stored");
            if !db.is_autocommit() {
                // SQLite may have rolled back already (a full disk): then this fails harmlessly.
                let _ = db.execute_batch("ROLLBACK");
            }
            run.iter().map(|_| Err(StoreError::Write(error.clone()))).collect()
        }
    };
    for (job, result) in run.into_iter().zip(results) {
        let _ = job.done.send(result);
    }
}

/// Runs the appends in one transaction and commits; each job's own result, or the error that
/// ended the transaction (a job's failure that made SQLite roll back everything included).
fn append_all(
    db: &rusqlite::Connection,
    run: &[Append],
    now: &str,
) -> StoreResult<Vec<StoreResult<Vec<MessageRecord>>>> {
    db.execute_batch("BEGIN IMMEDIATE")?;
    let mut results = Vec::with_capacity(run.len());
    for job in run {
        db.execute_batch("SAVEPOINT job")?;
        let result = append_one(db, job, now);
        if result.is_err() {
            if db.is_autocommit() {
                return result.map(|_| Vec::new());
            }
            db.execute_batch("ROLLBACK TO job")?;
        }
        db.execute_batch("RELEASE job")?;
        results.push(result);
    }
    db.execute_batch("COMMIT")?;
    Ok(results)
}

/// Numbers the job's messages after its chat's last entry (one index seek) and inserts them;
/// a trigger touches the chat (migration 0006). A chat that does not exist is `NotFound`.
fn append_one(db: &rusqlite::Connection, job: &Append, now: &str) -> StoreResult<Vec<MessageRecord>> {
    let last: Option<i64> = db
        .prepare_cached(
            "SELECT (SELECT seq FROM chat_conversations WHERE chat_id = ?1 ORDER BY seq DESC LIMIT 1)
             FROM chats WHERE id = ?1",
        )?
        .query_row([&job.chat_id], |row| row.get(0))
        .optional()?
        .ok_or(StoreError::NotFound("Chat"))?;
    let mut insert = db.prepare_cached(
        "INSERT INTO chat_conversations (chat_id, seq, role, type, content, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut seq = last.unwrap_or(0);
    let mut saved = Vec::with_capacity(job.messages.len());
    for m in &job.messages {
        seq += 1;
        insert.execute(rusqlite::params![
            job.chat_id,
            seq,
            m.role,
            m.kind,
            m.content.to_string(),
            now
        ])?;
        saved.push(MessageRecord { seq, ..m.clone() });
    }
    Ok(saved)
}

/// Runs the jobs in one transaction, each in a savepoint; commits. On any failure outside a
/// job's own statements (a savepoint that cannot be rolled back — SQLite may have rolled back
/// the whole transaction, as on a full disk — or the commit), rolls back everything. The
/// transaction control between two jobs goes to SQLite as one call.
async fn commit_group(conn: &mut AnyConnection, jobs: &mut [Box<dyn Job>]) -> Result<(), String> {
    let outcome = async {
        exec(conn, "BEGIN IMMEDIATE; SAVEPOINT job").await?;
        let last = jobs.len() - 1;
        for (i, job) in jobs.iter_mut().enumerate() {
            let ok = job.run(conn).await;
            let end = if ok { "" } else { "ROLLBACK TO job; " };
            let next = if i == last { "COMMIT" } else { "SAVEPOINT job" };
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
async fn checkpoints(jobs: mpsc::WeakUnboundedSender<Queued>, readers: AnyPool, finish: Arc<AtomicBool>) {
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
    async fn a_panicking_write_fails_alone_and_the_writer_goes_on() {
        let (_dir, store, chats) = store_with_chats(1).await;
        let add_user = |id: &'static str, boom: bool| {
            store.write(move |conn| {
                Box::pin(async move {
                    sqlx::query("INSERT INTO users (id, email, created_at) VALUES ($1, $1, 't')")
                        .bind(id)
                        .execute(&mut *conn)
                        .await?;
                    if boom {
                        panic!("a bug inside a write");
                    }
                    Ok(())
                })
            })
        };
        // Queued together with appends and another write: only the panicking job fails.
        let (one, two) = (pair("before"), pair("after"));
        let (kept, kept_user, panicked, also_kept) = tokio::join!(
            store.append_messages(&chats[0], &one),
            add_user("kept", false),
            add_user("panicked", true),
            store.append_messages(&chats[0], &two),
        );
        assert!(
            matches!(&panicked, Err(StoreError::Write(e)) if e.contains("panicked")),
            "{panicked:?}"
        );
        assert!(
            !store.user_exists("panicked").await.unwrap(),
            "its statement is rolled back"
        );
        kept_user.unwrap();
        assert!(store.user_exists("kept").await.unwrap());
        assert_eq!(kept.unwrap().len(), 2);
        assert_eq!(also_kept.unwrap().len(), 2);
        // The writer is still there.
        add_user("later", false).await.unwrap();
        assert_eq!(store.conversation(&chats[0]).await.unwrap().len(), 4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_append_refused_by_a_trigger_fails_alone() {
        let (_dir, store, chats) = store_with_chats(2).await;
        // As a quota's trigger would: one job's rows are refused, in the middle of a run.
        store
            .write(|conn| {
                Box::pin(async move {
                    sqlx::query(
                        "CREATE TRIGGER refuse BEFORE INSERT ON chat_conversations
                         WHEN NEW.content LIKE '%over quota%' BEGIN SELECT RAISE(ABORT, 'over quota'); END",
                    )
                    .execute(&mut *conn)
                    .await?;
                    Ok(())
                })
            })
            .await
            .unwrap();
        let refused = [
            MessageRecord::text("user", "fine"),
            MessageRecord::text("assistant", "over quota"),
        ];
        let (one, two) = (pair("fine"), pair("fine too"));
        let (kept, gone, also_kept) = tokio::join!(
            store.append_messages(&chats[0], &one),
            store.append_messages(&chats[1], &refused),
            store.append_messages(&chats[1], &two),
        );
        assert_eq!(kept.unwrap().len(), 2);
        assert!(
            matches!(&gone, Err(StoreError::Write(e)) if e.contains("over quota")),
            "{gone:?}"
        );
        let seqs: Vec<i64> = also_kept.unwrap().iter().map(|m| m.seq).collect();
        assert_eq!(seqs, [1, 2], "the refused job's first row was rolled back with it");
        assert_eq!(store.conversation(&chats[1]).await.unwrap().len(), 2);
    }

    /// sqlx's write connection, for the writes that are not appends.
    async fn set_max_pages(store: &Store, pages: Option<i64>) -> i64 {
        store
            .write(move |conn| {
                Box::pin(async move {
                    let pages = pages.map_or("1073741823".into(), |p| p.to_string());
                    sqlx::query_scalar::<_, i64>(&format!("PRAGMA max_page_count = {pages}"))
                        .fetch_one(&mut *conn)
                        .await?;
                    Ok(sqlx::query_scalar("PRAGMA page_count").fetch_one(&mut *conn).await?)
                })
            })
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_commit_answers_every_job_of_its_group_with_an_error() {
        let (_dir, store, _) = store_with_chats(0).await;
        // The database may not grow: the next group fails (a stand-in for a full disk), and
        // no job of it may be told it was saved.
        let pages = set_max_pages(&store, None).await;
        set_max_pages(&store, Some(pages)).await;
        let mut saved = 0;
        for task in add_big_users(&store, "full") {
            saved += usize::from(task.await.unwrap().is_ok());
        }
        assert_eq!(saved, 0, "nothing fits, nothing is acknowledged");
        // Space again: writes go on.
        set_max_pages(&store, None).await;
        for task in add_big_users(&store, "room") {
            task.await.unwrap().unwrap();
        }
    }

    /// Four concurrent writes of a user with a 200 kB email.
    fn add_big_users(store: &Store, prefix: &str) -> Vec<tokio::task::JoinHandle<Result<(), StoreError>>> {
        (0..4)
            .map(|i| {
                let (store, email) = (store.clone(), format!("{prefix}{i}{}", "x".repeat(200_000)));
                tokio::spawn(async move {
                    store
                        .write(move |conn| {
                            Box::pin(async move {
                                sqlx::query("INSERT INTO users (id, email, created_at) VALUES ($1, $1, 't')")
                                    .bind(email)
                                    .execute(&mut *conn)
                                    .await?;
                                Ok(())
                            })
                        })
                        .await
                })
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn appends_whose_transaction_sqlite_rolled_back_are_all_answered_with_an_error() {
        let (_dir, store, chats) = store_with_chats(1).await;
        store.append_messages(&chats[0], &pair("before")).await.unwrap();
        // As on a full disk, SQLite rolls back the whole transaction in the middle of a run:
        // the jobs before the one that failed are gone too, and must not be acknowledged.
        let trigger = "CREATE TRIGGER roll_back BEFORE INSERT ON chat_conversations
            WHEN NEW.content LIKE '%roll back%' BEGIN SELECT RAISE(ROLLBACK, 'rolled back'); END";
        store
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query(trigger).execute(&mut *conn).await?;
                    Ok(())
                })
            })
            .await
            .unwrap();
        let (one, two, three) = (pair("first"), pair("roll back"), pair("third"));
        let (first, second, third) = tokio::join!(
            store.append_messages(&chats[0], &one),
            store.append_messages(&chats[0], &two),
            store.append_messages(&chats[0], &three),
        );
        assert!(second.is_err());
        // Queued together they all fail; one that ran in a run of its own is stored. Either
        // way exactly the acknowledged entries are in the table.
        let mut acknowledged = vec!["before".to_owned()];
        for (answer, tag) in [(first, "first"), (third, "third")] {
            if answer.is_ok() {
                acknowledged.push(tag.into());
            }
        }
        let stored = store.conversation(&chats[0]).await.unwrap();
        let tags: Vec<String> = stored
            .chunks(2)
            .map(|two| two[0].content.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(tags, acknowledged);
        store
            .write(|conn| {
                Box::pin(async move {
                    sqlx::query("DROP TRIGGER roll_back").execute(&mut *conn).await?;
                    Ok(())
                })
            })
            .await
            .unwrap();
        let after = store.append_messages(&chats[0], &pair("after")).await.unwrap();
        assert_eq!(after[0].seq, stored.len() as i64 + 1);
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

//! Group commit for conversation appends: the appends of many sessions that arrive while a
//! commit is running are written together in the next transaction.
//!
//! Why: every chat message is committed before its reply goes out, and one SQLite commit per
//! message (with its lock hand-over between pooled connections) caps a server at a few
//! thousand messages a second. One writer task that drains its queue into a single
//! transaction turns N commits into one, with the same promise: a caller's `append` returns
//! only after the transaction holding its messages has committed.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::{Any, AnyPool, QueryBuilder};
use tokio::sync::{mpsc, oneshot};

use super::conversation::{self, MessageRecord};
use super::{StoreError, StoreResult, new_id, now_iso};

/// Requests waiting for the writer before senders wait too.
const QUEUE: usize = 4096;
/// Most messages in one transaction: SQLite allows 32,766 bound values per statement and a
/// message row binds 7.
const MAX_BATCH_MESSAGES: usize = 2048;

/// How often the WAL is copied back into the database, off the writer's path.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// One caller's messages, committed together and in order.
struct Request {
    chat_id: String,
    messages: Vec<MessageRecord>,
    done: oneshot::Sender<StoreResult<Vec<MessageRecord>>>,
}

/// The sending half; the writer task ends when the last clone is dropped.
#[derive(Debug, Clone)]
pub(super) struct GroupCommit {
    queue: mpsc::Sender<Request>,
}

impl GroupCommit {
    /// Starts the writer task on the current runtime. `writer` is the write connection (its
    /// automatic checkpoints off), `readers` the pool that runs the checkpoints instead.
    pub(super) fn start(writer: AnyPool, readers: AnyPool) -> Self {
        let (queue, requests) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(writer, readers, requests));
        Self { queue }
    }

    /// Appends `messages` to the chat; returns them with their `seq` once committed.
    pub(super) async fn append(&self, chat_id: &str, messages: Vec<MessageRecord>) -> StoreResult<Vec<MessageRecord>> {
        let (done, result) = oneshot::channel();
        let request = Request {
            chat_id: chat_id.to_owned(),
            messages,
            done,
        };
        self.queue.send(request).await.map_err(|_| writer_gone())?;
        result.await.map_err(|_| writer_gone())?
    }
}

fn writer_gone() -> StoreError {
    StoreError::Database(sqlx::Error::PoolClosed)
}

/// The writer: takes whatever is queued (up to a batch), commits it, answers, repeats; and
/// every so often has the WAL checkpointed on a reader connection. (SQLite's automatic
/// checkpoint runs inside the commit that crosses the threshold, with its fsyncs: a stall
/// for every session waiting on that commit.) Ends when the store is dropped.
async fn write_batches(pool: AnyPool, readers: AnyPool, mut requests: mpsc::Receiver<Request>) {
    let mut checkpoints = tokio::time::interval(CHECKPOINT_EVERY);
    checkpoints.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let first = tokio::select! {
            request = requests.recv() => match request {
                Some(request) => request,
                None => return,
            },
            _ = checkpoints.tick() => {
                let readers = readers.clone();
                tokio::spawn(async move {
                    // PASSIVE: copies what it can without waiting for, or blocking, anyone.
                    if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&readers).await {
                        tracing::debug!(%error, "wal checkpoint");
                    }
                });
                continue;
            }
        };
        let mut batch = vec![first];
        let mut messages = batch[0].messages.len();
        while messages < MAX_BATCH_MESSAGES {
            match requests.try_recv() {
                Ok(request) => {
                    messages += request.messages.len();
                    batch.push(request);
                }
                Err(_) => break,
            }
        }
        commit(&pool, batch).await;
    }
}

/// Commits a batch in one transaction. If that fails (a chat deleted meanwhile, say), each
/// request is retried alone so that only the failing ones get an error.
async fn commit(pool: &AnyPool, batch: Vec<Request>) {
    let jobs: Vec<(&str, &[MessageRecord])> = batch
        .iter()
        .map(|r| (r.chat_id.as_str(), r.messages.as_slice()))
        .collect();
    match commit_together(pool, &jobs).await {
        Ok(saved) => {
            for (request, saved) in batch.into_iter().zip(saved) {
                let _ = request.done.send(Ok(saved));
            }
        }
        Err(error) if batch.len() == 1 => {
            let _ = batch.into_iter().next().map(|r| r.done.send(Err(error)));
        }
        Err(_) => {
            for request in batch {
                let result = commit_alone(pool, &request.chat_id, &request.messages).await;
                let _ = request.done.send(result);
            }
        }
    }
}

async fn commit_alone(pool: &AnyPool, chat_id: &str, messages: &[MessageRecord]) -> StoreResult<Vec<MessageRecord>> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let mut saved = Vec::with_capacity(messages.len());
    for message in messages {
        saved.push(conversation::append(&mut tx, chat_id, message).await?);
    }
    tx.commit().await?;
    Ok(saved)
}

/// Four statements whatever the batch size: read each chat's last `seq`, insert every row,
/// touch every chat, commit. The write lock (IMMEDIATE) keeps the numbers ours until commit.
async fn commit_together(pool: &AnyPool, jobs: &[(&str, &[MessageRecord])]) -> StoreResult<Vec<Vec<MessageRecord>>> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let mut chats: Vec<&str> = jobs.iter().map(|(chat, _)| *chat).collect();
    chats.sort_unstable();
    chats.dedup();

    // One index seek per chat: `MAX(seq) ... GROUP BY` would step through every entry of
    // every chat in the batch, and conversations grow without bound.
    let mut last_seq = QueryBuilder::<Any>::new(
        "SELECT c.id, COALESCE((SELECT m.seq FROM chat_conversations m WHERE m.chat_id = c.id \
         ORDER BY m.seq DESC LIMIT 1), 0) FROM chats c WHERE c.id IN (",
    );
    let mut list = last_seq.separated(", ");
    for chat in &chats {
        list.push_bind(*chat);
    }
    last_seq.push(")");
    let mut next: HashMap<String, i64> = last_seq
        .build_query_as::<(String, i64)>()
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();

    let now = now_iso();
    let saved: Vec<Vec<MessageRecord>> = jobs
        .iter()
        .map(|(chat, messages)| {
            let seq = next.entry((*chat).to_owned()).or_insert(0);
            messages
                .iter()
                .map(|m| {
                    *seq += 1;
                    MessageRecord { seq: *seq, ..m.clone() }
                })
                .collect()
        })
        .collect();

    let mut insert =
        QueryBuilder::<Any>::new("INSERT INTO chat_conversations (id, chat_id, seq, role, type, content, created_at) ");
    let rows = jobs
        .iter()
        .zip(&saved)
        .flat_map(|((chat, _), messages)| messages.iter().map(move |m| (*chat, m)));
    insert.push_values(rows, |mut row, (chat, m)| {
        row.push_bind(new_id())
            .push_bind(chat)
            .push_bind(m.seq)
            .push_bind(m.role.clone())
            .push_bind(m.kind.clone())
            .push_bind(m.content.to_string())
            .push_bind(now.clone());
    });
    insert.build().execute(&mut *tx).await?;

    let mut touch = QueryBuilder::<Any>::new("UPDATE chats SET last_updated = ");
    touch.push_bind(now.clone()).push(" WHERE id IN (");
    let mut list = touch.separated(", ");
    for chat in &chats {
        list.push_bind(*chat);
    }
    touch.push(")");
    touch.build().execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(saved)
}

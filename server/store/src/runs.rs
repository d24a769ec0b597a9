//! The one agent run a chat may have at a time, across server instances.
//!
//! On PostgreSQL a run holds a session-level advisory lock keyed by the chat, on a connection
//! of its own (outside the pool, so long runs cannot starve it) for as long as it lasts. The
//! lock goes with the connection: released when the run ends, and by PostgreSQL itself when
//! an instance dies mid-run. On SQLite one process owns the database and the hub's in-process
//! slot is the whole rule, so a lease is only a token.

use sqlx::postgres::PgConnection;
use sqlx::{Connection, Row};

use super::{Backend, Store, StoreResult, new_id};

/// The key: `hashtextextended` is stable for a given PostgreSQL server, which every instance
/// shares; the prefix keeps clear of other users of advisory locks.
const TRY_LOCK: &str = "SELECT pg_try_advisory_lock(hashtextextended('kafka-agent-run:' || $1, 0))";

/// Whether another session holds the lock: take it and give it back at once if free. CASE
/// guarantees the unlock runs only after a successful lock.
const HELD_ELSEWHERE: &str = "SELECT CASE WHEN pg_try_advisory_lock(hashtextextended('kafka-agent-run:' || $1, 0))
     THEN NOT pg_advisory_unlock(hashtextextended('kafka-agent-run:' || $1, 0)) ELSE TRUE END";

/// The right to run the agent on one chat. Give it back with [`RunLease::release`];
/// dropping it releases it too (the connection closes).
#[derive(Debug)]
pub struct RunLease {
    connection: Option<PgConnection>,
}

impl RunLease {
    pub async fn release(self) {
        if let Some(connection) = self.connection
            && let Err(error) = connection.close().await
        {
            // The server drops the lock with the connection either way.
            tracing::warn!(%error, "closing an agent-run lock connection");
        }
    }
}

impl Store {
    /// Claims the chat's agent run for this instance; `None` when another instance has it.
    pub async fn claim_agent_run(&self, chat_id: &str) -> StoreResult<Option<RunLease>> {
        if self.backend == Backend::Sqlite {
            return Ok(Some(RunLease { connection: None }));
        }
        let mut connection = PgConnection::connect(&self.url).await?;
        let locked: bool = sqlx::query_scalar(TRY_LOCK)
            .bind(chat_id)
            .fetch_one(&mut connection)
            .await?;
        if !locked {
            connection.close().await?;
            return Ok(None);
        }
        Ok(Some(RunLease {
            connection: Some(connection),
        }))
    }

    /// Whether another instance runs the agent on this chat (never, on SQLite).
    pub async fn agent_run_elsewhere(&self, chat_id: &str) -> StoreResult<bool> {
        if self.backend == Backend::Sqlite {
            return Ok(false);
        }
        Ok(sqlx::query_scalar(HELD_ELSEWHERE)
            .bind(chat_id)
            .fetch_one(&self.pool)
            .await?)
    }
}

/// A finished agent run, as `agent_runs` keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRunRecord {
    pub chat_id: String,
    pub model: String,
    /// `answer`, `file`, `edit`, `failed` or `cancelled`.
    pub outcome: String,
    /// The conversation entry the run produced (its answer, file or failure note).
    pub message_seq: Option<i64>,
    /// Prompt, completion and total tokens; `None` when the provider did not report them.
    pub tokens: Option<(i64, i64, i64)>,
    pub started_at: String,
    pub finished_at: String,
}

impl Store {
    pub async fn record_agent_run(&self, run: AgentRunRecord) -> StoreResult<()> {
        self.write(move |conn| {
            Box::pin(async move {
                let (prompt, completion, total) = match run.tokens {
                    Some((p, c, t)) => (Some(p), Some(c), Some(t)),
                    None => (None, None, None),
                };
                sqlx::query(
                    "INSERT INTO agent_runs (id, chat_id, model, outcome, message_seq, prompt_tokens,
                     completion_tokens, total_tokens, started_at, finished_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(new_id())
                .bind(&run.chat_id)
                .bind(&run.model)
                .bind(&run.outcome)
                .bind(run.message_seq)
                .bind(prompt)
                .bind(completion)
                .bind(total)
                .bind(&run.started_at)
                .bind(&run.finished_at)
                .execute(&mut *conn)
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// The chat's finished runs, oldest first.
    pub async fn agent_runs(&self, chat_id: &str) -> StoreResult<Vec<AgentRunRecord>> {
        let rows = sqlx::query(
            "SELECT chat_id, model, outcome, message_seq, prompt_tokens, completion_tokens, total_tokens,
             started_at, finished_at FROM agent_runs WHERE chat_id = $1 ORDER BY finished_at, id",
        )
        .bind(chat_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| {
                let tokens: (Option<i64>, Option<i64>, Option<i64>) = (
                    row.get("prompt_tokens"),
                    row.get("completion_tokens"),
                    row.get("total_tokens"),
                );
                AgentRunRecord {
                    chat_id: row.get("chat_id"),
                    model: row.get("model"),
                    outcome: row.get("outcome"),
                    message_seq: row.get("message_seq"),
                    tokens: match tokens {
                        (Some(p), Some(c), Some(t)) => Some((p, c, t)),
                        _ => None,
                    },
                    started_at: row.get("started_at"),
                    finished_at: row.get("finished_at"),
                }
            })
            .collect())
    }
}

//! The one agent run a chat may have at a time, across server instances.
//!
//! On PostgreSQL a run holds a session-level advisory lock keyed by the chat, on a connection
//! of its own (outside the pool, so long runs cannot starve it) for as long as it lasts. The
//! lock goes with the connection: released when the run ends, and by PostgreSQL itself when
//! an instance dies mid-run. On SQLite one process owns the database and the hub's in-process
//! slot is the whole rule, so a lease is only a token.

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use super::{Backend, Store, StoreResult};

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

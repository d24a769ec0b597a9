//! Live chat events: what one server instance publishes, every instance sharing the database
//! delivers to its own WebSocket sessions, in the same order.
//!
//! On SQLite there is one instance: a published signal is handed straight to the local
//! `deliver` callback, as before. On PostgreSQL a signal goes out with `NOTIFY` on one
//! channel and comes back (to every instance, this one included) through `LISTEN`, so all
//! instances see the same stream in PostgreSQL's commit order. A signal too big for a NOTIFY
//! payload is stored in `chat_event_payloads` and the NOTIFY carries only its id.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnection, PgListener};
use sqlx::{Connection, Row};
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::{Backend, Store, StoreResult, new_id, now_iso};

/// The NOTIFY channel every instance listens on.
const CHANNEL: &str = "kafka_chat_events";
/// NOTIFY refuses payloads of 8000 bytes or more; keep a margin.
const MAX_NOTIFY_BYTES: usize = 7900;
/// A NOTIFY payload that starts with this names a stored payload instead of holding it.
const STORED_PREFIX: &str = "@";
/// Stored payloads older than this are removed (every listener read them long before).
const STORED_KEEP: chrono::TimeDelta = chrono::TimeDelta::minutes(10);
/// Wait before reconnecting a lost publisher connection.
const RECONNECT_WAIT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalKind {
    /// `frame` is a chat event for the chat's protocol-2 sessions.
    Event,
    /// `frame` is the last event of a deleted chat: deliver it, close the sessions, stop its
    /// agent run.
    ChatDeleted,
    /// Stop the chat's agent run, wherever it runs.
    CancelRun,
    /// Events may have been lost (the listener reconnected): every session should reload.
    Resync,
    /// `frame` is a JSON array of token hashes just revoked (a logout, a password change):
    /// sessions opened with them close. `chat_id` is empty.
    TokensRevoked,
}

/// One message on the bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatSignal {
    pub chat_id: String,
    pub kind: SignalKind,
    /// The serialized event frame; empty when the kind carries none.
    pub frame: String,
}

/// Called with every signal, one at a time, in bus order.
pub type Deliver = Arc<dyn Fn(ChatSignal) + Send + Sync>;

/// Publishes chat signals; see the module docs. Dropping it stops the background tasks.
pub struct EventBus {
    route: Route,
    _stop: Option<DropGuard>,
}

enum Route {
    Local(Deliver),
    /// To the publisher task, which sends in the order it receives.
    Shared(mpsc::UnboundedSender<ChatSignal>),
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let route = match self.route {
            Route::Local(_) => "local",
            Route::Shared(_) => "shared",
        };
        f.debug_struct("EventBus").field("route", &route).finish()
    }
}

impl EventBus {
    /// Sends `signal` to every instance. Never waits: callers publish from synchronous code.
    pub fn publish(&self, signal: ChatSignal) {
        match &self.route {
            Route::Local(deliver) => deliver(signal),
            Route::Shared(outbox) => {
                if outbox.send(signal).is_err() {
                    tracing::error!("the event publisher has stopped; an event was dropped");
                }
            }
        }
    }
}

impl Store {
    /// Starts live events. `deliver` receives every signal any instance publishes (this one
    /// included), in order. On PostgreSQL the LISTEN is in place before this returns, so
    /// nothing published afterwards is missed.
    pub async fn event_bus(&self, deliver: Deliver) -> StoreResult<EventBus> {
        if self.backend == Backend::Sqlite {
            return Ok(EventBus {
                route: Route::Local(deliver),
                _stop: None,
            });
        }
        let mut listener = PgListener::connect(&self.url).await?;
        listener.listen(CHANNEL).await?;
        let publisher = PgConnection::connect(&self.url).await?;
        let stop = CancellationToken::new();
        let (outbox, queue) = mpsc::unbounded_channel();
        tokio::spawn(listen(self.clone(), listener, deliver, stop.clone()));
        tokio::spawn(publish_all(self.url.clone(), publisher, queue, stop.clone()));
        Ok(EventBus {
            route: Route::Shared(outbox),
            _stop: Some(stop.drop_guard()),
        })
    }
}

/// Sends queued signals one by one on one connection, so this instance's signals keep their
/// order. A failed send is retried once on a new connection (the old one may have gone stale,
/// e.g. after a database restart), then logged and dropped.
async fn publish_all(
    url: String,
    connection: PgConnection,
    mut queue: mpsc::UnboundedReceiver<ChatSignal>,
    stop: CancellationToken,
) {
    let mut connection = Some(connection);
    loop {
        let signal = tokio::select! {
            _ = stop.cancelled() => return,
            signal = queue.recv() => match signal {
                Some(signal) => signal,
                None => return,
            },
        };
        for attempt in 1..=2 {
            let conn = match connection.take() {
                Some(conn) => conn,
                None => match PgConnection::connect(&url).await {
                    Ok(conn) => conn,
                    Err(error) => {
                        tracing::error!(%error, attempt, "cannot reach PostgreSQL to publish a chat event");
                        tokio::time::sleep(RECONNECT_WAIT).await;
                        continue;
                    }
                },
            };
            match notify(conn, &signal).await {
                Ok(conn) => {
                    connection = Some(conn);
                    break;
                }
                Err(error) => tracing::error!(%error, attempt, chat_id = %signal.chat_id, "publishing a chat event"),
            }
        }
    }
}

/// Sends one signal; gives the connection back unless it failed.
async fn notify(mut conn: PgConnection, signal: &ChatSignal) -> sqlx::Result<PgConnection> {
    let body = serde_json::to_string(signal).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let payload = if body.len() > MAX_NOTIFY_BYTES {
        store_payload(&mut conn, &body).await?
    } else {
        body
    };
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(&payload)
        .execute(&mut conn)
        .await?;
    Ok(conn)
}

/// Saves an oversized payload and returns the NOTIFY payload that names it. Old ones go at
/// the same time.
async fn store_payload(conn: &mut PgConnection, body: &str) -> sqlx::Result<String> {
    let id = new_id();
    let cutoff = (chrono::Utc::now() - STORED_KEEP)
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string();
    sqlx::query("DELETE FROM chat_event_payloads WHERE created_at < $1")
        .bind(cutoff)
        .execute(&mut *conn)
        .await?;
    sqlx::query("INSERT INTO chat_event_payloads (id, body, created_at) VALUES ($1, $2, $3)")
        .bind(&id)
        .bind(body)
        .bind(now_iso())
        .execute(&mut *conn)
        .await?;
    Ok(format!("{STORED_PREFIX}{id}"))
}

/// Delivers what the channel brings until stopped. A lost connection is re-established by
/// the listener; what was sent meanwhile is lost, so sessions are told to resync.
async fn listen(store: Store, mut listener: PgListener, deliver: Deliver, stop: CancellationToken) {
    loop {
        let received = tokio::select! {
            _ = stop.cancelled() => return,
            received = listener.try_recv() => received,
        };
        match received {
            Ok(Some(notification)) => {
                if let Some(signal) = read_signal(&store, notification.payload()).await {
                    deliver(signal);
                }
            }
            Ok(None) => {
                tracing::warn!("lost the PostgreSQL event listener connection; reconnecting");
                deliver(ChatSignal {
                    chat_id: String::new(),
                    kind: SignalKind::Resync,
                    frame: String::new(),
                });
            }
            Err(error) => {
                tracing::error!(%error, "PostgreSQL event listener");
                tokio::time::sleep(RECONNECT_WAIT).await;
            }
        }
    }
}

/// Decodes a NOTIFY payload, fetching a stored one by id.
async fn read_signal(store: &Store, payload: &str) -> Option<ChatSignal> {
    let body = match payload.strip_prefix(STORED_PREFIX) {
        None => payload.to_owned(),
        Some(id) => {
            let row = sqlx::query("SELECT body FROM chat_event_payloads WHERE id = $1")
                .bind(id)
                .fetch_optional(&store.pool)
                .await;
            match row {
                Ok(Some(row)) => row.get("body"),
                Ok(None) => {
                    tracing::error!(id, "a stored chat event is gone");
                    return None;
                }
                Err(error) => {
                    tracing::error!(%error, id, "fetching a stored chat event");
                    return None;
                }
            }
        }
    };
    serde_json::from_str(&body)
        .inspect_err(|error| tracing::error!(%error, "undecodable chat event"))
        .ok()
}

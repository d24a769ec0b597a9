//! `/ws/{chat_id}`: the brief's chat session, saved at each change and live across clients.
//!
//! A session is two tasks: this reader, which handles one client frame at a time, and a
//! writer that drains the session's bounded queue into the socket (replies and events share
//! that queue, so they arrive in order). Every change is committed before its reply is queued.

mod actions;
mod agent_run;
pub mod payload;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use kafka_protocol::ws::{ErrorFrame, PROTOCOL_V2};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::time::{Instant, interval};
use warp::Filter;
use warp::filters::ws::{Message, WebSocket, Ws};
use warp::reply::{Reply, Response};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::http::with_state;
use crate::hub::{Outgoing, SESSION_QUEUE};
use crate::state::SharedState;
use crate::store::StoreError;

/// How often the server pings an idle client.
const PING_EVERY: Duration = Duration::from_secs(30);
/// A client silent for this long (no frame, no pong) is gone.
const IDLE_LIMIT: Duration = Duration::from_secs(90);
/// A write that takes longer than this means the client stopped reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Default, Deserialize)]
struct WsQuery {
    /// `2` opts in to live events.
    v: Option<u32>,
    /// The bearer token, for clients (browsers) that cannot set headers on a WebSocket.
    token: Option<String>,
}

pub fn route(state: SharedState) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::path!("ws" / String)
        .and(warp::query::<WsQuery>().or(warp::any().map(WsQuery::default)).unify())
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::ws())
        .and(with_state(state))
        .then(
            |chat_id: String, query: WsQuery, header: Option<String>, ws: Ws, state: SharedState| async move {
                // Authenticate before the upgrade, so a bad token is a plain 401 response.
                let caller = match ws_caller(&state, query.token.as_deref(), header.as_deref()).await {
                    Ok(caller) => caller,
                    Err(error) => return crate::http::error_response(&error),
                };
                // The transport refuses frames far beyond the cap; up to twice the cap the
                // session answers with a clear error frame and stays open.
                let hard_limit = state.settings.max_frame_bytes.saturating_mul(2);
                let wants_events = query.v.is_some_and(|v| v >= PROTOCOL_V2);
                ws.max_message_size(hard_limit)
                    .max_frame_size(hard_limit)
                    .on_upgrade(move |socket| session(socket, state, caller, chat_id, wants_events))
                    .into_response()
            },
        )
}

/// The caller from `?token=` or an `Authorization: Bearer` header (the query wins).
async fn ws_caller(state: &SharedState, query_token: Option<&str>, header: Option<&str>) -> Result<Caller, ApiError> {
    let token = match (query_token, header) {
        (Some(token), _) => Some(token),
        (None, Some(header)) => Some(crate::auth::bearer(header)?),
        (None, None) => None,
    };
    crate::auth::authenticate(state, token).await
}

/// What a session knows about itself.
pub(crate) struct Session {
    pub state: SharedState,
    pub chat_id: String,
    pub wants_events: Arc<AtomicBool>,
    pub queue: mpsc::Sender<Outgoing>,
}

impl Session {
    /// Queues a reply for this client. Waits while the queue is full (the client is slow, but
    /// it asked), and gives up silently if the socket is already gone.
    pub async fn send_text(&self, text: impl Into<Arc<str>>) {
        let _ = self.queue.send(Outgoing::Text(text.into())).await;
    }

    pub async fn send_json<T: serde::Serialize>(&self, value: &T) {
        match serde_json::to_string(value) {
            Ok(text) => self.send_text(text).await,
            Err(error) => tracing::error!(%error, "unserializable frame"),
        }
    }

    pub async fn send_error(&self, error: impl Into<String>) {
        self.send_json(&ErrorFrame { error: error.into() }).await;
    }
}

async fn session(socket: WebSocket, state: SharedState, caller: Caller, chat_id: String, wants_events: bool) {
    let (sink, mut stream) = socket.split();
    let (queue, outgoing) = mpsc::channel(SESSION_QUEUE);
    let writer = tokio::spawn(write_frames(sink, outgoing));
    let session = Session {
        state: state.clone(),
        chat_id,
        wants_events: Arc::new(AtomicBool::new(wants_events)),
        queue,
    };

    // Another user's chat is answered exactly like a missing one.
    let chat = match state.store.chat(&session.chat_id).await {
        Ok(chat) if caller.user_id().is_none_or(|user| user == chat.user_id) => Ok(chat),
        Ok(_) => Err(StoreError::NotFound("Chat")),
        Err(error) => Err(error),
    };
    let chat = match chat {
        Ok(chat) => chat,
        Err(error) => {
            session.send_error(error.to_string()).await;
            let _ = session.queue.send(Outgoing::Close("unknown chat")).await;
            drop(session);
            let _ = writer.await;
            return;
        }
    };
    // Join before building the payload so that no event between the two is missed.
    let membership = state
        .hub
        .join(&session.chat_id, session.wants_events.clone(), session.queue.clone());
    match payload::initial_payload(&state.store, &chat).await {
        Ok(initial) => session.send_json(&initial).await,
        Err(error) => {
            tracing::error!(%error, chat_id = %session.chat_id, "initial payload");
            session.send_error("Could not load the chat.").await;
        }
    }

    read_frames(&session, &mut stream).await;
    drop(membership);
    drop(session);
    let _ = writer.await;
}

/// Handles client frames until the client leaves, goes silent or the chat is deleted.
async fn read_frames(session: &Session, stream: &mut futures_util::stream::SplitStream<WebSocket>) {
    let max_frame = session.state.settings.max_frame_bytes;
    let mut last_seen = Instant::now();
    let mut idle_check = interval(PING_EVERY);
    loop {
        let frame = tokio::select! {
            frame = stream.next() => frame,
            _ = idle_check.tick() => {
                if last_seen.elapsed() > IDLE_LIMIT {
                    tracing::debug!(chat_id = %session.chat_id, "closing a silent client");
                    return;
                }
                if session.queue.try_send(Outgoing::Ping).is_err() && session.queue.is_closed() {
                    return;
                }
                continue;
            }
        };
        last_seen = Instant::now();
        let message = match frame {
            None => return,
            Some(Ok(message)) => message,
            Some(Err(error)) => {
                // Beyond the transport's hard limit: say why before the socket goes.
                session
                    .send_error(format!(
                        "Frame rejected: {error}. The limit is {} MiB.",
                        max_frame / (1024 * 1024)
                    ))
                    .await;
                return;
            }
        };
        if message.is_close() {
            return;
        }
        if message.is_ping() || message.is_pong() {
            continue;
        }
        if message.as_bytes().len() > max_frame {
            let limit = max_frame / (1024 * 1024);
            session
                .send_error(format!(
                    "Message too large: {} bytes; the limit is {limit} MiB.",
                    message.as_bytes().len()
                ))
                .await;
            continue;
        }
        match message.to_str() {
            Ok(text) => actions::handle(session, text).await,
            Err(()) => {
                session
                    .send_error("Binary frames are not supported; send JSON or text.")
                    .await
            }
        }
        if session.queue.is_closed() {
            return;
        }
    }
}

/// Drains the session's queue into the socket. Ends when the queue closes, a write fails or
/// stalls, or a close is queued.
async fn write_frames(
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    mut outgoing: mpsc::Receiver<Outgoing>,
) {
    while let Some(out) = outgoing.recv().await {
        let (message, last) = match out {
            Outgoing::Text(text) => (Message::text(text.as_ref()), false),
            Outgoing::Ping => (Message::ping(Vec::new()), false),
            Outgoing::Close(reason) => (Message::close_with(1000u16, reason), true),
        };
        match tokio::time::timeout(WRITE_TIMEOUT, sink.send(message)).await {
            Ok(Ok(())) if !last => {}
            _ => break,
        }
    }
    let _ = sink.close().await;
}

/// Whether the session receives live events (protocol 2).
pub(crate) fn opt_in(session: &Session) {
    session.wants_events.store(true, Ordering::Relaxed);
}

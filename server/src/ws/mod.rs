//! `/ws/{chat_id}`: the brief's chat session, saved at each change and live across clients.
//!
//! A session is two tasks: this reader, which handles one client frame at a time, and a
//! writer that drains the session's bounded queue into the socket (replies and events share
//! that queue, so they arrive in order). Every change is committed before its reply is queued.

mod actions;
mod agent_run;
mod conversation_cache;
mod diff_cache;
pub mod payload;
mod upgrade;

/// What initial payloads keep between connects.
#[derive(Debug, Default)]
pub struct PayloadCache {
    diffs: diff_cache::DiffCache,
    conversations: conversation_cache::ConversationCache,
}

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use kafka_protocol::ws::{ErrorFrame, PROTOCOL_V2};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::time::{Instant, interval};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use warp::Filter;
use warp::filters::BoxedFilter;

use crate::connections::ConnectionTicket;
use warp::reply::Response;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::http::with_state;
use crate::hub::{Outgoing, SESSION_QUEUE};
use crate::state::SharedState;
use crate::store::StoreError;
use payload::PayloadKind;
use upgrade::{Socket, Upgrade, upgrade};

/// Conversation entries in a lean payload; older ones come through `get_messages`.
const LEAN_PAGE: u32 = 20;

/// How often the server pings an idle client.
const PING_EVERY: Duration = Duration::from_secs(30);
/// A client silent for this long (no frame, no pong) is gone.
const IDLE_LIMIT: Duration = Duration::from_secs(90);
/// A write that takes longer than this means the client stopped reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Frames of a text message above this size are cut to it (see [`text_frames`]).
const FRAGMENT: usize = 256 * 1024;

#[derive(Debug, Default, Deserialize)]
struct WsQuery {
    /// `2` opts in to live events.
    v: Option<u32>,
    /// `1` or `true` (with `v=2`): the lean initial payload, see [`PayloadKind::Lean`].
    lean: Option<String>,
    /// The bearer token, for clients (browsers) that cannot set headers on a WebSocket.
    token: Option<String>,
}

impl WsQuery {
    fn payload_kind(&self) -> PayloadKind {
        let lean = self.lean.as_deref().is_some_and(|l| l == "1" || l == "true");
        match self.v {
            Some(v) if v >= PROTOCOL_V2 && lean => PayloadKind::Lean { page: LEAN_PAGE },
            Some(v) if v >= PROTOCOL_V2 => PayloadKind::Full,
            _ => PayloadKind::Legacy,
        }
    }
}

pub fn route(state: SharedState) -> BoxedFilter<(Response,)> {
    warp::path!("ws" / String)
        .and(warp::query::<WsQuery>().or(warp::any().map(WsQuery::default)).unify())
        .and(warp::header::optional::<String>("authorization"))
        .and(upgrade())
        .and(warp::ext::optional::<ConnectionTicket>())
        .and(with_state(state))
        .then(
            |chat_id: String,
             query: WsQuery,
             header: Option<String>,
             upgrade: Result<Upgrade, &'static str>,
             ticket: Option<ConnectionTicket>,
             state: SharedState| async move {
                let upgrade = match upgrade {
                    Ok(upgrade) => upgrade,
                    Err(why) => return upgrade::refused(why),
                };
                // Authenticate before the upgrade, so a bad token is a plain 401 response.
                let caller = match ws_caller(&state, query.token.as_deref(), header.as_deref()).await {
                    Ok(caller) => caller,
                    Err(error) => return crate::http::error_response(&error),
                };
                // The transport refuses frames far beyond the cap; up to twice the cap the
                // session answers with a clear error frame and stays open.
                let hard_limit = state.settings.max_frame_bytes.saturating_mul(2);
                let wants_events = query.v.is_some_and(|v| v >= PROTOCOL_V2);
                let kind = query.payload_kind();
                upgrade.on_upgrade(hard_limit, move |socket| async move {
                    // The socket keeps its connection's place among the open ones.
                    let _place = ticket;
                    session(socket, state, caller, chat_id, wants_events, kind).await
                })
            },
        )
        .boxed()
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
    /// The chat's owner, whose storage quota the session's writes count against.
    pub user_id: String,
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
        self.send_json(&ErrorFrame::new(error)).await;
    }

    /// Refuses text beyond the chat-message limit, naming it (`what` starts the sentence).
    pub fn check_message_size(&self, what: &str, text: &str) -> Result<(), String> {
        let limit = self.state.settings.max_message_bytes;
        if text.len() <= limit {
            return Ok(());
        }
        Err(format!(
            "{what} may be at most {} KiB (--max-message-kb); this one is {} KiB. Upload long text as a file.",
            limit / 1024,
            text.len().div_ceil(1024)
        ))
    }

    /// Admits a write of `bytes` more into the chat owner's storage quota; on refusal the
    /// client gets an error frame saying why, and nothing is written.
    pub async fn admit(&self, bytes: usize) -> bool {
        match self
            .state
            .quota
            .admit(&self.state.store, &self.user_id, bytes as u64)
            .await
        {
            Ok(()) => true,
            Err(crate::quota::QuotaError::Store(error)) => {
                actions::store_error(self, error).await;
                false
            }
            Err(exceeded) => {
                self.send_error(exceeded.to_string()).await;
                false
            }
        }
    }

    /// A protocol-1 client: it gets the original's shapes (file contents as strings).
    pub fn is_legacy(&self) -> bool {
        !self.wants_events.load(Ordering::Relaxed)
    }
}

async fn session(
    socket: Socket,
    state: SharedState,
    caller: Caller,
    chat_id: String,
    wants_events: bool,
    kind: PayloadKind,
) {
    let (sink, mut stream) = socket.split();
    let (queue, outgoing) = mpsc::channel(SESSION_QUEUE);
    let writer = tokio::spawn(write_frames(sink, outgoing));
    // Another user's chat is answered exactly like a missing one.
    let chat = match state.store.chat(&chat_id).await {
        Ok(chat) if caller.user_id().is_none_or(|user| user == chat.user_id) => Ok(chat),
        Ok(_) => Err(StoreError::NotFound("Chat")),
        Err(error) => Err(error),
    };
    let session = Session {
        state: state.clone(),
        chat_id,
        user_id: chat.as_ref().map(|chat| chat.user_id.clone()).unwrap_or_default(),
        wants_events: Arc::new(AtomicBool::new(wants_events)),
        queue,
    };
    let chat = match chat {
        Ok(chat) => chat,
        Err(error) => return refuse(session, writer, error.to_string(), "unknown chat").await,
    };
    // Join before building the payload so that no event between the two is missed.
    let token_hash = match &caller {
        Caller::User { token_hash, .. } => Some(token_hash.clone()),
        Caller::Anonymous => None,
    };
    let membership = state.hub.join(
        &session.chat_id,
        session.wants_events.clone(),
        session.queue.clone(),
        token_hash.clone(),
    );
    // A logout between the handshake's token check and joining had no session to close:
    // look again now that a later one would find this session.
    if let Some(token_hash) = &token_hash {
        let why = match state.store.token_user(token_hash).await {
            Ok(Some(_)) => None,
            Ok(None) => Some(crate::auth::BAD_TOKEN.to_owned()),
            Err(error) => {
                tracing::error!(%error, "checking a websocket's token");
                Some("Internal error; reconnect.".to_owned())
            }
        };
        if let Some(why) = why {
            drop(membership);
            return refuse(session, writer, why, "token refused").await;
        }
    }
    let started = Instant::now();
    match payload::initial_payload(&state.store, &state.payload_cache, &chat, kind).await {
        Ok(initial) => {
            let bytes: usize = initial.iter().map(Bytes::len).sum();
            tracing::debug!(chat_id = %session.chat_id, bytes, elapsed = ?started.elapsed(), "initial payload");
            let _ = session.queue.send(Outgoing::Parts(initial)).await;
        }
        Err(error) => {
            tracing::error!(%error, chat_id = %session.chat_id, "initial payload");
            session.send_error("Could not load the chat.").await;
        }
    }

    read_frames(&session, &mut stream, token_expiry(&caller)).await;
    drop(membership);
    drop(session);
    let _ = writer.await;
}

/// The error frame a session gets before it closes at its token's expiry.
const TOKEN_EXPIRED: &str = "The token expired; log in again.";

/// When the caller's token expires, as an instant of the runtime's clock; `None` without a
/// token (or with an expiry that does not parse, which `now_iso_after` never writes).
fn token_expiry(caller: &Caller) -> Option<Instant> {
    let Caller::User { expires_at, .. } = caller else {
        return None;
    };
    let at = chrono::NaiveDateTime::parse_from_str(expires_at, "%Y-%m-%dT%H:%M:%S%.f")
        .inspect_err(|error| tracing::warn!(%error, expires_at, "unreadable token expiry"))
        .ok()?
        .and_utc();
    let left = (at - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO);
    Some(Instant::now() + left)
}

/// Ends a session before it starts: says why, closes the socket, and waits for the writer
/// to send both.
async fn refuse(session: Session, writer: tokio::task::JoinHandle<()>, error: String, reason: &'static str) {
    session.send_error(error).await;
    let _ = session.queue.send(Outgoing::Close(reason)).await;
    drop(session);
    let _ = writer.await;
}

/// Handles client frames until the client leaves, goes silent, the chat is deleted or the
/// token expires (a revoked token's session is closed by the hub).
async fn read_frames(
    session: &Session,
    stream: &mut futures_util::stream::SplitStream<Socket>,
    token_expiry: Option<Instant>,
) {
    let max_frame = session.state.settings.max_frame_bytes;
    let mut last_seen = Instant::now();
    let mut idle_check = interval(PING_EVERY);
    // One timer for the session's life, not one per frame.
    let expired = async move {
        match token_expiry {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    let mut expired = std::pin::pin!(expired);
    loop {
        let frame = tokio::select! {
            frame = stream.next() => frame,
            () = &mut expired => {
                session.send_error(TOKEN_EXPIRED).await;
                let _ = session.queue.send(Outgoing::Close("token expired")).await;
                return;
            }
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
                // A broken frame: say why before the socket goes; the size limit only when
                // the size was the reason.
                let why = match &error {
                    WsError::Capacity(_) => format!(
                        "Frame rejected: {error}. The limit is {} MiB.",
                        max_frame / (1024 * 1024)
                    ),
                    WsError::Utf8(_) => "Frame rejected: a text frame must be valid UTF-8.".to_owned(),
                    _ => format!("Frame rejected: {error}."),
                };
                session.send_error(why).await;
                return;
            }
        };
        let text = match message {
            Message::Close(_) => return,
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            Message::Text(text) => text,
            Message::Binary(_) => {
                session
                    .send_error("Binary frames are not supported; send JSON or text.")
                    .await;
                continue;
            }
        };
        if text.len() > max_frame {
            let limit = max_frame / (1024 * 1024);
            session
                .send_error(format!(
                    "Message too large: {} bytes; the limit is {limit} MiB.",
                    text.len()
                ))
                .await;
            continue;
        }
        actions::handle(session, text.as_str()).await;
        if session.queue.is_closed() {
            return;
        }
    }
}

/// Drains the session's queue into the socket. Ends when the queue closes, a write fails or
/// stalls, or a close is queued.
async fn write_frames(mut sink: Sink, mut outgoing: mpsc::Receiver<Outgoing>) {
    // Events held until the first reply (the initial payload) is out: the client must see
    // the payload first. An event may repeat what the payload already holds; v2 events carry
    // IDs and seq numbers, so clients ignore repeats.
    let mut held: Option<Vec<Arc<str>>> = Some(Vec::new());
    while let Some(out) = outgoing.recv().await {
        if let (Outgoing::Event(text), Some(waiting)) = (&out, held.as_mut()) {
            if waiting.len() >= SESSION_QUEUE {
                break; // as the hub does with a client that cannot keep up
            }
            waiting.push(text.clone());
            continue;
        }
        let releases_held = matches!(out, Outgoing::Text(_) | Outgoing::Parts(_)) && held.is_some();
        let (written, last) = match out {
            Outgoing::Text(text) | Outgoing::Event(text) => (write_text(&mut sink, &[shared_bytes(text)]).await, false),
            Outgoing::Parts(parts) => (write_text(&mut sink, &parts).await, false),
            Outgoing::Ping => (write(&mut sink, Message::Ping(Default::default())).await, false),
            Outgoing::Close(reason) => {
                let close = CloseFrame {
                    code: CloseCode::Normal,
                    reason: reason.into(),
                };
                (write(&mut sink, Message::Close(Some(close))).await, true)
            }
        };
        if !written || last {
            break;
        }
        if releases_held {
            for text in held.take().unwrap_or_default() {
                if !write_text(&mut sink, &[shared_bytes(text)]).await {
                    let _ = sink.close().await;
                    return;
                }
            }
        }
    }
    let _ = sink.close().await;
}

type Sink = futures_util::stream::SplitSink<Socket, Message>;

/// Writes one frame; false when the socket failed or stalled past [`WRITE_TIMEOUT`].
async fn write(sink: &mut Sink, message: Message) -> bool {
    matches!(
        tokio::time::timeout(WRITE_TIMEOUT, sink.send(message)).await,
        Ok(Ok(()))
    )
}

/// Writes one text message given in parts (see [`text_frames`]); false when the socket failed
/// or the whole message stalled past [`WRITE_TIMEOUT`].
async fn write_text(sink: &mut Sink, parts: &[Bytes]) -> bool {
    let frames = text_frames(parts, FRAGMENT);
    let count = frames.len();
    let send_all = async {
        for (i, payload) in frames.into_iter().enumerate() {
            let opcode = OpCode::Data(if i == 0 { Data::Text } else { Data::Continue });
            sink.feed(Message::Frame(Frame::message(payload, opcode, i + 1 == count)))
                .await?;
        }
        sink.flush().await
    };
    matches!(tokio::time::timeout(WRITE_TIMEOUT, send_all).await, Ok(Ok(())))
}

/// The payloads of the frames that carry `parts` (each valid UTF-8) as one text message.
///
/// Why fragments: tungstenite copies a frame whole into its write buffer and, after each
/// partial socket write, moves the unwritten rest to the buffer's front — for a frame of
/// megabytes that copying, not the socket, was most of the time. Parts of `max` bytes or more
/// are cut between UTF-8 characters into frames of `max` bytes, without copying; smaller
/// parts next to each other share a frame (one part: no copy). A message below `max` is
/// one frame, as before; clients receive the same text either way.
fn text_frames(parts: &[Bytes], max: usize) -> Vec<Bytes> {
    let mut frames = Vec::new();
    let mut small: Vec<&Bytes> = Vec::new();
    let mut small_len = 0;
    for part in parts.iter().filter(|p| !p.is_empty()) {
        if part.len() < max {
            small.push(part);
            small_len += part.len();
            if small_len >= max {
                frames.push(joined(&small));
                (small, small_len) = (Vec::new(), 0);
            }
            continue;
        }
        if !small.is_empty() {
            frames.push(joined(&small));
            (small, small_len) = (Vec::new(), 0);
        }
        let mut rest = part.clone();
        while rest.len() > max {
            // A UTF-8 continuation byte (0b10xxxxxx) may not start a frame.
            let cut = (1..=max).rev().find(|&i| rest[i] & 0xC0 != 0x80).unwrap_or(max);
            frames.push(rest.split_to(cut));
        }
        frames.push(rest);
    }
    if !small.is_empty() || frames.is_empty() {
        frames.push(joined(&small));
    }
    frames
}

fn joined(pieces: &[&Bytes]) -> Bytes {
    match pieces {
        [one] => (*one).clone(),
        _ => pieces
            .iter()
            .fold(BytesMut::new(), |mut all, piece| {
                all.extend_from_slice(piece);
                all
            })
            .freeze(),
    }
}

/// The queued text as frame bytes without copying it: a long chat's payload is megabytes,
/// and an event is shared by every session of its chat.
fn shared_bytes(text: Arc<str>) -> Bytes {
    struct Shared(Arc<str>);
    impl AsRef<[u8]> for Shared {
        fn as_ref(&self) -> &[u8] {
            self.0.as_bytes()
        }
    }
    Bytes::from_owner(Shared(text))
}

/// Whether the session receives live events (protocol 2).
pub(crate) fn opt_in(session: &Session) {
    session.wants_events.store(true, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(frames: &[Bytes]) -> String {
        frames.iter().map(|f| std::str::from_utf8(f).unwrap()).collect()
    }

    #[test]
    fn a_small_message_is_one_frame_and_one_part_is_not_copied() {
        let part = Bytes::from("{\"a\":1}");
        let frames = text_frames(std::slice::from_ref(&part), 8);
        assert_eq!(frames, std::slice::from_ref(&part));
        assert_eq!(frames[0].as_ptr(), part.as_ptr());
        assert_eq!(
            text_frames(&[Bytes::from("ab"), Bytes::new(), Bytes::from("c")], 8),
            ["abc"]
        );
        assert_eq!(text_frames(&[], 8), [""]);
    }

    #[test]
    fn a_large_message_is_cut_between_characters_and_keeps_its_text() {
        let parts = [Bytes::from("head"), Bytes::from("ééééé-long-part"), Bytes::from("tail")];
        let frames = text_frames(&parts, 8);
        assert_eq!(text(&frames), "headééééé-long-parttail");
        assert!(
            frames.iter().all(|f| f.len() <= 8 && std::str::from_utf8(f).is_ok()),
            "{frames:?}"
        );
        // Small parts on both sides of a large one are frames of their own.
        assert_eq!(frames.first().map(|f| &f[..]), Some(&b"head"[..]));
        assert_eq!(frames.last().map(|f| &f[..]), Some(&b"tail"[..]));
    }

    #[test]
    fn small_parts_are_joined_up_to_the_fragment_size() {
        let parts: Vec<Bytes> = (0..10).map(|i| Bytes::from(format!("{i}{i}{i}"))).collect();
        let frames = text_frames(&parts, 8);
        assert_eq!(text(&frames), "000111222333444555666777888999");
        assert!(frames.iter().all(|f| f.len() < 16), "{frames:?}");
        assert!(frames.len() < parts.len());
    }
}

//! A WebSocket client of `/ws/{chat_id}` whose failures are errors to count, not panics.

use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use kafka_protocol::ws::{ClientAction, ServerFrame};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a client waits for an answer before it counts as lost. Generous: under load a
/// slow answer is a latency to report, only a missing one is an error.
pub const REPLY_WAIT: Duration = Duration::from_secs(30);

/// Bytes read from the socket at a time (as the server's sessions do).
const READ_BUFFER: usize = 4 * 1024;

pub struct Conn {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// A new connection with the initial payload it received.
pub struct Opened {
    pub conn: Conn,
    /// The initial payload's text, as sent.
    pub payload: String,
    /// From the start of the TCP connect to the whole payload received.
    pub elapsed: Duration,
}

impl Conn {
    /// Connects and reads the initial payload (or the error frame an unknown chat gets).
    pub async fn open(url: &str) -> anyhow::Result<Opened> {
        let started = Instant::now();
        // Nagle off, as a latency-minded client would: small frames go out at once. A 4 KiB
        // read buffer: tungstenite zero-fills its buffer (128 KiB by default) on every read,
        // a cost per message that the server's share of the two cores would pay for.
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
        let connect = tokio_tungstenite::connect_async_with_config(url, Some(config), true);
        let (stream, _) = tokio::time::timeout(REPLY_WAIT, connect)
            .await
            .context("connect: timed out")?
            .context("connect")?;
        let mut conn = Conn { stream };
        let payload = conn.next_text().await.context("initial payload")?;
        let elapsed = started.elapsed();
        if !is_initial_payload(&payload) {
            bail!("expected the initial payload, got {}", excerpt(&payload));
        }
        Ok(Opened { conn, payload, elapsed })
    }

    pub async fn send_text(&mut self, text: &str) -> anyhow::Result<()> {
        self.stream.send(Message::text(text)).await.context("send")
    }

    pub async fn send_action(&mut self, action: &ClientAction) -> anyhow::Result<()> {
        self.send_text(&serde_json::to_string(action)?).await
    }

    /// The next text frame; an error on timeout or close.
    pub async fn next_text(&mut self) -> anyhow::Result<String> {
        let deadline = Instant::now() + REPLY_WAIT;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .context("no frame within the wait")?;
            match frame {
                Some(Ok(Message::Text(text))) => return Ok(text.to_string()),
                Some(Ok(Message::Close(close))) => bail!("the server closed the socket: {close:?}"),
                Some(Ok(_)) => continue,
                Some(Err(error)) => return Err(error).context("receive"),
                None => bail!("the socket ended"),
            }
        }
    }

    /// The next frame that is not a protocol-2 event: the answer to the last request.
    pub async fn reply(&mut self) -> anyhow::Result<ServerFrame> {
        loop {
            let frame = ServerFrame::parse(&self.next_text().await?);
            if !matches!(frame, ServerFrame::Event(_)) {
                return Ok(frame);
            }
        }
    }

    /// The next frame that is not a protocol-2 event, as text or JSON: the answer to the last
    /// request, read without assuming Kafka's types (the original's shapes differ).
    pub async fn reply_any(&mut self) -> anyhow::Result<Reply> {
        loop {
            let text = self.next_text().await?;
            match serde_json::from_str::<Value>(&text) {
                Ok(value @ Value::Object(_)) if value.get("event").is_none() => return Ok(Reply::Json(value)),
                Ok(Value::Object(_)) => continue,
                _ => return Ok(Reply::Text(text)),
            }
        }
    }

    /// True when the server closes the socket within `wait` (frames before that are skipped).
    pub async fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return false,
                Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return true,
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}

/// A reply frame: JSON objects parsed, anything else as text.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Text(String),
    Json(Value),
}

impl Reply {
    /// The JSON frame's `action`, if any.
    pub fn action(&self) -> Option<&str> {
        match self {
            Reply::Json(value) => value["action"].as_str(),
            Reply::Text(_) => None,
        }
    }

    pub fn shown(&self) -> String {
        match self {
            Reply::Text(text) => excerpt(text),
            Reply::Json(value) => excerpt(&value.to_string()),
        }
    }
}

/// Whether a first frame is an initial payload, Kafka's or the original's (both carry
/// `initial: true` and a `conversation`; the original has `chat_files` where Kafka has
/// `chat_files_text` and `workspace_files`), rather than an error frame.
pub fn is_initial_payload(text: &str) -> bool {
    #[derive(Deserialize)]
    struct Head {
        initial: Option<bool>,
        conversation: Option<IgnoredAny>,
        error: Option<IgnoredAny>,
    }
    match serde_json::from_str::<Head>(text) {
        Ok(head) => head.error.is_none() && (head.initial == Some(true) || head.conversation.is_some()),
        Err(_) => false,
    }
}

/// Opens a connection to each URL, `concurrency` at a time, in no particular order.
pub async fn open_many(urls: Vec<String>, concurrency: usize) -> Vec<anyhow::Result<Opened>> {
    futures_util::stream::iter(urls)
        .map(|url| async move { Conn::open(&url).await })
        .buffer_unordered(concurrency)
        .collect()
        .await
}

/// The start of a frame, for error messages.
pub fn excerpt(text: &str) -> String {
    const SHOWN: usize = 200;
    match text.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

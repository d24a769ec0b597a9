//! The network side: a REST client for the brief's endpoints and the chat's WebSocket task,
//! which reconnects with backoff and posts every frame onto the app's bus. Widgets never see
//! a socket; they see [`AppEvent`]s.
//!
//! Every call carries the session's token when the server gave one at login (a server in
//! open mode gives none): `Authorization: Bearer …` on REST, `?token=…` on the WebSocket.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use kafka_protocol::rest::{
    ChatResponse, Detail, LoginRequest, LoginResponse, ModelInfo, WorkspaceNewResponse, WorkspaceRenameResponse,
};
use kafka_protocol::ws::ServerFrame;
use reqwest::multipart::Form;
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::app::{AppEvent, Connection};

const FIRST_RETRY: Duration = Duration::from_millis(250);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// Why a REST call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestError {
    /// 401: wrong credentials at login, or a missing or expired token afterwards. The
    /// server's `detail`.
    Unauthorized(String),
    /// Anything else: the server's `detail`, or what went wrong on the way.
    Failed(String),
}

/// REST calls against one server, with the session's token if there is one.
#[derive(Clone)]
pub struct Rest {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl Rest {
    pub fn new(base: &str) -> Self {
        Rest {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            token: None,
        }
    }

    /// The same client acting for the session that holds `token` (none: open mode, or not
    /// logged in yet).
    pub fn with_token(&self, token: Option<&str>) -> Self {
        Rest {
            token: token.map(str::to_owned),
            ..self.clone()
        }
    }

    pub async fn login(&self, email: &str, password: Option<&str>) -> Result<LoginResponse, RestError> {
        let request = self.request(Method::POST, "/auth/login").json(&LoginRequest {
            email: email.to_owned(),
            password: password.map(str::to_owned),
        });
        answer(request).await
    }

    pub async fn new_chat(&self, user_id: &str, workspace_id: &str, name: &str) -> Result<ChatResponse, RestError> {
        let form = form(&[
            ("user_id", user_id),
            ("workspace_id", workspace_id),
            ("chat_name", name),
        ]);
        answer(self.request(Method::POST, "/chat/new").multipart(form)).await
    }

    pub async fn rename_chat(&self, chat_id: &str, name: &str) -> Result<ChatResponse, RestError> {
        let form = form(&[("chat_id", chat_id), ("new_name", name)]);
        answer(self.request(Method::PATCH, "/chat/rename").multipart(form)).await
    }

    pub async fn delete_chat(&self, chat_id: &str) -> Result<Detail, RestError> {
        answer(self.request(Method::DELETE, &format!("/chat/{chat_id}"))).await
    }

    pub async fn new_workspace(&self, owner_id: &str, name: &str) -> Result<WorkspaceNewResponse, RestError> {
        let form = form(&[("owner_id", owner_id), ("name", name)]);
        answer(self.request(Method::POST, "/workspace/new").multipart(form)).await
    }

    pub async fn rename_workspace(&self, workspace_id: &str, name: &str) -> Result<WorkspaceRenameResponse, RestError> {
        let form = form(&[("workspace_id", workspace_id), ("new_name", name)]);
        answer(self.request(Method::PATCH, "/workspace/rename").multipart(form)).await
    }

    pub async fn delete_workspace(&self, workspace_id: &str) -> Result<Detail, RestError> {
        answer(self.request(Method::DELETE, &format!("/workspace/delete/{workspace_id}"))).await
    }

    pub async fn add_model(
        &self,
        user_id: &str,
        name: &str,
        base_url: &str,
        api_key: &str,
    ) -> Result<ModelInfo, RestError> {
        let form = form(&[
            ("user_id", user_id),
            ("name", name),
            ("ak", api_key),
            ("base_url", base_url),
        ]);
        answer(self.request(Method::POST, "/models/new").multipart(form)).await
    }

    /// `ws://host:port/ws/{chat_id}?v=2&token=…`: protocol 2, for live events, and the
    /// session's token (URL-encoded), since a browser-style WebSocket cannot send headers.
    pub fn ws_url(&self, chat_id: &str) -> String {
        let base = self
            .base
            .replacen("https://", "wss://", 1)
            .replacen("http://", "ws://", 1);
        let plain = format!("{base}/ws/{chat_id}?v=2");
        let Some(token) = self.token.as_deref() else {
            return plain;
        };
        match Url::parse(&plain) {
            Ok(mut url) => {
                url.query_pairs_mut().append_pair("token", token);
                url.into()
            }
            // Not a URL: connecting fails and says so; the token is not worth a panic.
            Err(_) => plain,
        }
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match self.token.as_deref() {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }
}

fn form(fields: &[(&'static str, &str)]) -> Form {
    fields
        .iter()
        .fold(Form::new(), |form, (name, value)| form.text(*name, value.to_string()))
}

async fn answer<T: DeserializeOwned>(request: reqwest::RequestBuilder) -> Result<T, RestError> {
    let failed = |what: &str, error: &dyn std::fmt::Display| RestError::Failed(format!("{what}: {error}"));
    let response = request.send().await.map_err(|e| failed("server unreachable", &e))?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| failed("reading the answer", &e))?;
    if status.is_success() {
        return serde_json::from_slice(&body).map_err(|e| failed("unexpected answer", &e));
    }
    let detail = match serde_json::from_slice::<Detail>(&body) {
        Ok(detail) => detail.detail,
        Err(_) => format!("server answered {status}"),
    };
    Err(match status {
        StatusCode::UNAUTHORIZED => RestError::Unauthorized(detail),
        _ => RestError::Failed(detail),
    })
}

/// The open chat's socket. Dropping it closes the socket and stops reconnecting.
pub struct ChatSocket {
    outgoing: UnboundedSender<String>,
    task: JoinHandle<()>,
}

impl ChatSocket {
    /// Connects in the background; frames and connection changes arrive on `bus`.
    pub fn open(url: String, chat_id: String, bus: UnboundedSender<AppEvent>) -> Self {
        let (outgoing, queue) = unbounded_channel();
        let task = tokio::spawn(run_socket(url, chat_id, bus, queue));
        ChatSocket { outgoing, task }
    }

    pub fn send(&self, text: String) {
        // Fails only once the task ended, which dropping the socket causes anyway.
        let _ = self.outgoing.send(text);
    }
}

impl Drop for ChatSocket {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run_socket(
    url: String,
    chat_id: String,
    bus: UnboundedSender<AppEvent>,
    mut queue: UnboundedReceiver<String>,
) {
    let post_state = |state| {
        let _ = bus.send(AppEvent::Connection {
            chat_id: chat_id.clone(),
            state,
        });
    };
    let mut attempt = 0u32;
    loop {
        post_state(Connection::Connecting);
        match tokio_tungstenite::connect_async(url.as_str()).await {
            Ok((stream, _)) => {
                attempt = 0;
                post_state(Connection::Connected);
                if !pump(stream, &chat_id, &bus, &mut queue).await {
                    return;
                }
            }
            // The token expired (or never was): retrying cannot help, logging in again can.
            Err(WsError::Http(response)) if response.status().as_u16() == 401 => {
                post_state(Connection::Idle);
                let _ = bus.send(AppEvent::SessionExpired);
                return;
            }
            // Not the URL: it carries the token.
            Err(error) => tracing::warn!(%error, "websocket connect failed"),
        }
        attempt += 1;
        let delay = backoff(attempt);
        post_state(Connection::Retrying {
            attempt,
            delay_ms: delay.as_millis() as u64,
        });
        tokio::time::sleep(delay).await;
    }
}

/// Moves frames both ways until the socket drops. False when the app is gone (stop for good).
async fn pump<S>(
    stream: tokio_tungstenite::WebSocketStream<S>,
    chat_id: &str,
    bus: &UnboundedSender<AppEvent>,
    queue: &mut UnboundedReceiver<String>,
) -> bool
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut sink, mut source) = stream.split();
    loop {
        tokio::select! {
            outgoing = queue.recv() => {
                let Some(text) = outgoing else { return false };
                if sink.send(Message::text(text)).await.is_err() {
                    return true;
                }
            }
            incoming = source.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    let frame = ServerFrame::parse(&text);
                    if bus.send(AppEvent::Frame { chat_id: chat_id.to_owned(), frame }).is_err() {
                        return false;
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return true,
                Some(Ok(_)) => {}
            }
        }
    }
}

/// 250 ms, 500 ms, 1 s, … up to 5 s.
pub fn backoff(attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(10));
    (FIRST_RETRY * factor).min(MAX_RETRY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_ceiling() {
        assert_eq!(backoff(1), Duration::from_millis(250));
        assert_eq!(backoff(2), Duration::from_millis(500));
        assert_eq!(backoff(4), Duration::from_secs(2));
        assert_eq!(backoff(30), MAX_RETRY);
    }

    #[test]
    fn websocket_urls_ask_for_protocol_2() {
        let rest = Rest::new("http://127.0.0.1:8000/");
        assert_eq!(rest.ws_url("c1"), "ws://127.0.0.1:8000/ws/c1?v=2");
    }

    #[test]
    fn websocket_urls_carry_the_token_url_encoded() {
        let rest = Rest::new("https://kafka.example/").with_token(Some("a+b/c= d&e"));
        assert_eq!(
            rest.ws_url("c1"),
            "wss://kafka.example/ws/c1?v=2&token=a%2Bb%2Fc%3D+d%26e"
        );
        assert_eq!(rest.with_token(None).ws_url("c1"), "wss://kafka.example/ws/c1?v=2");
    }
}

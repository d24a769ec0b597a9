//! Test support: the real server on an ephemeral port over a temporary data directory,
//! real clients (reqwest, tokio-tungstenite), and a fake OpenAI-compatible model served
//! over HTTP. Nothing else is faked.

pub mod fake_model;
pub mod golden;
pub mod load;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use kafka_protocol::rest::{ChatResponse, LoginResponse, ModelInfo};
use kafka_protocol::ws::{InitialPayload, ServerFrame};
use kafka_server::config::Settings;
use kafka_server::state::SharedState;
use serde_json::Value;
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for a frame it expects.
pub const FRAME_WAIT: Duration = Duration::from_secs(10);

/// A running server. Dropping it stops the server and removes its data directory.
pub struct TestServer {
    pub base: String,
    pub state: SharedState,
    pub data_dir: TempDir,
    pub http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts with settings adjusted by `adjust` (limits, timeouts).
    pub async fn start_with(adjust: impl FnOnce(&mut Settings)) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut settings = Settings::for_data_dir(data_dir.path());
        adjust(&mut settings);
        let state = kafka_server::open_state(settings).await.expect("open state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (shutdown, stopped) = oneshot::channel::<()>();
        tokio::spawn(kafka_server::serve(listener, state.clone(), async {
            let _ = stopped.await;
        }));
        Self {
            base,
            state,
            data_dir,
            http: reqwest::Client::new(),
            shutdown: Some(shutdown),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn ws_url(&self, chat_id: &str) -> String {
        format!("{}/ws/{chat_id}", self.base.replacen("http", "ws", 1))
    }

    /// Logs in, failing the test on anything but 200.
    pub async fn login(&self, email: &str) -> LoginResponse {
        let response = self
            .http
            .post(self.url("/auth/login"))
            .json(&serde_json::json!({ "email": email }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "login {email}");
        response.json().await.unwrap()
    }

    /// A new user with a chat in their default workspace: `(user_id, workspace_id, chat_id)`.
    pub async fn user_with_chat(&self, email: &str) -> (String, String, String) {
        let login = self.login(email).await;
        let workspace_id = login.workspaces[0].id.clone();
        let chat = self.new_chat(&login.user_id, &workspace_id, "Test chat").await;
        (login.user_id, workspace_id, chat.chat_id)
    }

    pub async fn new_chat(&self, user_id: &str, workspace_id: &str, name: &str) -> ChatResponse {
        let form = reqwest::multipart::Form::new()
            .text("user_id", user_id.to_owned())
            .text("workspace_id", workspace_id.to_owned())
            .text("chat_name", name.to_owned());
        let response = self
            .http
            .post(self.url("/chat/new"))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "chat/new");
        response.json().await.unwrap()
    }

    pub async fn add_model(&self, user_id: &str, name: &str, api_key: &str, base_url: &str) -> ModelInfo {
        let form = reqwest::multipart::Form::new()
            .text("user_id", user_id.to_owned())
            .text("name", name.to_owned())
            .text("ak", api_key.to_owned())
            .text("base_url", base_url.to_owned());
        let response = self
            .http
            .post(self.url("/models/new"))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "models/new");
        response.json().await.unwrap()
    }

    /// Connects a WebSocket client to the chat (`?v=2` when `v2`).
    pub async fn connect(&self, chat_id: &str, v2: bool) -> WsClient {
        let url = if v2 {
            format!("{}?v=2", self.ws_url(chat_id))
        } else {
            self.ws_url(chat_id)
        };
        WsClient::connect(&url).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// A WebSocket client speaking the real protocol.
pub struct WsClient {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl WsClient {
    pub async fn connect(url: &str) -> Self {
        let (stream, _) = tokio_tungstenite::connect_async(url).await.expect("websocket connect");
        Self { stream }
    }

    pub async fn send_text(&mut self, text: &str) {
        self.stream.send(Message::text(text)).await.expect("send");
    }

    pub async fn send_json(&mut self, value: &Value) {
        self.send_text(&value.to_string()).await;
    }

    /// The next text frame; panics after [`FRAME_WAIT`] or if the socket closes.
    pub async fn recv_text(&mut self) -> String {
        self.try_recv_text(FRAME_WAIT).await.expect("expected a text frame")
    }

    /// The next text frame within `wait`, or `None` on timeout or close.
    pub async fn try_recv_text(&mut self, wait: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.stream.next()).await.ok()??;
            match frame {
                Ok(Message::Text(text)) => return Some(text.to_string()),
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => continue,
            }
        }
    }

    pub async fn recv_json(&mut self) -> Value {
        let text = self.recv_text().await;
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
    }

    pub async fn recv_frame(&mut self) -> ServerFrame {
        ServerFrame::parse(&self.recv_text().await)
    }

    pub async fn recv_initial(&mut self) -> InitialPayload {
        match self.recv_frame().await {
            ServerFrame::Initial(payload) => *payload,
            other => panic!("expected the initial payload, got {other:?}"),
        }
    }

    /// Receives frames until one has `"event": name`; returns it.
    pub async fn recv_event(&mut self, name: &str) -> Value {
        loop {
            let value = self.recv_json().await;
            if value["event"] == name {
                return value;
            }
        }
    }

    /// Asserts that nothing arrives for `wait`.
    pub async fn expect_silence(&mut self, wait: Duration) {
        if let Some(text) = self.try_recv_text(wait).await {
            panic!("expected no frame, got {text}");
        }
    }

    /// True when the server closed the socket within `wait`.
    pub async fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return false,
                Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return true,
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}

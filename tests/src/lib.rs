//! Test support: the real server on an ephemeral port over a temporary data directory,
//! real clients (reqwest, tokio-tungstenite), and a fake OpenAI-compatible model served
//! over HTTP. Nothing else is faked.
//!
//! The database is SQLite in the data directory, or, when `KAFKA_TEST_DATABASE_URL` names a
//! PostgreSQL server (`postgres://user@host:port/db`), a fresh database created on it for
//! each test server, so tests stay isolated and can run in parallel on either backend.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support: a panic is the failure report"
)]

pub mod fake_model;
pub mod golden;
pub mod load;
pub mod pdf;

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use kafka_protocol::rest::{ChatResponse, LoginResponse, ModelInfo};
use kafka_protocol::ws::{InitialPayload, ServerFrame};
use kafka_server::config::Settings;
use kafka_server::state::SharedState;
use serde_json::Value;
use sqlx::{Connection, Executor};
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for a frame it expects.
pub const FRAME_WAIT: Duration = Duration::from_secs(10);

/// Names the PostgreSQL server to run the suite on; unset means SQLite.
pub const DATABASE_ENV: &str = "KAFKA_TEST_DATABASE_URL";

/// A database of its own on the PostgreSQL server of [`DATABASE_ENV`], dropped (best effort)
/// with the last handle.
pub struct TestDatabase {
    pub url: String,
    admin_url: String,
    name: String,
}

impl TestDatabase {
    /// A fresh database, or `None` when no PostgreSQL server is configured.
    pub async fn create() -> Option<Arc<Self>> {
        let admin_url = std::env::var(DATABASE_ENV).ok().filter(|url| !url.is_empty())?;
        let name = format!("kafka_test_{}", kafka_server::store::new_id().replace('-', "_"));
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("{DATABASE_ENV}: cannot connect: {e}"));
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create the test database");
        let _ = admin.close().await;
        let url = replace_database(&admin_url, &name);
        Some(Arc::new(Self { url, admin_url, name }))
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime: do the async work on a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut admin = sqlx::PgConnection::connect(&admin_url).await.ok()?;
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                let _ = tokio::time::timeout(Duration::from_secs(10), admin.execute(sql.as_str())).await;
                admin.close().await.ok()
            })
        });
        let _ = dropped.join();
    }
}

/// `url` with its database (the path) replaced by `name`, keeping any query string.
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

/// A running server. Dropping it stops the server and removes its data directory.
pub struct TestServer {
    pub base: String,
    pub state: SharedState,
    pub data_dir: TempDir,
    pub http: reqwest::Client,
    /// The PostgreSQL database, when the suite runs on one.
    pub database: Option<Arc<TestDatabase>>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts with settings adjusted by `adjust` (limits, timeouts).
    pub async fn start_with(adjust: impl FnOnce(&mut Settings)) -> Self {
        let database = TestDatabase::create().await;
        Self::start_on(database, adjust).await
    }

    /// Starts on `database` (which other servers may share, as instances behind one load
    /// balancer do), or on SQLite in its own data directory when `None`.
    pub async fn start_on(database: Option<Arc<TestDatabase>>, adjust: impl FnOnce(&mut Settings)) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut settings = Settings::for_data_dir(data_dir.path());
        // The test harness cannot be the PDF reader child; the test server binary can.
        settings.extract_limits.program = Some(test_server_binary());
        if let Some(database) = &database {
            settings.database_url = database.url.clone();
        }
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
            database,
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

    /// `POST /file/upload` of `files` (name, bytes) to a chat (`is_chat`) or a workspace,
    /// without a `user_id` (the owner comes from the target); the answer as it came.
    pub async fn upload(&self, target_id: &str, is_chat: bool, files: &[(&str, &[u8])]) -> reqwest::Response {
        let mut form = reqwest::multipart::Form::new()
            .text("target_id", target_id.to_owned())
            .text("is_chat", is_chat.to_string());
        for (name, bytes) in files {
            let part = reqwest::multipart::Part::bytes(bytes.to_vec()).file_name(name.to_string());
            form = form.part("files", part);
        }
        self.http
            .post(self.url("/file/upload"))
            .multipart(form)
            .send()
            .await
            .unwrap()
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

    /// An uploaded file's bytes as `GET /file/{id}/content` answers them; `None` on a 404.
    pub async fn read_upload(&self, file_id: &str) -> Option<Vec<u8>> {
        let response = self
            .http
            .get(self.url(&format!("/file/{file_id}/content")))
            .send()
            .await
            .expect("GET /file/{id}/content");
        match response.status().as_u16() {
            404 => None,
            200 => Some(response.bytes().await.expect("the bytes").to_vec()),
            other => panic!("GET /file/{file_id}/content: {other}"),
        }
    }

    /// The names (`<id>_<name>`) of the uploads whose bytes this server stores: files under
    /// its `<data-dir>/uploads/files`, and, on PostgreSQL, files with bytes in the database.
    pub async fn stored_uploads(&self) -> Vec<String> {
        let mut names = files_in(&self.data_dir.path().join("uploads/files"));
        if let Some(database) = &self.database {
            names.extend(database.uploads_in_database().await);
        }
        names.sort();
        names
    }
}

/// The names of the files in `dir` (none when it does not exist).
pub fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

impl TestDatabase {
    /// The names (`<id>_<name>`, the last part of the stored path) of the files with bytes in
    /// the database, and, as `<orphan>:<id>`, chunks whose file has no row (there must be none).
    pub async fn uploads_in_database(&self) -> Vec<String> {
        let mut conn = sqlx::PgConnection::connect(&self.url).await.expect("connect");
        let names: Vec<(String,)> = sqlx::query_as(
            "SELECT COALESCE(f.path, '<orphan>:' || c.file_id) FROM (SELECT DISTINCT file_id FROM upload_chunks) c
             LEFT JOIN files f ON f.id = c.file_id ORDER BY 1",
        )
        .fetch_all(&mut conn)
        .await
        .expect("read upload_chunks");
        let _ = conn.close().await;
        names
            .into_iter()
            .map(|(path,)| path.rsplit('/').next().unwrap_or_default().to_owned())
            .collect()
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

/// A file message's content as an object: protocol-2 frames carry the object, legacy frames
/// its JSON text (as the original sends it). Null when it is neither.
pub fn file_content(message: &Value) -> Value {
    match &message["content"] {
        Value::String(text) => serde_json::from_str(text).unwrap_or(Value::Null),
        other => other.clone(),
    }
}

/// `kafka-test-server`, built beside the test binaries (`target/<profile>/`); it runs as the
/// server's PDF reader child too.
pub fn test_server_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let mut dir = exe.parent().expect("a directory").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join("kafka-test-server")
}

/// The `kafka-test-server` binary running as its own process (for what only a process shows:
/// its memory, a kill).
pub struct ServerProcess {
    pub child: tokio::process::Child,
    pub base: String,
}

impl ServerProcess {
    /// Spawns the server on a free loopback port with its data in `data_dir`, plus `args`.
    pub async fn spawn(data_dir: &std::path::Path, args: &[&str]) -> Self {
        // Take a free port, release it, and hand it to the child.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = tokio::process::Command::new(test_server_binary())
            .args(["--bind", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(data_dir)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn kafka-test-server");
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if client.get(format!("{base}/healthz")).send().await.is_ok() {
                return Self { child, base };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the server did not start");
    }

    /// Spawns the server on `data_dir`, with its database there (SQLite) or at `database_url`.
    pub async fn with_database(data_dir: &std::path::Path, database_url: Option<&str>) -> Self {
        let args = database_url.map(|url| vec!["--database-url", url]).unwrap_or_default();
        Self::spawn(data_dir, &args).await
    }

    /// The process's resident memory, in bytes.
    pub fn rss_bytes(&self) -> u64 {
        let pid = self.child.id().expect("running");
        load::target::rss_of(pid).expect("the server's /proc status")
    }
}

#[cfg(test)]
mod tests {
    use super::replace_database;

    #[test]
    fn the_database_of_a_url_is_replaced() {
        assert_eq!(
            replace_database("postgres://u:p@h:5432/postgres", "t1"),
            "postgres://u:p@h:5432/t1"
        );
        assert_eq!(replace_database("postgres://h", "t1"), "postgres://h/t1");
        assert_eq!(
            replace_database("postgres://h/db?sslmode=disable", "t1"),
            "postgres://h/t1?sslmode=disable"
        );
    }
}

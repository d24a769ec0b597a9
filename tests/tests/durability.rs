//! What the server promises about what it acknowledged, under a kill, a full disk, and
//! concurrent clients of one chat. Spawns the real binary (as `crash.rs` does) where a
//! process must die; otherwise an in-process server.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a panic is the failure report"
)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use kafka_protocol::ws::InitialPayload;
use kafka_tests::ServerProcess;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// Logs in and makes `n` chats; returns their IDs.
async fn chats(base: &str, n: usize) -> Vec<String> {
    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("{base}/auth/login"))
        .json(&json!({"email": "durable@example.com"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let user_id = login["user_id"].as_str().unwrap().to_owned();
    let workspace_id = login["workspaces"][0]["id"].as_str().unwrap().to_owned();
    let mut ids = Vec::new();
    for i in 0..n {
        let form = reqwest::multipart::Form::new()
            .text("user_id", user_id.clone())
            .text("workspace_id", workspace_id.clone())
            .text("chat_name", format!("C{i}"));
        let chat: Value = http
            .post(format!("{base}/chat/new"))
            .multipart(form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.push(chat["chat_id"].as_str().unwrap().to_owned());
    }
    ids
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A client that never panics on a dead server: `None` is "no answer".
struct Client(Socket);

impl Client {
    async fn connect(base: &str, chat_id: &str) -> Self {
        let url = format!("{}/ws/{chat_id}", base.replacen("http", "ws", 1));
        let (socket, _) = tokio_tungstenite::connect_async(url).await.expect("connect");
        Client(socket)
    }

    async fn send(&mut self, text: String) -> bool {
        self.0.send(Message::text(text)).await.is_ok()
    }

    async fn recv(&mut self) -> Option<String> {
        loop {
            match tokio::time::timeout(Duration::from_secs(20), self.0.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => return Some(text.to_string()),
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                _ => return None,
            }
        }
    }

    async fn initial(base: &str, chat_id: &str) -> InitialPayload {
        let mut client = Self::connect(base, chat_id).await;
        let text = client.recv().await.expect("the initial payload");
        serde_json::from_str(&text).unwrap()
    }

    /// `text` echoed: true once answered with its echo.
    async fn echo(&mut self, text: &str) -> Option<bool> {
        if !self.send(text.to_owned()).await {
            return None;
        }
        Some(self.recv().await? == format!("Echo: {text}"))
    }

    /// Uploads `name`; the reply as JSON.
    async fn upload(&mut self, name: &str, bytes: &str) -> Option<Value> {
        let data = base64::engine::general_purpose::STANDARD.encode(bytes);
        let frame = json!({"action": "upload_file", "filename": name, "file_data": data});
        if !self.send(frame.to_string()).await {
            return None;
        }
        serde_json::from_str(&self.recv().await?).ok()
    }
}

/// What a stored entry is: the label its client gave it. Echoes are `t:<text>` (the user's
/// entry) and `e:<text>` (the reply); uploads `u:<file name>`; reverts `r:<new version id>`.
fn label(role: &str, content: &str) -> String {
    if let Some(text) = content.strip_prefix("Echo: ") {
        return format!("e:{text}");
    }
    if role == "user" && !content.starts_with('{') {
        return format!("t:{content}");
    }
    let value: Value = serde_json::from_str(content).unwrap_or(Value::Null);
    if let Some(message) = value["message"].as_str()
        && let Some(new) = message.split("new version is ").nth(1)
    {
        return format!("r:{new}");
    }
    for key in ["name", "filename", "based_filename"] {
        if let Some(name) = value[key].as_str() {
            return format!("u:{name}");
        }
    }
    format!("?:{content}")
}

fn stored_labels(payload: &InitialPayload) -> Vec<String> {
    payload
        .conversation
        .iter()
        .map(|m| label(&m.role, m.content.as_str().unwrap_or_default()))
        .collect()
}

/// No label twice.
fn assert_once(labels: &[String]) {
    let mut seen = HashMap::new();
    for (i, label) in labels.iter().enumerate() {
        if let Some(before) = seen.insert(label, i) {
            panic!("{label} stored twice (at {before} and {i})");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_under_twenty_sessions_loses_nothing_acknowledged_and_keeps_each_chats_order() {
    let data_dir = tempfile::tempdir().unwrap();
    let database = kafka_tests::TestDatabase::create().await;
    let database_url = database.as_ref().map(|d| d.url.as_str());
    let mut server = ServerProcess::with_database(data_dir.path(), database_url).await;
    let chat_ids = chats(&server.base, 20).await;

    // Each session echoes into its chat and uploads every fifth time, until the server dies;
    // it keeps what was acknowledged, in order, and the one in flight when it died.
    let mut sessions = Vec::new();
    for (i, chat_id) in chat_ids.iter().enumerate() {
        let (base, chat_id) = (server.base.clone(), chat_id.clone());
        sessions.push(tokio::spawn(async move {
            let mut client = Client::connect(&base, &chat_id).await;
            client.recv().await.expect("initial payload");
            let mut acked: Vec<Vec<String>> = Vec::new();
            for k in 0.. {
                let (labels, answered) = if k % 5 == 4 {
                    let name = format!("s{i}-{k}.txt");
                    let reply = client.upload(&name, &format!("file {k}")).await;
                    (vec![format!("u:{name}")], reply.map(|r| r["action"] == "file_uploaded"))
                } else {
                    let text = format!("s{i}-{k}");
                    (vec![format!("t:{text}"), format!("e:{text}")], client.echo(&text).await)
                };
                match answered {
                    Some(true) => acked.push(labels),
                    Some(false) => panic!("session {i}: an error before the kill"),
                    None => return (acked, labels),
                }
            }
            unreachable!()
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.child.start_kill().unwrap();
    server.child.wait().await.unwrap();

    let server = ServerProcess::with_database(data_dir.path(), database_url).await;
    let mut total = 0;
    for (session, chat_id) in sessions.into_iter().zip(&chat_ids) {
        let (acked, in_flight) = session.await.unwrap();
        total += acked.len();
        let stored = stored_labels(&Client::initial(&server.base, chat_id).await);
        assert_once(&stored);
        let acked: Vec<String> = acked.into_iter().flatten().collect();
        // Every acknowledged entry, in the order acknowledged, and then at most the one in
        // flight (committed, its answer lost with the process).
        assert!(
            stored.len() >= acked.len(),
            "{chat_id}: lost entries: {acked:?} vs {stored:?}"
        );
        assert_eq!(stored[..acked.len()], acked[..], "{chat_id}: order or content");
        let rest = &stored[acked.len()..];
        assert!(rest.is_empty() || rest == in_flight.as_slice(), "{chat_id}: {rest:?}");
    }
    assert!(total > 100, "the sessions got some work done before the kill: {total}");
}

/// A tmpfs of 2 MiB mounted on a new directory, unmounted when dropped.
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    fn mount() -> Option<Self> {
        let dir = tempfile::tempdir().ok()?;
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then_some(SmallDisk(dir))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.0.path())
            .status();
    }
}

/// Fills the disk holding `path` with a file there; returns its path.
fn fill(dir: &std::path::Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let block = vec![7u8; 4096];
    while file.write_all(&block).is_ok() {}
    let _ = file.sync_all();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_errors_never_a_false_acknowledgement_and_the_server_carries_on() {
    if kafka_tests::TestDatabase::create().await.is_some() {
        eprintln!("note: the full-disk test is about SQLite; skipped on PostgreSQL");
        return;
    }
    let Some(disk) = SmallDisk::mount() else {
        eprintln!("note: cannot mount a tmpfs here (not root?); the full-disk test is skipped");
        return;
    };
    let data_dir = disk.0.path().join("data");
    std::fs::create_dir(&data_dir).unwrap();
    let mut server = ServerProcess::with_database(&data_dir, None).await;
    let chat_id = chats(&server.base, 1).await.remove(0);
    let mut client = Client::connect(&server.base, &chat_id).await;
    client.recv().await.unwrap();
    let mut acked = Vec::new();
    let mut refused = Vec::new();
    assert_eq!(client.echo("before").await, Some(true));
    acked.push("before".to_owned());

    let filler = fill(disk.0.path());
    // 20 KB a message: the WAL needs new pages within a few of them.
    let big = "x".repeat(20_000);
    for k in 0..200 {
        let text = format!("full-{k}-{big}");
        match client.echo(&text).await {
            Some(true) => acked.push(text),
            Some(false) => {
                refused.push(text);
                break;
            }
            None => panic!("the server died on a full disk"),
        }
    }
    assert_eq!(refused.len(), 1, "a full disk is answered with an error");
    // The server is still there and still refuses while full.
    assert_eq!(client.echo(&format!("still-full-{big}")).await, Some(false));
    refused.push(format!("still-full-{big}"));

    std::fs::remove_file(&filler).unwrap();
    assert_eq!(client.echo("space again").await, Some(true), "it carries on");
    acked.push("space again".to_owned());

    // What is stored, now and after a kill: everything acknowledged, nothing refused.
    for round in 0..2 {
        let stored = stored_labels(&Client::initial(&server.base, &chat_id).await);
        assert_once(&stored);
        let expected: Vec<String> = acked
            .iter()
            .flat_map(|t| [format!("t:{t}"), format!("e:{t}")])
            .collect();
        assert_eq!(stored.len(), expected.len(), "round {round}");
        assert!(
            stored == expected,
            "round {round}: acknowledged entries, in order, and no other"
        );
        if round == 0 {
            server.child.start_kill().unwrap();
            server.child.wait().await.unwrap();
            server = ServerProcess::with_database(&data_dir, None).await;
        }
    }
}

/// One action of a client: its label(s), when it was sent and when its answer came.
#[derive(Debug, Clone)]
struct Done {
    labels: Vec<String>,
    sent: Instant,
    answered: Instant,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_chats_order_is_the_order_of_acknowledgement_with_appends_uploads_and_reverts() {
    let server = kafka_tests::TestServer::start().await;
    let (_, _, chat_id) = server.user_with_chat("order@example.com").await;
    const CLIENTS: usize = 4;
    // Each client has a `.based` file to revert.
    let mut setup = Client::connect(&server.url(""), &chat_id).await;
    setup.recv().await.unwrap();
    for i in 0..CLIENTS {
        let reply = setup.upload(&format!("c{i}.based"), "say(\"hi\")\n").await.unwrap();
        assert_eq!(reply["action"], "file_uploaded", "{reply}");
    }
    let payload = Client::initial(&server.url(""), &chat_id).await;
    let first_version: HashMap<String, String> = payload
        .chat_files_based
        .iter()
        .map(|f| (f.name.clone(), f.versions[0].version_id.clone()))
        .collect();
    let before = payload.conversation.len();

    let start = Arc::new(tokio::sync::Barrier::new(CLIENTS));
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let (base, chat_id, start) = (server.url(""), chat_id.clone(), start.clone());
        let version = first_version[&format!("c{i}.based")].clone();
        clients.push(tokio::spawn(async move {
            let mut client = Client::connect(&base, &chat_id).await;
            client.recv().await.unwrap();
            start.wait().await;
            let mut done = Vec::new();
            for k in 0..30 {
                let sent = Instant::now();
                let labels = match k % 3 {
                    0 => {
                        let text = format!("c{i}-{k}");
                        assert_eq!(client.echo(&text).await, Some(true));
                        vec![format!("t:{text}"), format!("e:{text}")]
                    }
                    1 => {
                        let name = format!("c{i}-{k}.txt");
                        let reply = client.upload(&name, "text").await.unwrap();
                        assert_eq!(reply["action"], "file_uploaded", "{reply}");
                        vec![format!("u:{name}")]
                    }
                    _ => {
                        let frame = json!({"action": "revert_version", "version_id": version,
                            "filename": format!("c{i}.based")});
                        assert!(client.send(frame.to_string()).await);
                        let reply: Value = serde_json::from_str(&client.recv().await.unwrap()).unwrap();
                        assert_eq!(reply["action"], "revert_complete", "{reply}");
                        let message = reply["message"]["content"]["message"].as_str().unwrap();
                        vec![format!("r:{}", message.split("new version is ").nth(1).unwrap())]
                    }
                };
                done.push(Done {
                    labels,
                    sent,
                    answered: Instant::now(),
                });
            }
            done
        }));
    }
    let mut all: Vec<Done> = Vec::new();
    let mut per_client = Vec::new();
    for client in clients {
        let done = client.await.unwrap();
        per_client.push(done.clone());
        all.extend(done);
    }

    let payload = Client::initial(&server.url(""), &chat_id).await;
    let stored = stored_labels(&payload)[before..].to_vec();
    assert_once(&stored);
    let position: HashMap<&str, usize> = stored.iter().enumerate().map(|(i, l)| (l.as_str(), i)).collect();
    let expected: usize = all.iter().map(|d| d.labels.len()).sum();
    assert_eq!(
        stored.len(),
        expected,
        "every acknowledged entry, and no other: {stored:?}"
    );
    let at = |d: &Done| -> Vec<usize> {
        d.labels
            .iter()
            .map(|l| *position.get(l.as_str()).unwrap_or_else(|| panic!("{l} not stored")))
            .collect()
    };
    // Each client's entries in the order its answers came, an echo's two together.
    for done in &per_client {
        let places: Vec<usize> = done.iter().flat_map(at).collect();
        assert!(places.windows(2).all(|w| w[1] > w[0]), "{places:?}");
        for d in done {
            let p = at(d);
            assert!(
                p.windows(2).all(|w| w[1] == w[0] + 1),
                "an echo's entries are adjacent: {p:?}"
            );
        }
    }
    // Across clients: an action answered before another was sent comes first.
    for a in &all {
        for b in &all {
            if a.answered < b.sent {
                assert!(
                    at(a).last() < at(b).first(),
                    "{:?} was answered before {:?} was sent, but is stored after it",
                    a.labels,
                    b.labels
                );
            }
        }
    }
}

//! The model key never reaches the log: the server runs in-process under a subscriber that
//! captures every event at TRACE level (ours and the libraries'), through the paths most
//! likely to leak it — adding the model, successful and failing model calls (whose error
//! bodies echo the key), retries — and the captured text is searched for the key.
//! Its own test binary: the subscriber is global.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a panic is the failure report"
)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use kafka_tests::TestServer;
use kafka_tests::fake_model::FakeModel;
use serde_json::{Value, json};

const KEY: &str = "sk-log-probe-7c1e55aa";

/// A `MakeWriter` that appends everything to a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn the_model_key_is_absent_from_the_captured_log() {
    let log = Captured::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_env_filter("trace")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let server = TestServer::start().await;
    let fake = FakeModel::start().await;
    let (user_id, _, chat_id) = server.user_with_chat("log@example.com").await;
    server.add_model(&user_id, "fake-model", KEY, &fake.base_url()).await;
    let mut ws = server.connect(&chat_id, true).await;
    ws.recv_initial().await;
    let ask = json!({"action": "new_message", "model": "fake-model", "prompt": "hi",
                     "is_first_prompt": false, "is_chat_or_composer": false});

    // A good answer, then a provider that echoes the key in a 401 and in 500s (retried).
    fake.push_json(json!({"text": "Hello."}));
    fake.push_status(401, &format!(r#"{{"error": "Incorrect API key provided: {KEY}"}}"#));
    for _ in 0..6 {
        fake.push_status(500, &format!(r#"{{"error": "upstream failed for key {KEY}"}}"#));
    }
    for _ in 0..3 {
        ws.send_json(&ask).await;
        loop {
            let frame = ws.recv_text().await;
            assert!(!frame.contains(KEY), "{frame}");
            let is_event = serde_json::from_str::<Value>(&frame).is_ok_and(|v| v.get("event").is_some());
            if !is_event {
                break;
            }
        }
    }
    assert!(fake.requests().len() >= 3, "the model was called");

    let text = log.text();
    assert!(text.contains("model call"), "the capture works: {} bytes", text.len());
    assert!(text.contains("fake-model"));
    if let Some(at) = text.find(KEY) {
        panic!(
            "the key is in the log: …{}…",
            &text[at.saturating_sub(300)..(at + 100).min(text.len())]
        );
    }
}

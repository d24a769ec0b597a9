//! A model endpoint is named by a user and called by the server, so it is hostile input
//! (issue 17, items 6 and 7): internal hosts are refused in token mode, at registration and
//! again at each call (DNS rebinding); redirects are not followed; an error frame carries the
//! provider's short error message, never its body; a reply is read up to a cap.
//!
//! Every connection stays on 127.0.0.1. Host names are answered by a stand-in resolver (the
//! server's `model_host_lookup`), so no DNS query leaves the machine, and the internal
//! addresses other than loopback are only ever registered, never called.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a panic is the failure report"
)]

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_server::agent::HostLookup;
use kafka_server::auth::AuthMode;
use kafka_server::config::Settings;
use kafka_tests::fake_model::{FakeModel, StreamReport};
use kafka_tests::{TestServer, WsClient};
use serde_json::{Value, json};

const KEY: &str = "sk-hosts-probe-5b2d9e";

/// A stand-in DNS: each name answers with its list of address sets in turn (the last one
/// repeating); unknown names do not resolve. Counts the lookups per name.
#[derive(Clone, Default)]
struct FakeDns {
    answers: Arc<Mutex<HashMap<String, Vec<Vec<IpAddr>>>>>,
    lookups: Arc<Mutex<HashMap<String, usize>>>,
}

impl FakeDns {
    fn answer(self, name: &str, answers: &[&[&str]]) -> Self {
        let answers = answers
            .iter()
            .map(|set| set.iter().map(|ip| ip.parse().unwrap()).collect())
            .collect();
        self.answers.lock().unwrap().insert(name.to_owned(), answers);
        self
    }

    fn lookups(&self, name: &str) -> usize {
        self.lookups.lock().unwrap().get(name).copied().unwrap_or(0)
    }

    fn lookup(&self) -> HostLookup {
        let dns = self.clone();
        HostLookup::new(move |name| {
            let count = {
                let mut lookups = dns.lookups.lock().unwrap();
                let count = lookups.entry(name.to_owned()).or_insert(0);
                *count += 1;
                *count
            };
            let answer = dns
                .answers
                .lock()
                .unwrap()
                .get(name)
                .map(|sets| sets[(count - 1).min(sets.len() - 1)].clone());
            Box::pin(async move {
                answer.ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such host (fake DNS)"))
            })
        })
    }
}

fn token_mode(dns: &FakeDns, allow_private: bool) -> impl FnOnce(&mut Settings) {
    let lookup = dns.lookup();
    move |settings| {
        settings.auth = AuthMode::Token;
        settings.allow_private_model_hosts = allow_private;
        settings.model_host_lookup = lookup;
    }
}

/// A logged-in user of a token-mode server: `(user_id, token, workspace_id)`.
async fn login(server: &TestServer, email: &str) -> (String, String, String) {
    let response = server
        .http
        .post(server.url("/auth/login"))
        .json(&json!({ "email": email, "password": "a long enough password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    (
        body["user_id"].as_str().unwrap().to_owned(),
        body["token"].as_str().unwrap().to_owned(),
        body["workspaces"][0]["id"].as_str().unwrap().to_owned(),
    )
}

/// `POST /models/new` with the token: the status and the body.
async fn register(server: &TestServer, token: &str, user_id: &str, name: &str, base_url: &str) -> (u16, Value) {
    let form = reqwest::multipart::Form::new()
        .text("user_id", user_id.to_owned())
        .text("name", name.to_owned())
        .text("ak", KEY)
        .text("base_url", base_url.to_owned());
    let response = server
        .http
        .post(server.url("/models/new"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn model_names(server: &TestServer, user_id: &str) -> Vec<String> {
    let models = server.state.store.models_of(user_id).await.unwrap();
    models.into_iter().map(|m| m.name).collect()
}

/// Opens the chat's WebSocket (with the token when given) and reads the initial payload.
async fn open_chat(server: &TestServer, chat_id: &str, token: Option<&str>) -> WsClient {
    let url = match token {
        Some(token) => format!("{}?v=2&token={token}", server.ws_url(chat_id)),
        None => format!("{}?v=2", server.ws_url(chat_id)),
    };
    let mut ws = WsClient::connect(&url).await;
    ws.recv_initial().await;
    ws
}

/// A new chat in the workspace, created with the token.
async fn new_chat(server: &TestServer, token: &str, user_id: &str, workspace_id: &str) -> String {
    let workspace_id = workspace_id.to_owned();
    let form = reqwest::multipart::Form::new()
        .text("user_id", user_id.to_owned())
        .text("workspace_id", workspace_id)
        .text("chat_name", "Hosts");
    let response = server
        .http
        .post(server.url("/chat/new"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let chat: Value = response.json().await.unwrap();
    chat["chat_id"].as_str().unwrap().to_owned()
}

/// Asks `model` a plain question (one model call) and returns the reply frame's text.
async fn ask(ws: &mut WsClient, model: &str) -> String {
    ws.send_json(&json!({"action": "new_message", "model": model, "prompt": "Hello?",
                         "is_first_prompt": false, "is_chat_or_composer": false}))
        .await;
    loop {
        let text = ws.recv_text().await;
        let is_event = serde_json::from_str::<Value>(&text).is_ok_and(|v| v.get("event").is_some());
        if !is_event {
            return text;
        }
    }
}

#[tokio::test]
async fn token_mode_refuses_internal_model_hosts_at_registration() {
    // Never called: registration only checks. Its connection count proves it.
    let fake = FakeModel::start().await;
    let port = fake.port();
    let dns = FakeDns::default()
        .answer("localhost.test", &[&["127.0.0.1"]])
        .answer("metadata.test", &[&["169.254.169.254"]])
        .answer("mixed.test", &[&["93.184.216.34", "10.1.2.3"]])
        .answer("public.test", &[&["93.184.216.34", "2606:2800:220:1::1"]]);
    let refused: Vec<(String, &str)> = vec![
        (format!("http://127.0.0.1:{port}/v1"), "loopback"),
        ("http://169.254.169.254/latest/meta-data".into(), "cloud-metadata"),
        ("http://10.0.0.1/v1".into(), "private"),
        (format!("http://[::1]:{port}/v1"), "loopback"),
        ("http://172.20.1.1/v1".into(), "private"),
        ("http://192.168.0.10/v1".into(), "private"),
        ("http://100.64.0.1/v1".into(), "CGNAT"),
        ("http://[fd00:ec2::254]/latest".into(), "cloud-metadata"),
        ("http://[fd12:3456::1]/v1".into(), "unique-local"),
        ("http://[fe80::1]/v1".into(), "link-local"),
        (format!("http://0.0.0.0:{port}/v1"), "unspecified"),
        (format!("http://[::ffff:127.0.0.1]:{port}/v1"), "loopback"),
        // 127.0.0.1 spelt as one number: URL parsing makes it 127.0.0.1 again.
        (format!("http://2130706433:{port}/v1"), "loopback"),
        (format!("http://localhost.test:{port}/v1"), "resolves to a loopback"),
        (
            "https://metadata.test/computeMetadata/v1".into(),
            "resolves to a cloud-metadata",
        ),
        ("https://mixed.test/v1".into(), "resolves to a private"),
        ("https://nowhere.test/v1".into(), "could not be resolved"),
        ("ftp://public.test/v1".into(), "http(s) URL"),
        ("file:///etc/passwd".into(), "http(s) URL"),
    ];

    let server = TestServer::start_with(token_mode(&dns, false)).await;
    let (user_id, token, _) = login(&server, "hosts@example.com").await;
    for (i, (base_url, reason)) in refused.iter().enumerate() {
        let (status, body) = register(&server, &token, &user_id, &format!("m{i}"), base_url).await;
        assert_eq!(status, 422, "{base_url}: {body}");
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(
            detail.starts_with("Field base_url:") && detail.contains(reason),
            "{base_url}: {detail}"
        );
        assert!(!detail.contains(KEY));
    }
    let (_, body) = register(&server, &token, &user_id, "again", &refused[0].0).await;
    assert!(
        body["detail"].as_str().unwrap().contains("--allow-private-model-hosts"),
        "{body}"
    );
    assert!(model_names(&server, &user_id).await.is_empty(), "nothing stored");
    // A public host is fine.
    let (status, body) = register(&server, &token, &user_id, "public", "https://public.test/v1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(model_names(&server, &user_id).await, ["public"]);

    // With the flag, internal hosts are the operator's choice (names still must resolve).
    let dns_allowing = FakeDns::default();
    let allowing = TestServer::start_with(token_mode(&dns_allowing, true)).await;
    let (user_id, token, _) = login(&allowing, "hosts@example.com").await;
    for (i, (base_url, _)) in refused.iter().enumerate() {
        let (status, body) = register(&allowing, &token, &user_id, &format!("m{i}"), base_url).await;
        let expected = if base_url.starts_with("http") { 200 } else { 422 };
        assert_eq!(status, expected, "{base_url}: {body}");
    }
    assert_eq!(
        dns_allowing.lookups("localhost.test"),
        0,
        "allowed hosts are not looked up"
    );

    // Open mode (the TUI's embedded server) keeps local models such as Ollama.
    let open = TestServer::start().await;
    let login = open.login("hosts@example.com").await;
    open.add_model(&login.user_id, "ollama", "", &format!("http://127.0.0.1:{port}/v1"))
        .await;

    assert_eq!(fake.connections(), 0, "registration never connects");
}

#[tokio::test]
async fn hosts_are_checked_again_at_call_time() {
    let fake = FakeModel::start().await;
    let port = fake.port();
    // Public when the model is registered, loopback when it is called: DNS rebinding.
    let dns = FakeDns::default().answer("rebind.test", &[&["93.184.216.34"], &["127.0.0.1"]]);
    let server = TestServer::start_with(token_mode(&dns, false)).await;
    let (user_id, token, workspace_id) = login(&server, "rebind@example.com").await;
    let (status, body) = register(
        &server,
        &token,
        &user_id,
        "rebinding",
        &format!("http://rebind.test:{port}/v1"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // A model stored before the rule existed (or by another path), with an IP literal.
    server
        .state
        .store
        .create_model(&user_id, "stored", KEY, &format!("http://127.0.0.1:{port}/v1"))
        .await
        .unwrap();
    let chat_id = new_chat(&server, &token, &user_id, &workspace_id).await;
    let mut ws = open_chat(&server, &chat_id, Some(&token)).await;

    fake.push_json(json!({"text": "You should not see this."}));
    let reply = ask(&mut ws, "stored").await;
    assert!(
        reply.contains("refused") && reply.contains("127.0.0.1 is a loopback address"),
        "{reply}"
    );
    assert!(!reply.contains(KEY));
    let reply = ask(&mut ws, "rebinding").await;
    assert!(
        reply.contains("refused") && reply.contains("rebind.test resolves to a loopback address"),
        "{reply}"
    );
    assert!(dns.lookups("rebind.test") >= 2, "looked up again at call time");
    assert_eq!(fake.connections(), 0, "the model was never called");

    // The same name and the same fake DNS, with the flag: the call goes through, so the
    // refusal above came from the check and not from an unusable test setup.
    let allowing = TestServer::start_with(token_mode(&dns, true)).await;
    let (user_id, token, workspace_id) = login(&allowing, "rebind@example.com").await;
    let (status, _) = register(
        &allowing,
        &token,
        &user_id,
        "rebinding",
        &format!("http://rebind.test:{port}/v1"),
    )
    .await;
    assert_eq!(status, 200);
    let chat_id = new_chat(&allowing, &token, &user_id, &workspace_id).await;
    let mut ws = open_chat(&allowing, &chat_id, Some(&token)).await;
    assert_eq!(ask(&mut ws, "rebinding").await, "You should not see this.");
    assert_eq!(fake.requests().len(), 1);
}

/// A chat on an open-mode server with `fake` registered as "fake-model", and its WebSocket.
async fn open_mode_chat(server: &TestServer, fake: &FakeModel) -> (String, WsClient) {
    let (user_id, _, chat_id) = server.user_with_chat("model@example.com").await;
    server.add_model(&user_id, "fake-model", KEY, &fake.base_url()).await;
    let ws = open_chat(server, &chat_id, None).await;
    (chat_id, ws)
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let server = TestServer::start().await;
    let fake = FakeModel::start().await;
    // Where the redirect points: it must never be contacted.
    let target = FakeModel::start().await;
    let (_, mut ws) = open_mode_chat(&server, &fake).await;
    for status in [302, 307] {
        fake.push_status_with_headers(
            status,
            &[("location", &format!("{}/internal/secrets", target.origin()))],
            "moved",
        );
        let reply = ask(&mut ws, "fake-model").await;
        assert!(
            reply.contains(&format!("redirected the request ({status})"))
                && reply.contains("redirects are not followed"),
            "{reply}"
        );
        assert!(!reply.contains("internal/secrets"), "{reply}");
    }
    assert_eq!(fake.requests().len(), 2, "one call each, not retried");
    // Give a (wrongly) followed redirect time to arrive before concluding it did not.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(target.connections(), 0, "the redirect target was contacted");
}

#[tokio::test]
async fn error_frames_show_the_status_and_the_providers_message_only() {
    let server = TestServer::start().await;
    let fake = FakeModel::start().await;
    let (chat_id, mut ws) = open_mode_chat(&server, &fake).await;

    // OpenAI's shape, with a secret beside the message.
    fake.push_status(
        400,
        &format!(
            r#"{{"error": {{"message": "Unknown model.\nPick another\u0007 one (key {KEY}).", "type": "invalid"}},
                "debug": "db_password=hunter2-in-debug"}}"#
        ),
    );
    let reply = ask(&mut ws, "fake-model").await;
    assert!(
        reply.contains("the model rejected the request (400): Unknown model. Pick another one (key [redacted])."),
        "{reply}"
    );
    assert!(!reply.contains("hunter2") && !reply.contains(KEY), "{reply}");

    // An internal service answering in plain text: the status only.
    fake.push_status(403, "db_password=hunter2-in-text\nadmin_token=tok-77");
    let reply = ask(&mut ws, "fake-model").await;
    assert!(reply.contains("the model rejected the request (403)"), "{reply}");
    assert!(!reply.contains("hunter2") && !reply.contains("tok-77"), "{reply}");

    // JSON without a message: the status only.
    fake.push_status(404, r#"{"config": {"db_password": "hunter2-in-json"}}"#);
    let reply = ask(&mut ws, "fake-model").await;
    assert!(reply.contains("not found (404)"), "{reply}");
    assert!(!reply.contains("hunter2"), "{reply}");

    // `{"error": "…"}` (Ollama) and a long message, cut.
    fake.push_status(
        422,
        &json!({"error": format!("{}hunter2-past-the-cut", "x".repeat(300))}).to_string(),
    );
    let reply = ask(&mut ws, "fake-model").await;
    assert!(reply.contains("(422): xxxx"), "{reply}");
    assert!(!reply.contains("hunter2"), "{reply}");

    // The same reply is saved in the conversation.
    let conversation = server.state.store.conversation(&chat_id).await.unwrap();
    let saved: String = conversation.iter().map(|m| m.content.to_string()).collect();
    assert!(!saved.contains("hunter2") && !saved.contains(KEY));
}

#[tokio::test]
async fn a_reply_over_the_cap_fails_clearly_and_the_server_stays_up() {
    const MIB: u64 = 1024 * 1024;
    let server = TestServer::start_with(|s| s.max_model_reply_bytes = MIB).await;
    let fake = FakeModel::start().await;
    let (_, mut ws) = open_mode_chat(&server, &fake).await;
    let total = 64 * MIB;

    // Streamed without a length, then announced with one: both stop at the cap.
    for (i, chunked) in [true, false].into_iter().enumerate() {
        fake.push_stream(total, chunked);
        let reply = ask(&mut ws, "fake-model").await;
        assert!(
            reply.contains("the model's reply exceeded the 1 MiB limit"),
            "chunked {chunked}: {reply}"
        );
        let report = wait_for_stream_report(&fake, i).await;
        assert!(
            !report.finished,
            "chunked {chunked}: the whole reply was read: {report:?}"
        );
        assert!(report.written < total / 2, "chunked {chunked}: {report:?}");
    }
    assert_eq!(fake.requests().len(), 2, "not retried");

    // Still serving, and a reply under the cap is fine.
    let health = server.http.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    fake.push_json(json!({"text": "Small enough."}));
    assert_eq!(ask(&mut ws, "fake-model").await, "Small enough.");
}

/// The report of streamed reply `index`, once the fake stopped writing it (bounded wait).
async fn wait_for_stream_report(fake: &FakeModel, index: usize) -> StreamReport {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(report) = fake.streams().get(index) {
            return *report;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the fake is still writing: the connection stayed open"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

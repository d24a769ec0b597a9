//! Issue 17: the per-user storage quota (`--storage-quota-mb`) over uploads, conversation and
//! file versions, against the real server: every way in is refused with the limit named,
//! nothing is written, other users are untouched, and deleting makes room at once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a panic is the failure report"
)]

use std::time::Duration;

use base64::Engine;
use kafka_tests::{TestServer, WsClient};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

const QUOTA: u64 = 1024 * 1024;

async fn server() -> TestServer {
    TestServer::start_with(|settings| settings.storage_quota_bytes = Some(QUOTA)).await
}

async fn upload(server: &TestServer, target_id: &str, is_chat: bool, name: &str, size: usize) -> reqwest::Response {
    server.upload(target_id, is_chat, &[(name, &vec![b'x'; size])]).await
}

/// Asserts a refusal naming the quota and its flag.
async fn assert_refused(response: reqwest::Response) {
    assert_eq!(response.status(), 507);
    let body: Value = response.json().await.unwrap();
    assert_quota_message(body["detail"].as_str().unwrap());
}

fn assert_quota_message(text: &str) {
    assert!(
        text.contains("Storage quota reached") && text.contains("--storage-quota-mb") && text.contains("1.0 MiB"),
        "{text}"
    );
}

/// The next frame that is not a live event.
async fn reply(ws: &mut WsClient) -> String {
    loop {
        let text = ws.recv_text().await;
        if !text.starts_with("{\"event\"") {
            return text;
        }
    }
}

async fn echo(ws: &mut WsClient, size: usize) -> String {
    ws.send_text(&"e".repeat(size)).await;
    reply(ws).await
}

fn error_of(frame: &str) -> String {
    let value: Value = serde_json::from_str(frame).unwrap_or_else(|_| panic!("not an error frame: {frame:.80}"));
    value["error"].as_str().unwrap_or_else(|| panic!("{value}")).to_owned()
}

#[tokio::test]
async fn uploads_and_messages_stop_at_the_quota_and_deleting_makes_room() {
    let server = server().await;
    let (user_id, workspace_id, chat_id) = server.user_with_chat("full@example.com").await;
    let store = &server.state.store;

    // 600 KB fits; another 600 KB would not, and is refused before any byte is kept.
    let response = upload(&server, &chat_id, true, "first.txt", 600_000).await;
    assert_eq!(response.status(), 200);
    let first: Value = response.json().await.unwrap();
    let first_id = first["files"][0].as_str().unwrap().to_owned();
    assert_eq!(store.stored_bytes(&user_id).await.unwrap(), 600_000);
    assert_refused(upload(&server, &chat_id, true, "second.txt", 600_000).await).await;
    assert_refused(upload(&server, &workspace_id, false, "second.txt", 600_000).await).await;
    let form = Form::new()
        .text("owner_id", user_id.clone())
        .text("name", "Another")
        .part("files", Part::bytes(vec![b'x'; 600_000]).file_name("third.txt"));
    let response = server
        .http
        .post(server.url("/workspace/new"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_refused(response).await;
    assert_eq!(server.stored_uploads().await.len(), 1, "no refused bytes were kept");
    let overview = server.login("full@example.com").await;
    assert_eq!(overview.workspaces.len(), 1, "no workspace was created");
    assert_eq!(overview.workspaces[0].files.len(), 1);

    // Over the WebSocket: an echo (stored twice: 2 × 250 KB) and an upload are refused too.
    let mut ws = server.connect(&chat_id, false).await;
    ws.recv_json().await;
    assert_quota_message(&error_of(&echo(&mut ws, 250_000).await));
    let data = base64::engine::general_purpose::STANDARD.encode(vec![b'y'; 500_000]);
    ws.send_json(&json!({"action": "upload_file", "filename": "ws.txt", "file_data": data}))
        .await;
    assert_quota_message(&error_of(&reply(&mut ws).await));
    ws.send_json(&json!({"action": "new_message", "prompt": "p".repeat(500_000), "model": "none"}))
        .await;
    assert_quota_message(&error_of(&reply(&mut ws).await));
    assert!(
        store.conversation(&chat_id).await.unwrap().is_empty(),
        "nothing was stored"
    );
    assert_eq!(store.stored_bytes(&user_id).await.unwrap(), 600_000);
    assert_eq!(server.stored_uploads().await.len(), 1);

    // Small messages still fit, up to the quota.
    assert_eq!(echo(&mut ws, 1_000).await, format!("Echo: {}", "e".repeat(1_000)));

    // Another user is not affected by this one's quota.
    let (_, _, other_chat) = server.user_with_chat("other@example.com").await;
    let mut other = server.connect(&other_chat, false).await;
    other.recv_json().await;
    assert!(echo(&mut other, 250_000).await.starts_with("Echo: eee"));

    // Deleting the file makes room at once, even though a refusal was just counted.
    let response = server
        .http
        .delete(server.url(&format!("/file/delete/{first_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(echo(&mut ws, 250_000).await.starts_with("Echo: eee"));
    assert!(store.stored_bytes(&user_id).await.unwrap() > 500_000);
}

#[tokio::test]
async fn versions_count_and_a_deleted_chat_gives_its_bytes_back() {
    let server = server().await;
    let (user_id, workspace_id, chat_id) = server.user_with_chat("versions@example.com").await;
    let store = &server.state.store;
    let mut ws = server.connect(&chat_id, true).await;
    ws.recv_initial().await;
    const FLOW: &str = "state Start {\n}\n";
    let data = base64::engine::general_purpose::STANDARD.encode(FLOW);
    ws.send_json(&json!({"action": "upload_file", "filename": "flow.based", "file_data": data}))
        .await;
    let uploaded: Value = serde_json::from_str(&reply(&mut ws).await).unwrap();
    let file_id = kafka_tests::file_content(&uploaded["message"])["file_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // A user's edit is stored twice (the version and its entry): 2 × 400 KB fits, 2 × 300 KB more
    // does not — over the WebSocket and over REST alike.
    let big = |fill: char, size: usize| format!("# {}\nstate Start {{\n}}\n", fill.to_string().repeat(size));
    ws.send_json(&json!({"action": "save_version", "file_id": file_id, "content": big('a', 400_000)}))
        .await;
    let saved: Value = serde_json::from_str(&reply(&mut ws).await).unwrap();
    assert!(saved["version_id"].is_string(), "{saved}");
    ws.send_json(&json!({"action": "save_version", "file_id": file_id, "content": big('b', 300_000)}))
        .await;
    assert_quota_message(&error_of(&reply(&mut ws).await));
    let response = server
        .http
        .post(server.url(&format!("/file/{file_id}/versions")))
        .json(&json!({ "content": big('c', 300_000) }))
        .send()
        .await
        .unwrap();
    assert_refused(response).await;
    assert_eq!(store.chat_versions(&chat_id).await.unwrap().len(), 2);

    // Deleting the chat takes its conversation and versions off the count; the upload's bytes
    // stay with the workspace, whose file it also is.
    let used = store.stored_bytes(&user_id).await.unwrap();
    assert!(used > 800_000, "{used}");
    let response = server
        .http
        .delete(server.url(&format!("/chat/{chat_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(ws.closed_within(Duration::from_secs(5)).await);
    assert_eq!(store.stored_bytes(&user_id).await.unwrap(), FLOW.len() as u64);
    let chat = server.new_chat(&user_id, &workspace_id, "Fresh").await;
    let mut ws = server.connect(&chat.chat_id, false).await;
    ws.recv_json().await;
    assert!(echo(&mut ws, 400_000).await.starts_with("Echo: eee"));
}

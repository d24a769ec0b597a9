//! A server killed with SIGKILL loses nothing it acknowledged: every change is committed
//! before its reply goes out. Spawns the real binary, kills it, restarts it on the same data.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a panic is the failure report"
)]

use base64::Engine;
use kafka_tests::{ServerProcess, WsClient};
use serde_json::json;

#[tokio::test]
async fn sigkill_mid_session_loses_nothing_acknowledged() {
    let data_dir = tempfile::tempdir().unwrap();
    let database = kafka_tests::TestDatabase::create().await;
    let database_url = database.as_ref().map(|d| d.url.as_str());
    let mut server = ServerProcess::with_database(data_dir.path(), database_url).await;
    let http = reqwest::Client::new();
    let login: serde_json::Value = http
        .post(format!("{}/auth/login", server.base))
        .json(&json!({"email": "crash@example.com"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let user_id = login["user_id"].as_str().unwrap().to_owned();
    let workspace_id = login["workspaces"][0]["id"].as_str().unwrap().to_owned();
    let form = reqwest::multipart::Form::new()
        .text("user_id", user_id)
        .text("workspace_id", workspace_id)
        .text("chat_name", "Crash");
    let chat: serde_json::Value = http
        .post(format!("{}/chat/new", server.base))
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let chat_id = chat["chat_id"].as_str().unwrap().to_owned();

    let ws_url = format!("{}/ws/{chat_id}", server.base.replacen("http", "ws", 1));
    let mut ws = WsClient::connect(&ws_url).await;
    ws.recv_initial().await;
    for i in 0..20 {
        ws.send_text(&format!("message {i}")).await;
        assert_eq!(ws.recv_text().await, format!("Echo: message {i}"));
    }
    let data = base64::engine::general_purpose::STANDARD.encode("say(\"hi\")\n");
    ws.send_json(&json!({"action": "upload_file", "filename": "kept.based", "file_data": data}))
        .await;
    assert_eq!(ws.recv_json().await["action"], "file_uploaded");
    // The kill comes right after the last answer: each was committed before it was sent.
    for i in 20..40 {
        ws.send_text(&format!("message {i}")).await;
        assert_eq!(ws.recv_text().await, format!("Echo: message {i}"));
    }

    // SIGKILL: no shutdown code runs.
    server.child.start_kill().unwrap();
    server.child.wait().await.unwrap();

    let server = ServerProcess::with_database(data_dir.path(), database_url).await;
    let ws_url = format!("{}/ws/{chat_id}", server.base.replacen("http", "ws", 1));
    let mut ws = WsClient::connect(&ws_url).await;
    let payload = ws.recv_initial().await;
    assert_eq!(
        payload.conversation.len(),
        81,
        "40 echoes (2 entries each) and the upload"
    );
    assert_eq!(payload.conversation[38].content, "message 19");
    assert_eq!(payload.conversation[39].content, "Echo: message 19");
    assert_eq!(payload.conversation[79].content, "message 39");
    assert_eq!(payload.conversation[80].content, "Echo: message 39");
    assert_eq!(payload.chat_files_based.len(), 1);
    assert_eq!(payload.chat_files_based[0].latest_content, "say(\"hi\")\n");
}

//! The original's web frontend, replayed request by request and frame by frame against the
//! real server: what it sends (the original's wire, which differs from the brief's prose in
//! places) and what it reads. A wire change that would break that frontend fails here.
//!
//! Its steps: sign in, upload to the workspace and delete the file, add a model, new chat,
//! open it, upload to the chat and delete that, ask the agent for a file, ask a question,
//! reload. It renders every conversation entry's `content` as text, so each must be a string
//! (structured entries as the JSON text the original stores).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a panic is the failure report"
)]

use base64::Engine;
use kafka_tests::fake_model::FakeModel;
use kafka_tests::{TestServer, WsClient};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

const FLOW: &str = "say(\"Hi, I book tables.\", exact=True)\n";

/// `POST /file/upload` as the frontend sends it: no `user_id`.
async fn upload(server: &TestServer, target_id: &str, is_chat: bool, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut form = Form::new()
        .text("target_id", target_id.to_owned())
        .text("is_chat", is_chat.to_string())
        .part(
            "files",
            Part::bytes(b"notes for the agent".to_vec()).file_name("notes.md"),
        );
    for (name, value) in extra {
        form = form.text(name.to_string(), value.to_string());
    }
    server
        .http
        .post(server.url("/file/upload"))
        .multipart(form)
        .send()
        .await
        .unwrap()
}

/// The initial payload's fields the frontend reads, checked for their types.
fn check_payload(payload: &Value, chat_name: &str) {
    assert_eq!(payload["chat_name"], chat_name);
    assert_eq!(payload["initial"], true);
    for field in ["chat_files_text", "chat_files_based", "models", "conversation"] {
        assert!(payload[field].is_array(), "{field} is a list: {payload}");
    }
    for entry in payload["conversation"].as_array().unwrap() {
        assert!(entry["role"].is_string() && entry["type"].is_string(), "{entry}");
        assert!(
            entry["content"].is_string(),
            "every conversation content is a string, as the original sends it: {entry}"
        );
    }
}

async fn open(server: &TestServer, chat_id: &str, chat_name: &str) -> (WsClient, Value) {
    let mut ws = server.connect(chat_id, false).await;
    let payload = ws.recv_json().await;
    check_payload(&payload, chat_name);
    (ws, payload)
}

#[tokio::test]
async fn the_original_web_frontend_works_step_by_step() {
    let server = TestServer::start().await;
    let fake = FakeModel::start().await;

    // Sign in.
    let login = server.login("frontend@example.com").await;
    let workspace_id = login.workspaces[0].id.clone();

    // Upload to the workspace without user_id, then delete the file.
    let response = upload(&server, &workspace_id, false, &[]).await;
    assert_eq!(response.status(), 200);
    let files: Value = response.json().await.unwrap();
    let file_id = files["files"][0].as_str().unwrap().to_owned();
    let response = server
        .http
        .delete(server.url(&format!("/file/delete/{file_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // Add a model, start a chat, open it.
    server
        .add_model(&login.user_id, "fake-model", "sk-test", &fake.base_url())
        .await;
    let chat = server.new_chat(&login.user_id, &workspace_id, "Bookings").await;
    let (mut ws, payload) = open(&server, &chat.chat_id, "Bookings").await;
    assert_eq!(payload["models"], json!(["fake-model"]));

    // Upload to the chat: the reply's content is the JSON text the original sends.
    let data = base64::engine::general_purpose::STANDARD.encode("context for the agent");
    ws.send_json(&json!({"action": "upload_file", "filename": "context.txt", "file_data": data}))
        .await;
    let reply = ws.recv_json().await;
    assert_eq!(reply["action"], "file_uploaded");
    assert_eq!(
        (&reply["message"]["role"], &reply["message"]["type"]),
        (&json!("user"), &json!("file"))
    );
    let uploaded: Value = serde_json::from_str(reply["message"]["content"].as_str().unwrap()).unwrap();
    let chat_file_id = uploaded["file_id"].as_str().unwrap().to_owned();
    assert_eq!(uploaded["filename"], "context.txt");
    assert_eq!(uploaded["path"], format!("uploads/files/{chat_file_id}_context.txt"));

    // Delete it: the frontend reads message.deleted_file_id; content is the original's note.
    ws.send_json(&json!({"action": "delete_file", "file_id": chat_file_id}))
        .await;
    let reply = ws.recv_json().await;
    assert_eq!(reply["action"], "file_deleted");
    assert_eq!(reply["message"]["deleted_file_id"], chat_file_id.as_str());
    assert_eq!(reply["message"]["content"], "context.txt was deleted.");
    assert_eq!(reply["message"]["role"], "system");

    // Ask the agent for a file: the original's agent_response, with its `block`.
    fake.push_json(json!({"type": "based", "filename": "booking.based", "text": FLOW}));
    ws.send_json(
        &json!({"action": "new_message", "model": "fake-model", "prompt": "Write a booking agent",
                         "is_first_prompt": true, "is_chat_or_composer": true, "selected_filename": null}),
    )
    .await;
    let reply = ws.recv_json().await;
    assert_eq!(reply["action"], "agent_response");
    let body = json!({"based_filename": "booking.based", "based_content": FLOW});
    assert_eq!(reply["content"], body);
    assert_eq!(reply["message"]["content"], body);
    assert!(
        reply["block"]["content"].is_string(),
        "block.content is JSON text: {reply}"
    );
    assert_eq!(kafka_tests::file_content(&reply["block"]), body);
    let based_id = reply["id"].as_str().unwrap().to_owned();

    // Ask a question: the answer is a plain text frame.
    fake.push_json(json!({"text": "It greets and books."}));
    ws.send_json(
        &json!({"action": "new_message", "model": "fake-model", "prompt": "What does it do?",
                         "is_first_prompt": false, "is_chat_or_composer": false, "selected_filename": "booking.based"}),
    )
    .await;
    assert_eq!(ws.recv_text().await, "It greets and books.");
    ws.close().await;

    // Reload: every entry's content a string; structured ones parse to the original's keys.
    let (ws, payload) = open(&server, &chat.chat_id, "Bookings").await;
    ws.close().await;
    let entries = payload["conversation"].as_array().unwrap();
    let shapes: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e["role"].as_str().unwrap(), e["type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        shapes,
        [
            ("user", "file"),
            ("system", "file"),
            ("user", "text"),
            ("assistant", "file"),
            ("user", "text"),
            ("assistant", "text"),
        ]
    );
    let upload_entry = kafka_tests::file_content(&entries[0]);
    assert_eq!(upload_entry["file_id"], chat_file_id.as_str());
    assert_eq!(upload_entry["filename"], "context.txt");
    assert_eq!(entries[1]["content"], "context.txt was deleted.");
    assert_eq!(kafka_tests::file_content(&entries[3]), body);
    assert_eq!(entries[5]["content"], "It greets and books.");
    let based = &payload["chat_files_based"][0];
    assert_eq!(
        (
            based["file_id"].as_str(),
            based["name"].as_str(),
            based["latest_content"].as_str()
        ),
        (Some(based_id.as_str()), Some("booking.based"), Some(FLOW))
    );
    assert_eq!(based["versions"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_revert_is_stored_with_the_original_keys_and_protocol_2_keeps_objects() {
    let server = TestServer::start().await;
    let (_, _, chat_id) = server.user_with_chat("revert@example.com").await;
    let mut ws = server.connect(&chat_id, false).await;
    ws.recv_json().await;
    let data = base64::engine::general_purpose::STANDARD.encode(FLOW);
    ws.send_json(&json!({"action": "upload_file", "filename": "flow.based", "file_data": data}))
        .await;
    let file_id = kafka_tests::file_content(&ws.recv_json().await["message"])["file_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = server.state.store.chat_versions(&chat_id).await.unwrap()[0].id.clone();
    server
        .state
        .store
        .add_version(&chat_id, &file_id, "say(\"v2\")\n", |_| {
            kafka_server::store::MessageRecord::text("assistant", "edited")
        })
        .await
        .unwrap();
    ws.send_json(&json!({"action": "revert_version", "version_id": first, "filename": "flow.based"}))
        .await;
    let reply = ws.recv_json().await;
    assert_eq!(reply["action"], "revert_complete");
    assert_eq!(reply["message"]["content"]["based_content"], FLOW);
    ws.close().await;

    let mut legacy = server.connect(&chat_id, false).await;
    let payload = legacy.recv_json().await;
    check_payload(&payload, "Test chat");
    let last = payload["conversation"].as_array().unwrap().last().unwrap().clone();
    let revert = kafka_tests::file_content(&last);
    assert_eq!(revert["based_filename"], "flow.based");
    assert_eq!(revert["based_content"], FLOW);
    assert_eq!(revert["revert_notice"], format!("Reverted from version {first}"));

    // A protocol-2 client of the same chat still gets objects.
    let mut v2 = server.connect(&chat_id, true).await;
    let payload = v2.recv_json().await;
    let last = payload["conversation"].as_array().unwrap().last().unwrap();
    assert_eq!(last["content"]["based_filename"], "flow.based");
    assert!(payload["conversation"][0]["content"].is_object());
}

#[tokio::test]
async fn uploads_without_user_id_take_the_owner_from_the_target() {
    let server = TestServer::start().await;
    let (alice, alice_workspace, alice_chat) = server.user_with_chat("alice@example.com").await;
    let (bob, _, _) = server.user_with_chat("bob@example.com").await;

    // To a chat, without user_id: the chat's owner owns the file.
    let response = upload(&server, &alice_chat, true, &[]).await;
    assert_eq!(response.status(), 200);
    let files = server.state.store.chat_files(&alice_chat).await.unwrap();
    assert_eq!(files.len(), 1);

    // A user_id that is given must still be the target's owner; nothing is written otherwise.
    let response = upload(&server, &alice_workspace, false, &[("user_id", &bob)]).await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["detail"], "Workspace not found.");
    let response = upload(&server, &alice_chat, true, &[("user_id", &bob)]).await;
    assert_eq!(response.status(), 404);
    assert_eq!(server.state.store.chat_files(&alice_chat).await.unwrap().len(), 1);
    let response = upload(&server, &alice_workspace, false, &[("user_id", &alice)]).await;
    assert_eq!(response.status(), 200);

    // An unknown target is still 404, a missing target_id still 422.
    let response = upload(&server, "no-such-workspace", false, &[]).await;
    assert_eq!(response.status(), 404);
    let form = Form::new()
        .text("is_chat", "false")
        .part("files", Part::bytes(b"x".to_vec()).file_name("x.md"));
    let response = server
        .http
        .post(server.url("/file/upload"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let leftovers = server.stored_uploads().await.len();
    assert_eq!(leftovers, 2, "only the two accepted uploads have stored bytes");
}

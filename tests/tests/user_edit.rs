//! Issue 22: the user's own version of a `.based` file (`save_version` and
//! `POST /file/{file_id}/versions`) over the real server, and the agent building on it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a panic is the failure report"
)]

use std::time::Duration;

use base64::Engine;
use kafka_server::store::{MessageRecord, StoreError};
use kafka_tests::fake_model::FakeModel;
use kafka_tests::{TestServer, WsClient};
use serde_json::{Value, json};

const VALID: &str = "say(\"Hi, I book tables.\", exact=True)\nloop:\n    booking = talk(\"Ask for the party size.\", True)\nuntil \"user gave party size\":\n    say(\"Booked.\", exact=True)\n";
/// The user's edit: asks for the time too.
const EDITED: &str = "say(\"Hi, I book tables.\", exact=True)\nloop:\n    booking = talk(\"Ask for the party size and the time.\", True)\nuntil \"user gave party size\":\n    say(\"Booked.\", exact=True)\n";
/// `while` is not Based: an error on line 2.
const INVALID: &str = "say(\"Hi\", exact=True)\nwhile True:\n    booking = talk(\"Ask for the party size.\", True)\n";

/// Receives frames until the reply to our own action (a non-event frame) arrives.
async fn recv_reply(ws: &mut WsClient) -> Value {
    loop {
        let value = ws.recv_json().await;
        if value.get("event").is_none() {
            return value;
        }
    }
}

async fn upload_based(ws: &mut WsClient, name: &str, content: &str) -> String {
    let data = base64::engine::general_purpose::STANDARD.encode(content);
    ws.send_json(&json!({"action": "upload_file", "filename": name, "file_data": data}))
        .await;
    let reply = recv_reply(ws).await;
    kafka_tests::file_content(&reply["message"])["file_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A user's chat with `booking.based` (version 1 = VALID), a v2 client, and its file ID.
async fn chat_with_file(server: &TestServer, email: &str) -> (String, WsClient, String) {
    let (_, _, chat_id) = server.user_with_chat(email).await;
    let mut ws = server.connect(&chat_id, true).await;
    ws.recv_initial().await;
    let file_id = upload_based(&mut ws, "booking.based", VALID).await;
    (chat_id, ws, file_id)
}

async fn latest_id(server: &TestServer, file_id: &str) -> String {
    server.state.store.latest_version(file_id).await.unwrap().id
}

#[tokio::test]
async fn a_valid_edit_is_saved_answered_and_published_as_the_users() {
    let server = TestServer::start().await;
    let (chat_id, mut ws, file_id) = chat_with_file(&server, "edit@example.com").await;
    let mut watcher = server.connect(&chat_id, true).await;
    watcher.recv_initial().await;
    let base = latest_id(&server, &file_id).await;

    ws.send_json(&json!({"action": "save_version", "file_id": file_id, "content": EDITED, "base_version_id": base}))
        .await;
    let reply = recv_reply(&mut ws).await;
    assert_eq!(reply["action"], "version_saved", "{reply}");
    assert_eq!(reply["file_id"], file_id.as_str());
    assert_eq!(reply["unchanged"], false);
    assert_eq!(reply["diagnostics"], json!([]));
    let version_id = reply["version_id"].as_str().unwrap().to_owned();
    assert_eq!(latest_id(&server, &file_id).await, version_id);
    assert_eq!(
        server.state.store.latest_version(&file_id).await.unwrap().content,
        EDITED
    );

    // Every live client sees the version and the user's entry.
    let event = watcher.recv_event("version_added").await;
    assert_eq!(
        (&event["file_id"], &event["version_id"], &event["content"]),
        (&json!(file_id), &json!(version_id), &json!(EDITED))
    );
    let added = watcher.recv_event("message_added").await;
    let message = &added["message"];
    assert_eq!((&message["role"], &message["type"]), (&json!("user"), &json!("file")));
    assert_eq!(message["content"]["based_filename"], "booking.based");
    assert_eq!(message["content"]["based_content"], EDITED);
    assert_eq!(message["content"]["edited_by_user"], true);
    let conversation = server.state.store.conversation(&chat_id).await.unwrap();
    assert_eq!(conversation.last().unwrap().role, "user");
    assert_eq!(conversation.last().unwrap().content["edited_by_user"], true);

    // A reconnecting client gets it in its payload.
    let mut later = server.connect(&chat_id, true).await;
    let payload = later.recv_initial().await;
    assert_eq!(payload.chat_files_based[0].latest_content, EDITED);
    assert_eq!(payload.chat_files_based[0].versions.len(), 2);
}

#[tokio::test]
async fn invalid_based_is_saved_with_its_diagnostics() {
    let server = TestServer::start().await;
    let (_, mut ws, file_id) = chat_with_file(&server, "invalid@example.com").await;
    ws.send_json(&json!({"action": "save_version", "file_id": file_id, "content": INVALID}))
        .await;
    let reply = recv_reply(&mut ws).await;
    assert_eq!(reply["action"], "version_saved", "{reply}");
    assert!(reply["version_id"].is_string(), "saved all the same: {reply}");
    let diagnostics = reply["diagnostics"].as_array().unwrap();
    let error = diagnostics
        .iter()
        .find(|d| d["severity"] == "error")
        .expect("an error diagnostic");
    assert_eq!(error["line"], 2, "{error}");
    for field in ["column", "end_line", "end_column", "code", "message"] {
        assert!(!error[field].is_null(), "{field} in {error}");
    }
    // The same shape /based/validate gives.
    let validated: Value = server
        .http
        .post(server.url("/based/validate"))
        .json(&json!({"code": INVALID}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(validated["diagnostics"], reply["diagnostics"]);
    assert_eq!(
        server.state.store.latest_version(&file_id).await.unwrap().content,
        INVALID
    );
}

#[tokio::test]
async fn a_stale_base_is_a_conflict_naming_the_latest_and_saves_nothing() {
    let server = TestServer::start().await;
    let (chat_id, mut ws, file_id) = chat_with_file(&server, "conflict@example.com").await;
    let base = latest_id(&server, &file_id).await;
    // Someone else's version lands first.
    ws.send_json(&json!({"action": "save_version", "file_id": file_id, "content": EDITED}))
        .await;
    let latest = recv_reply(&mut ws).await["version_id"].as_str().unwrap().to_owned();

    ws.send_json(&json!({"action": "save_version", "file_id": file_id, "content": INVALID, "base_version_id": base}))
        .await;
    let reply = recv_reply(&mut ws).await;
    let error = reply["error"].as_str().expect("an error frame");
    assert!(error.contains("Conflict") && error.contains(&latest), "{error}");
    assert_eq!(
        reply["conflict"],
        json!({"file_id": file_id, "base_version_id": base, "latest_version_id": latest})
    );
    assert_eq!(server.state.store.chat_versions(&chat_id).await.unwrap().len(), 2);
    assert_eq!(
        server.state.store.latest_version(&file_id).await.unwrap().content,
        EDITED
    );
    // Against the latest it goes through.
    ws.send_json(&json!({"action": "save_version", "file_id": file_id, "content": INVALID, "base_version_id": latest}))
        .await;
    assert_eq!(recv_reply(&mut ws).await["action"], "version_saved");
}

#[tokio::test]
async fn the_same_content_again_saves_nothing() {
    let server = TestServer::start().await;
    let (chat_id, mut ws, file_id) = chat_with_file(&server, "same@example.com").await;
    let mut watcher = server.connect(&chat_id, true).await;
    watcher.recv_initial().await;
    // On PostgreSQL the upload's events travel through NOTIFY and may still be on their way.
    while watcher.try_recv_text(Duration::from_millis(300)).await.is_some() {}
    let entries = server.state.store.conversation(&chat_id).await.unwrap().len();
    let base = latest_id(&server, &file_id).await;
    ws.send_json(&json!({"action": "save_version", "file_id": file_id, "content": VALID, "base_version_id": base}))
        .await;
    let reply = recv_reply(&mut ws).await;
    assert_eq!(
        reply,
        json!({"action": "version_saved", "file_id": file_id, "version_id": null, "unchanged": true, "diagnostics": []})
    );
    assert_eq!(server.state.store.chat_versions(&chat_id).await.unwrap().len(), 1);
    assert_eq!(server.state.store.conversation(&chat_id).await.unwrap().len(), entries);
    watcher.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn other_users_files_and_other_chats_files_are_not_found() {
    let server = TestServer::start().await;
    let (_, mut owner_ws, file_id) = chat_with_file(&server, "owner@example.com").await;
    // Another user's chat.
    let (_, _, intruder_chat) = server.user_with_chat("intruder@example.com").await;
    let mut intruder = server.connect(&intruder_chat, true).await;
    intruder.recv_initial().await;
    intruder
        .send_json(&json!({"action": "save_version", "file_id": file_id, "content": EDITED}))
        .await;
    assert_eq!(recv_reply(&mut intruder).await, json!({"error": "File not found."}));
    // Another chat of the same user.
    let owner = server.login("owner@example.com").await;
    let other_chat = server.new_chat(&owner.user_id, &owner.workspaces[0].id, "Other").await;
    let mut other = server.connect(&other_chat.chat_id, true).await;
    other.recv_initial().await;
    other
        .send_json(&json!({"action": "save_version", "file_id": file_id, "content": EDITED}))
        .await;
    assert_eq!(recv_reply(&mut other).await, json!({"error": "File not found."}));
    // A context file has no versions.
    let data = base64::engine::general_purpose::STANDARD.encode("notes");
    owner_ws
        .send_json(&json!({"action": "upload_file", "filename": "notes.txt", "file_data": data}))
        .await;
    let text_id = kafka_tests::file_content(&recv_reply(&mut owner_ws).await["message"])["file_id"]
        .as_str()
        .unwrap()
        .to_owned();
    owner_ws
        .send_json(&json!({"action": "save_version", "file_id": text_id, "content": "x"}))
        .await;
    let reply = recv_reply(&mut owner_ws).await;
    assert!(
        reply["error"].as_str().unwrap().contains("not a .based file"),
        "{reply}"
    );
    assert_eq!(
        server.state.store.latest_version(&file_id).await.unwrap().content,
        VALID
    );
}

#[tokio::test]
async fn oversized_content_is_refused() {
    let server = TestServer::start().await;
    let (_, mut ws, file_id) = chat_with_file(&server, "big@example.com").await;
    let big = "say(\"x\")\n".repeat(500_000);
    ws.send_json(&json!({"action": "save_version", "file_id": file_id, "content": big}))
        .await;
    let reply = recv_reply(&mut ws).await;
    assert!(reply["error"].as_str().unwrap().contains("too large"), "{reply}");
}

#[tokio::test]
async fn the_rest_twin_saves_refuses_conflicts_and_foreigners() {
    let server = TestServer::start().await;
    let owner = server.login("rest-owner@example.com").await;
    let chat = server.new_chat(&owner.user_id, &owner.workspaces[0].id, "REST").await;
    let mut ws = server.connect(&chat.chat_id, true).await;
    ws.recv_initial().await;
    let file_id = upload_based(&mut ws, "booking.based", VALID).await;
    let base = latest_id(&server, &file_id).await;
    let url = server.url(&format!("/file/{file_id}/versions"));
    let token = owner.token.clone().expect("a token");
    let post = |body: Value, token: &str| server.http.post(&url).bearer_auth(token).json(&body).send();

    let response = post(json!({"content": INVALID, "base_version_id": base}), &token)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let saved: Value = response.json().await.unwrap();
    assert_eq!(saved["unchanged"], false);
    assert!(
        saved["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["severity"] == "error")
    );
    let version_id = saved["version_id"].as_str().unwrap().to_owned();
    let event = ws.recv_event("version_added").await;
    assert_eq!(event["version_id"], version_id.as_str());
    let added = ws.recv_event("message_added").await;
    assert_eq!(added["message"]["content"]["edited_by_user"], true);

    // A stale base: 409 naming the latest, nothing saved.
    let response = post(json!({"content": EDITED, "base_version_id": base}), &token)
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
    let detail: Value = response.json().await.unwrap();
    assert!(detail["detail"].as_str().unwrap().contains(&version_id), "{detail}");
    // The same content: unchanged.
    let response = post(json!({"content": INVALID}), &token).await.unwrap();
    let same: Value = response.json().await.unwrap();
    assert_eq!((&same["unchanged"], &same["version_id"]), (&json!(true), &Value::Null));
    assert_eq!(server.state.store.chat_versions(&chat.chat_id).await.unwrap().len(), 2);

    // Another user's token: not found, as if missing.
    let intruder = server.login("rest-intruder@example.com").await;
    let response = post(json!({"content": EDITED}), intruder.token.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let detail: Value = response.json().await.unwrap();
    assert_eq!(detail, json!({"detail": "File not found."}));
    // Ill-typed body: 422.
    let response = post(json!({"contents": EDITED}), &token).await.unwrap();
    assert_eq!(response.status(), 422);
    assert_eq!(server.state.store.chat_versions(&chat.chat_id).await.unwrap().len(), 2);

    // Documented.
    let spec: Value = server
        .http
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(spec["paths"]["/file/{file_id}/versions"]["post"].is_object());
}

#[tokio::test]
async fn the_agents_next_diff_builds_on_the_users_version_and_sees_its_diagnostics() {
    let server = TestServer::start().await;
    let fake = FakeModel::start().await;
    let (user_id, _, chat_id) = server.user_with_chat("builds@example.com").await;
    server.add_model(&user_id, "fake-model", "sk-x", &fake.base_url()).await;
    let mut ws = server.connect(&chat_id, true).await;
    ws.recv_initial().await;
    let file_id = upload_based(&mut ws, "booking.based", VALID).await;
    // The user's edit leaves an error: `while` on line 2.
    let users =
        "say(\"Hi, I book tables.\", exact=True)\nwhile True:\n    booking = talk(\"Ask for the party size.\", True)\n";
    ws.send_json(&json!({"action": "save_version", "file_id": file_id, "content": users}))
        .await;
    assert_eq!(recv_reply(&mut ws).await["action"], "version_saved");

    // The model's diff is written against the user's version (its `while` line).
    fake.push_json(
        json!({"summary": "fix", "extraction_indices": [], "genNewFile": false, "files_list": [],
                          "plain_response": false, "tools": []}),
    );
    let patch = "--- booking.based\n+++ booking.based\n@@ -2,2 +2,3 @@\n-while True:\n+loop:\n     booking = talk(\"Ask for the party size.\", True)\n+until \"user gave party size\":\n+    say(\"Booked.\", exact=True)\n";
    fake.push_json(json!({"type": "diff", "filename": "booking.based", "text": patch}));
    ws.send_json(
        &json!({"action": "new_message", "model": "fake-model", "prompt": "Fix my loop",
                         "is_first_prompt": false, "is_chat_or_composer": true, "selected_filename": "booking.based"}),
    )
    .await;
    let reply = recv_reply(&mut ws).await;
    let expected = "say(\"Hi, I book tables.\", exact=True)\nloop:\n    booking = talk(\"Ask for the party size.\", True)\nuntil \"user gave party size\":\n    say(\"Booked.\", exact=True)\n";
    assert_eq!(reply["content"]["based_content"], expected, "{reply}");
    let versions = server.state.store.chat_versions(&chat_id).await.unwrap();
    let contents: Vec<&str> = versions.iter().map(|v| v.content.as_str()).collect();
    assert_eq!(contents, [VALID, users, expected]);

    // The diff call saw the user's version and the validator's findings on it.
    let requests = fake.requests();
    let diff_call = requests.iter().find(|r| r.task() == Some("diff")).unwrap();
    let context = diff_call.message(1);
    assert!(context.contains("while True:"), "{context}");
    assert!(context.contains("Validator diagnostics of booking.based"), "{context}");
    assert!(context.contains("- line 2, column 1: error["), "{context}");
    // Triage sees the user's edit in the conversation.
    let triage = requests[0].message(1);
    assert!(
        triage.contains("user (file)") && triage.contains("edited_by_user"),
        "{triage}"
    );
}

/// The base is checked again inside the save's own transaction: a version committed after the
/// first look (here, added straight through the store) makes the save a conflict, not a silent
/// overwrite.
#[tokio::test]
async fn a_version_committed_in_between_is_caught_inside_the_transaction() {
    let server = TestServer::start().await;
    let (chat_id, _ws, file_id) = chat_with_file(&server, "race@example.com").await;
    let base = latest_id(&server, &file_id).await;
    let store = &server.state.store;
    let (newer, _) = store
        .add_version(&chat_id, &file_id, EDITED, |_| {
            MessageRecord::text("assistant", "agent edit")
        })
        .await
        .unwrap();
    let stale = store
        .add_version_after(&chat_id, &file_id, Some(&base), "say(\"mine\")\n", |_| {
            MessageRecord::text("user", "my edit")
        })
        .await;
    match stale {
        Err(StoreError::Stale(latest)) => assert_eq!(latest, newer.id),
        other => panic!("expected a stale base, got {other:?}"),
    }
    assert_eq!(
        store.chat_versions(&chat_id).await.unwrap().len(),
        2,
        "nothing was written"
    );
    // Based on the newest version, it goes through.
    store
        .add_version_after(&chat_id, &file_id, Some(&newer.id), "say(\"mine\")\n", |_| {
            MessageRecord::text("user", "my edit")
        })
        .await
        .unwrap();
    assert_eq!(store.chat_versions(&chat_id).await.unwrap().len(), 3);
}

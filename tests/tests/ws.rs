//! The brief's WebSocket protocol against the real server, with tokio-tungstenite clients.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a panic is the failure report"
)]

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kafka_tests::golden::assert_golden;
use kafka_tests::{FRAME_WAIT, TestServer, WsClient};
use serde_json::{Value, json};

const FLOW_V1: &str = "loop:\n    r = talk(\"Ask the name.\", True)\nuntil \"name given\":\n    say(\"Thanks\")\n";
const FLOW_V2: &str =
    "loop:\n    r = talk(\"Ask the name and age.\", True)\nuntil \"name given\":\n    say(\"Thanks\")\n";

fn upload(filename: &str, bytes: &[u8]) -> Value {
    json!({"action": "upload_file", "filename": filename, "file_data": STANDARD.encode(bytes)})
}

/// Connects a legacy client and skips the initial payload.
async fn legacy(server: &TestServer, chat_id: &str) -> WsClient {
    let mut ws = server.connect(chat_id, false).await;
    ws.recv_initial().await;
    ws
}

/// Uploads a `.based` file and gives it a second version by reverting to... itself after an
/// edit: returns `(file_id, [v1, v2])` with v2's content FLOW_V2.
async fn based_file_with_two_versions(server: &TestServer, ws: &mut WsClient, chat_id: &str) -> (String, Vec<String>) {
    ws.send_json(&upload("flow.based", FLOW_V1.as_bytes())).await;
    let reply = ws.recv_json().await;
    let file_id = kafka_tests::file_content(&reply["message"])["file_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A second version, as the agent would add it.
    server
        .state
        .store
        .add_version(chat_id, &file_id, FLOW_V2, |_| {
            kafka_server::store::MessageRecord::text("assistant", "edited")
        })
        .await
        .unwrap();
    let versions = server.state.store.chat_versions(chat_id).await.unwrap();
    (file_id, versions.into_iter().map(|v| v.id).collect())
}

#[tokio::test]
async fn unknown_chat_gets_an_error_and_is_closed() {
    let server = TestServer::start().await;
    let mut ws = server.connect("no-such-chat", false).await;
    assert_eq!(ws.recv_json().await, json!({"error": "Chat not found."}));
    assert!(ws.closed_within(FRAME_WAIT).await);
}

#[tokio::test]
async fn initial_payload_matches_the_golden_file() {
    let server = TestServer::start().await;
    let (user_id, workspace_id, chat_id) = server.user_with_chat("golden@example.com").await;
    server
        .add_model(&user_id, "model_a", "key-a", "http://127.0.0.1:9/v1")
        .await;
    server
        .add_model(&user_id, "model_b", "key-b", "http://127.0.0.1:9/v1")
        .await;
    let form = reqwest::multipart::Form::new()
        .text("user_id", user_id.clone())
        .text("target_id", workspace_id.clone())
        .text("is_chat", "false")
        .part(
            "files",
            reqwest::multipart::Part::bytes(b"ws only".to_vec()).file_name("some_workspace_file.txt"),
        );
    assert_eq!(
        server
            .http
            .post(server.url("/file/upload"))
            .multipart(form)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let mut ws = legacy(&server, &chat_id).await;
    ws.send_text("Hello, are you there?").await;
    assert_eq!(ws.recv_text().await, "Echo: Hello, are you there?");
    ws.send_json(&upload("example.txt", b"Content extracted from file"))
        .await;
    ws.recv_json().await;
    ws.send_json(&upload("photo.png", b"\x89PNG....")).await;
    ws.recv_json().await;
    let (_, versions) = based_file_with_two_versions(&server, &mut ws, &chat_id).await;
    ws.send_json(&json!({"action": "revert_version", "version_id": versions[0], "filename": "flow.based"}))
        .await;
    ws.recv_json().await;
    ws.close().await;

    let mut ws = server.connect(&chat_id, false).await;
    let payload: Value = serde_json::from_str(&ws.recv_text().await).unwrap();
    let keys: Vec<&str> = payload.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "chat_files_based",
            "chat_files_text",
            "chat_id",
            "chat_name",
            "conversation",
            "initial",
            "models",
            "workspace_files",
            "workspace_id"
        ]
    );
    let based = &payload["chat_files_based"][0];
    assert_eq!(based["versions"].as_array().unwrap().len(), 3);
    assert_eq!(based["versions"][2]["diff"], "", "the newest version has no diff");
    assert_eq!(based["versions"][0]["diff"], "", "v1 equals the reverted newest");
    assert!(
        based["versions"][1]["diff"]
            .as_str()
            .unwrap()
            .contains("-    r = talk(\"Ask the name and age.\", True)")
    );
    assert_golden(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/initial_payload.json"),
        &payload,
    );
}

#[tokio::test]
async fn plain_text_broken_json_and_json_without_action_are_echoed_and_saved() {
    let server = TestServer::start().await;
    let (_, _, chat_id) = server.user_with_chat("echo@example.com").await;
    let mut ws = legacy(&server, &chat_id).await;
    for text in [
        "Hello, are you there?",
        "{\"broken\": ",
        "{\"prompt\": \"no action\"}",
        "ünïcødé ✓",
    ] {
        ws.send_text(text).await;
        assert_eq!(ws.recv_text().await, format!("Echo: {text}"));
    }
    let conversation = server.state.store.conversation(&chat_id).await.unwrap();
    assert_eq!(conversation.len(), 8);
    assert_eq!(
        (conversation[0].role.as_str(), conversation[0].content.as_str()),
        ("user", Some("Hello, are you there?"))
    );
    assert_eq!(
        (conversation[1].role.as_str(), conversation[1].content.as_str()),
        ("assistant", Some("Echo: Hello, are you there?"))
    );
    assert_eq!(
        conversation.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (1..=8).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn upload_file_saves_and_replies_as_the_original() {
    let server = TestServer::start().await;
    let (_, workspace_id, chat_id) = server.user_with_chat("up@example.com").await;
    let mut ws = legacy(&server, &chat_id).await;
    ws.send_json(&upload("../example.txt", b"hello file")).await;
    let reply = ws.recv_json().await;
    let file_id = kafka_tests::file_content(&reply["message"])["file_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        reply,
        json!({"action": "file_uploaded", "message": {"role": "user", "type": "file", "content": json!({
            "file_id": file_id, "filename": "example.txt", "path": format!("uploads/files/{file_id}_example.txt")}).to_string()}})
    );
    assert_eq!(server.read_upload(&file_id).await.unwrap(), b"hello file");
    let stored = server.stored_uploads().await;
    assert_eq!(stored, [format!("{file_id}_example.txt")]);
    let files = server.state.store.chat_files(&chat_id).await.unwrap();
    assert_eq!(files[0].extracted_text.as_deref(), Some("hello file"));
    assert_eq!(
        server.state.store.workspace_files(&workspace_id).await.unwrap().len(),
        1
    );
    let conversation = server.state.store.conversation(&chat_id).await.unwrap();
    assert_eq!(conversation[0].kind, "file");
    assert_eq!(conversation[0].content["file_id"], file_id.as_str());
}

#[tokio::test]
async fn bad_frames_get_clear_errors_and_change_nothing() {
    let server = TestServer::start_with(|s| s.max_upload_bytes = 200).await;
    let (_, _, chat_id) = server.user_with_chat("bad@example.com").await;
    let (_, _, other_chat) = server.user_with_chat("other@example.com").await;
    let mut other = legacy(&server, &other_chat).await;
    let (other_file, other_versions) = based_file_with_two_versions(&server, &mut other, &other_chat).await;

    let mut ws = legacy(&server, &chat_id).await;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"action": "some_unhandled_action"}),
            "Unknown action: some_unhandled_action",
        ),
        (json!({"action": 7}), "must be a string"),
        (
            json!({"action": "upload_file", "filename": "a.txt", "file_data": "***"}),
            "not valid base64",
        ),
        (
            json!({"action": "upload_file", "file_data": "aGk="}),
            "missing field `filename`",
        ),
        (
            json!({"action": "upload_file", "filename": "a.txt"}),
            "missing field `file_data`",
        ),
        (
            json!({"action": "upload_file", "filename": "a.txt", "file_data": 5}),
            "invalid type",
        ),
        (upload("big.txt", &[b'a'; 300]), "upload limit"),
        (upload("..", b"x"), "Invalid file name"),
        (
            json!({"action": "revert_version", "filename": "flow.based"}),
            "missing field `version_id`",
        ),
        (
            json!({"action": "revert_version", "version_id": "nope", "filename": "flow.based"}),
            "Version not found.",
        ),
        (
            json!({"action": "revert_version", "version_id": other_versions[0], "filename": "flow.based"}),
            "Version not found.",
        ),
        (json!({"action": "delete_file"}), "missing field `file_id`"),
        (json!({"action": "delete_file", "file_id": "nope"}), "File not found."),
        (
            json!({"action": "delete_file", "file_id": other_file}),
            "File not found.",
        ),
        (
            json!({"action": "new_message", "model": "none", "prompt": "hi"}),
            "Model \"none\" not found",
        ),
        (
            json!({"action": "new_message", "model": "none", "prompt": "  "}),
            "The prompt is empty.",
        ),
        (
            json!({"action": "new_message", "prompt": "hi"}),
            "missing field `model`",
        ),
        (json!({"action": "cancel"}), "No agent task is running"),
        (
            json!({"action": "hello", "version": 9}),
            "Unsupported protocol version 9",
        ),
    ];
    for (frame, expected) in cases {
        ws.send_json(&frame).await;
        let reply = ws.recv_json().await;
        let error = reply["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{frame}: expected an error, got {reply}"));
        assert!(error.contains(expected), "{frame}: {error}");
    }
    assert!(server.state.store.conversation(&chat_id).await.unwrap().is_empty());
    assert!(server.state.store.chat_files(&chat_id).await.unwrap().is_empty());
    assert_eq!(server.state.store.chat_versions(&other_chat).await.unwrap().len(), 2);
    assert_eq!(server.state.store.chat_files(&other_chat).await.unwrap().len(), 1);
}

#[tokio::test]
async fn revert_version_adds_a_version_with_the_old_content() {
    let server = TestServer::start().await;
    let (_, _, chat_id) = server.user_with_chat("rv@example.com").await;
    let mut ws = legacy(&server, &chat_id).await;
    let (file_id, versions) = based_file_with_two_versions(&server, &mut ws, &chat_id).await;

    ws.send_json(&json!({"action": "revert_version", "version_id": versions[0], "filename": "flow.based"}))
        .await;
    let reply = ws.recv_json().await;
    let all = server.state.store.chat_versions(&chat_id).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[2].content, FLOW_V1);
    assert_eq!(all[2].seq, 3);
    assert_eq!(
        reply,
        json!({"action": "revert_complete", "message": {"role": "assistant", "type": "file", "content": {
            "based_filename": "flow.based", "based_content": FLOW_V1,
            "message": format!("Reverted to version {}; new version is {}", versions[0], all[2].id)}}})
    );
    assert_eq!(
        server.state.store.latest_version(&file_id).await.unwrap().content,
        FLOW_V1
    );

    ws.send_json(&json!({"action": "revert_version", "version_id": versions[0], "filename": "other.based"}))
        .await;
    assert!(
        ws.recv_json().await["error"]
            .as_str()
            .unwrap()
            .contains("belongs to flow.based")
    );
    assert_eq!(server.state.store.chat_versions(&chat_id).await.unwrap().len(), 3);
}

#[tokio::test]
async fn delete_file_removes_rows_and_bytes() {
    let server = TestServer::start().await;
    let (_, workspace_id, chat_id) = server.user_with_chat("del@example.com").await;
    let mut ws = legacy(&server, &chat_id).await;
    ws.send_json(&upload("the-original-filename.ext", b"bytes")).await;
    let file_id = kafka_tests::file_content(&ws.recv_json().await["message"])["file_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = format!("{file_id}_the-original-filename.ext");
    assert_eq!(server.stored_uploads().await, [key]);

    ws.send_json(&json!({"action": "delete_file", "file_id": file_id}))
        .await;
    assert_eq!(
        ws.recv_json().await,
        json!({"action": "file_deleted", "message": {"role": "system", "type": "file",
            "content": "the-original-filename.ext was deleted.", "deleted_file_id": file_id}})
    );
    assert!(server.stored_uploads().await.is_empty());
    assert_eq!(server.read_upload(&file_id).await, None);
    assert!(server.state.store.chat_files(&chat_id).await.unwrap().is_empty());
    assert!(
        server
            .state
            .store
            .workspace_files(&workspace_id)
            .await
            .unwrap()
            .is_empty()
    );
    let conversation = server.state.store.conversation(&chat_id).await.unwrap();
    assert_eq!(conversation.last().unwrap().role, "system");
}

#[tokio::test]
async fn v2_clients_see_each_other_live_and_legacy_clients_see_nothing_unsolicited() {
    let server = TestServer::start().await;
    let (_, _, chat_id) = server.user_with_chat("live@example.com").await;
    let mut alice = server.connect(&chat_id, true).await;
    alice.recv_initial().await;
    let mut bob = server.connect(&chat_id, false).await;
    bob.recv_initial().await;
    bob.send_json(&json!({"action": "hello", "version": 2})).await;
    let mut legacy_client = legacy(&server, &chat_id).await;

    alice.send_text("hi from alice").await;
    assert_eq!(alice.recv_text().await, "Echo: hi from alice");
    let event = bob.recv_event("message_added").await;
    assert_eq!(
        event["message"],
        json!({"role": "user", "type": "text", "content": "hi from alice"})
    );
    assert_eq!(event["seq"], 1);
    let event = bob.recv_event("message_added").await;
    assert_eq!(event["message"]["content"], "Echo: hi from alice");

    bob.send_json(&upload("notes.txt", b"shared notes")).await;
    assert_eq!(bob.recv_json().await["action"], "file_uploaded");
    let event = alice.recv_event("text_file_added").await;
    assert_eq!(event["file"]["name"], "notes.txt");
    assert_eq!(event["file"]["content"], "shared notes");

    let form = reqwest::multipart::Form::new()
        .text("chat_id", chat_id.clone())
        .text("new_name", "Renamed");
    server
        .http
        .patch(server.url("/chat/rename"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(alice.recv_event("chat_renamed").await["name"], "Renamed");

    legacy_client.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn oversized_frames_get_an_error_frame() {
    let server = TestServer::start_with(|s| s.max_frame_bytes = 1024).await;
    let (_, _, chat_id) = server.user_with_chat("frame@example.com").await;
    let mut ws = legacy(&server, &chat_id).await;
    ws.send_text(&"x".repeat(1500)).await;
    let error = ws.recv_json().await["error"].as_str().unwrap().to_owned();
    assert!(error.contains("too large"), "{error}");
    ws.send_text("still there?").await;
    assert_eq!(ws.recv_text().await, "Echo: still there?");

    // Beyond the hard limit (2× the cap) but within the server's 4 KiB read buffer: a frame
    // far larger is refused unread, and closing a socket with unread bytes makes the kernel
    // send a reset, which can reach the client before the error frame.
    ws.send_text(&"x".repeat(3_000)).await;
    let error = ws.recv_json().await["error"].as_str().unwrap().to_owned();
    assert!(error.contains("limit"), "{error}");
    assert!(ws.closed_within(FRAME_WAIT).await);
    assert_eq!(server.state.store.conversation(&chat_id).await.unwrap().len(), 2);
}

#[tokio::test]
async fn five_hundred_concurrent_sessions_echo() {
    let server = TestServer::start().await;
    let (_, _, chat_id) = server.user_with_chat("many@example.com").await;
    let mut clients = Vec::new();
    for _ in 0..500 {
        clients.push(legacy(&server, &chat_id).await);
    }
    let tasks = clients.into_iter().enumerate().map(|(i, mut ws)| {
        tokio::spawn(async move {
            ws.send_text(&format!("message {i}")).await;
            assert_eq!(ws.recv_text().await, format!("Echo: message {i}"));
            ws
        })
    });
    let clients: Vec<WsClient> = futures_util::future::join_all(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(server.state.hub.session_count(), 500);
    let conversation = server.state.store.conversation(&chat_id).await.unwrap();
    assert_eq!(conversation.len(), 1000);
    assert_eq!(conversation.last().unwrap().seq, 1000);
    drop(clients);
}

#[tokio::test]
async fn get_diff_between_any_two_versions() {
    let server = TestServer::start().await;
    let (_, _, chat_id) = server.user_with_chat("diff@example.com").await;
    let mut ws = legacy(&server, &chat_id).await;
    let (file_id, versions) = based_file_with_two_versions(&server, &mut ws, &chat_id).await;

    ws.send_json(&json!({"action": "get_diff", "file_id": file_id, "from_version_id": versions[0]}))
        .await;
    let reply = ws.recv_json().await;
    assert_eq!(reply["action"], "diff");
    assert_eq!(reply["to_version_id"], versions[1].as_str());
    let diff = reply["diff"].as_str().unwrap();
    assert!(
        diff.starts_with("--- flow.based\n+++ flow.based\n@@ -1,4 +1,4 @@\n"),
        "{diff}"
    );
    assert!(
        diff.contains("+    r = talk(\"Ask the name and age.\", True)\n"),
        "{diff}"
    );

    ws.send_json(&json!({"action": "get_diff", "file_id": file_id, "from_version_id": versions[1], "to_version_id": versions[1]})).await;
    assert_eq!(ws.recv_json().await["diff"], "");

    for (frame, expected) in [
        (
            json!({"action": "get_diff", "file_id": file_id, "from_version_id": "nope"}),
            "Version not found.",
        ),
        (
            json!({"action": "get_diff", "file_id": "other", "from_version_id": versions[0]}),
            "is not a version of file",
        ),
        (
            json!({"action": "get_diff", "file_id": file_id}),
            "missing field `from_version_id`",
        ),
    ] {
        ws.send_json(&frame).await;
        let error = ws.recv_json().await["error"].as_str().unwrap().to_owned();
        assert!(error.contains(expected), "{frame}: {error}");
    }
}

#[tokio::test]
async fn lean_payload_lists_versions_without_diffs_and_pages_the_conversation() {
    let server = TestServer::start().await;
    let (_, _, chat_id) = server.user_with_chat("lean@example.com").await;
    let mut ws = legacy(&server, &chat_id).await;
    for n in 0..60 {
        ws.send_text(&format!("message {n}")).await;
        ws.recv_text().await;
    }
    let (file_id, versions) = based_file_with_two_versions(&server, &mut ws, &chat_id).await;
    ws.close().await;

    let mut lean = WsClient::connect(&format!("{}?v=2&lean=1", server.ws_url(&chat_id))).await;
    let payload = lean.recv_json().await;
    assert_eq!(payload["initial"], true);
    assert_eq!(payload["lean"], true);
    assert_eq!(payload["conversation_has_more"], true);
    let conversation = payload["conversation"].as_array().unwrap();
    assert_eq!(conversation.len(), 20, "the newest page only");
    // 120 echo entries, the upload's entry and the edit's: the newest is number 122.
    assert_eq!(conversation.last().unwrap()["seq"], 122);
    assert_eq!(conversation.last().unwrap()["content"], "edited");
    let based = &payload["chat_files_based"][0];
    assert_eq!(based["latest_content"], FLOW_V2);
    let listed: Vec<&str> = based["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            assert!(v.get("diff").is_none(), "no diffs in a lean payload");
            v["version_id"].as_str().unwrap()
        })
        .collect();
    assert_eq!(listed, versions);

    // Older entries page by page, oldest first, until none are left.
    let first_shown = conversation[0]["seq"].as_i64().unwrap();
    lean.send_json(&json!({"action": "get_messages", "before_seq": first_shown, "limit": 60}))
        .await;
    let page = lean.recv_json().await;
    assert_eq!(page["action"], "messages");
    assert_eq!(page["has_more"], true);
    let messages = page["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 60);
    assert_eq!(messages.last().unwrap()["seq"], first_shown - 1);
    lean.send_json(&json!({"action": "get_messages", "before_seq": messages[0]["seq"]}))
        .await;
    let last_page = lean.recv_json().await;
    assert_eq!(last_page["has_more"], false);
    assert_eq!(last_page["messages"][0]["seq"], 1);
    assert_eq!(last_page["messages"][0]["content"], "message 0");

    // Diffs on demand.
    lean.send_json(&json!({"action": "get_diff", "file_id": file_id, "from_version_id": versions[0]}))
        .await;
    let diff = lean.recv_json().await;
    assert!(diff["diff"].as_str().unwrap().starts_with("--- flow.based"));
}

#[tokio::test]
async fn legacy_payload_diffs_follow_a_new_version_after_being_cached() {
    let server = TestServer::start().await;
    let (_, _, chat_id) = server.user_with_chat("cache@example.com").await;
    let mut ws = legacy(&server, &chat_id).await;
    let (_, versions) = based_file_with_two_versions(&server, &mut ws, &chat_id).await;
    ws.close().await;
    let diffs = |payload: &Value| -> Vec<String> {
        payload["chat_files_based"][0]["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["diff"].as_str().unwrap().to_owned())
            .collect()
    };

    let mut ws = server.connect(&chat_id, false).await;
    let first = ws.recv_json().await;
    let before = diffs(&first);
    assert!(!before[0].is_empty() && before[1].is_empty());
    ws.send_json(&json!({"action": "revert_version", "version_id": versions[0], "filename": "flow.based"}))
        .await;
    ws.recv_json().await;
    ws.close().await;

    // The newest version is now v1's content again: v1's diff is empty, v2's is not.
    let mut ws = server.connect(&chat_id, false).await;
    let second = ws.recv_json().await;
    let after = diffs(&second);
    assert_eq!(after.len(), 3);
    // The conversation (also kept between connects) gained the revert's entry, at the end.
    let entries = |payload: &Value| payload["conversation"].as_array().unwrap().clone();
    assert_eq!(entries(&second).len(), entries(&first).len() + 1);
    assert_eq!(entries(&second)[..entries(&first).len()], entries(&first)[..]);
    assert_eq!(
        kafka_tests::file_content(entries(&second).last().unwrap())["based_filename"],
        "flow.based"
    );
    assert!(after[0].is_empty() && !after[1].is_empty() && after[2].is_empty());
}

#[tokio::test]
async fn messages_larger_than_a_frame_arrive_whole_as_one_message() {
    let server = TestServer::start().await;
    let (_, _, chat_id) = server.user_with_chat("big@example.com").await;
    let mut ws = legacy(&server, &chat_id).await;
    // Characters of 1 to 4 bytes throughout, so that cuts between frames fall next to them.
    let texts: Vec<String> = (0..3).map(|i| format!("{i}:{}", "aé€𝄞".repeat(30_000))).collect();
    for text in &texts {
        ws.send_text(text).await;
        assert_eq!(ws.recv_text().await, format!("Echo: {text}"));
    }
    ws.close().await;

    // The payload (about 1.8 MB: several frames) twice; the second from the conversation cache.
    let mut payloads = Vec::new();
    for _ in 0..2 {
        let mut ws = server.connect(&chat_id, false).await;
        payloads.push(ws.recv_text().await);
        ws.close().await;
    }
    assert_eq!(payloads[0], payloads[1]);
    let payload: Value = serde_json::from_str(&payloads[0]).unwrap();
    let contents: Vec<&str> = payload["conversation"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|entry| entry["content"].as_str())
        .collect();
    let expected: Vec<String> = texts.iter().flat_map(|t| [t.clone(), format!("Echo: {t}")]).collect();
    assert_eq!(contents, expected);
}

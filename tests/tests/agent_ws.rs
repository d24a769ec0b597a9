//! `new_message` end to end: the real server, a WebSocket client, and a fake
//! OpenAI-compatible model served over HTTP.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a panic is the failure report"
)]

use std::time::{Duration, Instant};

use base64::Engine;
use kafka_tests::fake_model::FakeModel;
use kafka_tests::{TestServer, WsClient};
use serde_json::{Value, json};

const VALID: &str = "say(\"Hi, I book tables.\", exact=True)\nloop:\n    booking = talk(\"Ask for the party size.\", True)\nuntil \"user gave party size\":\n    say(\"Booked.\", exact=True)\n";
const WITH_WHILE: &str = "while True:\n    booking = talk(\"Ask for the party size.\", True)\n";
const SECRET: &str = "sk-test-secret-9f8e7d";

/// A chat with a model pointing at `fake`, and a connected v2 client.
async fn setup(server: &TestServer, fake: &FakeModel) -> (String, WsClient) {
    let (user_id, _, chat_id) = server.user_with_chat("agent@example.com").await;
    server.add_model(&user_id, "fake-model", SECRET, &fake.base_url()).await;
    let mut ws = server.connect(&chat_id, true).await;
    let payload = ws.recv_initial().await;
    assert_eq!(payload.models, ["fake-model"]);
    (chat_id, ws)
}

fn new_message(prompt: &str, first: bool, composer: bool, selected: Option<&str>) -> Value {
    json!({"action": "new_message", "model": "fake-model", "prompt": prompt,
           "is_first_prompt": first, "is_chat_or_composer": composer, "selected_filename": selected})
}

/// Receives frames until the brief's reply (a non-event frame) arrives.
async fn recv_reply(ws: &mut WsClient) -> String {
    loop {
        let text = ws.recv_text().await;
        let is_event = serde_json::from_str::<Value>(&text).is_ok_and(|v| v.get("event").is_some());
        if !is_event {
            return text;
        }
    }
}

async fn upload_based(ws: &mut WsClient, name: &str, content: &str) -> String {
    let data = base64::engine::general_purpose::STANDARD.encode(content);
    ws.send_json(&json!({"action": "upload_file", "filename": name, "file_data": data}))
        .await;
    let reply: Value = serde_json::from_str(&recv_reply(ws).await).unwrap();
    kafka_tests::file_content(&reply["message"])["file_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_first_prompt_writes_a_new_file() {
    let server = TestServer::start().await;
    let fake = FakeModel::start().await;
    let (chat_id, mut ws) = setup(&server, &fake).await;
    fake.push_json(json!({"type": "based", "filename": "booking.based", "text": VALID}));

    ws.send_json(&new_message("Write a booking agent", true, true, None))
        .await;
    let progress = ws.recv_event("agent_progress").await;
    assert_eq!(progress["stage"], "generating");
    let mut reply: Value = serde_json::from_str(&recv_reply(&mut ws).await).unwrap();
    let file_id = reply["id"].as_str().unwrap().to_owned();
    // The original's `block`: the conversation entry, its content as JSON text.
    let block = reply.as_object_mut().unwrap().remove("block").unwrap();
    assert_eq!((&block["role"], &block["type"]), (&json!("assistant"), &json!("file")));
    assert_eq!(
        kafka_tests::file_content(&block),
        json!({"based_filename": "booking.based", "based_content": VALID})
    );
    assert_eq!(
        reply,
        json!({"action": "agent_response", "type": "file", "id": file_id,
               "content": {"based_filename": "booking.based", "based_content": VALID},
               "message": {"role": "assistant", "type": "file", "content": {"based_filename": "booking.based", "based_content": VALID}}})
    );

    let requests = fake.requests();
    assert_eq!(requests.len(), 1, "the first prompt needs one model call");
    assert_eq!(requests[0].task(), Some("generate"));
    assert_eq!(
        requests[0].header("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
    assert_eq!(requests[0].body["model"], "fake-model");

    let files = server.state.store.chat_files(&chat_id).await.unwrap();
    assert_eq!(files[0].filename, "booking.based");
    assert_eq!(
        server.state.store.latest_version(&file_id).await.unwrap().content,
        VALID
    );
    let conversation = server.state.store.conversation(&chat_id).await.unwrap();
    assert_eq!(conversation.len(), 2);
    assert_eq!(conversation[0].content, "Write a booking agent");
    assert_eq!(conversation[1].content["based_filename"], "booking.based");

    // The same name again gets a numbered suffix.
    fake.push_json(json!({"type": "based", "filename": "booking.based", "text": VALID}));
    ws.send_json(&new_message("Another one", true, true, None)).await;
    let reply: Value = serde_json::from_str(&recv_reply(&mut ws).await).unwrap();
    assert_eq!(reply["content"]["based_filename"], "booking-2.based");
}

#[tokio::test]
async fn invalid_code_is_fixed_with_the_diagnostics() {
    let server = TestServer::start().await;
    let fake = FakeModel::start().await;
    let (chat_id, mut ws) = setup(&server, &fake).await;
    fake.push_json(json!({"type": "based", "filename": "a.based", "text": WITH_WHILE}));
    fake.push_json(json!({"type": "based", "filename": "a.based", "text": VALID}));

    ws.send_json(&new_message("Write it", true, true, None)).await;
    let reply: Value = serde_json::from_str(&recv_reply(&mut ws).await).unwrap();
    assert_eq!(reply["content"]["based_content"], VALID);
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    let feedback = requests[1].message(-1);
    assert!(feedback.contains("line 1, column 1"), "{feedback}");
    assert!(feedback.contains("while"), "{feedback}");
    assert_eq!(server.state.store.chat_versions(&chat_id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_model_diff_with_wrong_line_numbers_is_applied_by_context() {
    let server = TestServer::start().await;
    let fake = FakeModel::start().await;
    let (chat_id, mut ws) = setup(&server, &fake).await;
    let file_id = upload_based(&mut ws, "booking.based", VALID).await;
    fake.push_json(
        json!({"summary": "edit", "extraction_indices": [], "genNewFile": false, "files_list": [],
                          "plain_response": false, "tools": []}),
    );
    let patch = "--- booking.based\n+++ booking.based\n@@ -40,3 +40,3 @@\n loop:\n-    booking = talk(\"Ask for the party size.\", True)\n+    booking = talk(\"Ask for the party size and time.\", True)\n until \"user gave party size\":\n";
    fake.push_json(json!({"type": "diff", "filename": "booking.based", "text": patch}));

    ws.send_json(&new_message(
        "Also ask for the time",
        false,
        true,
        Some("booking.based"),
    ))
    .await;
    let reply: Value = serde_json::from_str(&recv_reply(&mut ws).await).unwrap();
    let expected = VALID.replace("party size.\", True", "party size and time.\", True");
    assert_eq!(reply["id"], file_id.as_str());
    assert_eq!(reply["content"]["based_content"], expected.as_str());
    let tasks: Vec<_> = fake
        .requests()
        .iter()
        .map(|r| r.task().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(tasks, ["triage", "diff"]);
    let versions = server.state.store.chat_versions(&chat_id).await.unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[1].content, expected);
}

#[tokio::test]
async fn a_diff_that_never_applies_ends_in_an_error_and_no_new_version() {
    let server = TestServer::start().await;
    let fake = FakeModel::start().await;
    let (chat_id, mut ws) = setup(&server, &fake).await;
    upload_based(&mut ws, "booking.based", VALID).await;
    fake.push_json(
        json!({"summary": "edit", "extraction_indices": [], "genNewFile": false, "files_list": [],
                          "plain_response": false, "tools": []}),
    );
    let bad = "@@ -1,1 +1,1 @@\n-this line is not in the file\n+neither is this\n";
    for _ in 0..5 {
        fake.push_json(json!({"type": "diff", "filename": "booking.based", "text": bad}));
    }
    ws.send_json(&new_message("Change it", false, true, Some("booking.based")))
        .await;
    let reply: Value = serde_json::from_str(&recv_reply(&mut ws).await).unwrap();
    let error = reply["error"].as_str().unwrap();
    assert!(error.contains("5 attempts"), "{error}");
    assert_eq!(fake.requests().len(), 6);
    assert_eq!(server.state.store.chat_versions(&chat_id).await.unwrap().len(), 1);
    let conversation = server.state.store.conversation(&chat_id).await.unwrap();
    assert_eq!(conversation[1].content, "Change it", "the prompt is kept");
    assert_eq!(conversation[2].role, "system");
}

#[tokio::test]
async fn a_plain_answer_is_a_text_frame_and_the_key_is_never_shown() {
    let server = TestServer::start().await;
    let fake = FakeModel::start().await;
    let (chat_id, mut ws) = setup(&server, &fake).await;
    fake.push_json(json!({"text": "Based is a language for conversational agents."}));
    ws.send_json(&new_message("What is Based?", false, false, None)).await;
    assert_eq!(
        recv_reply(&mut ws).await,
        "Based is a language for conversational agents."
    );
    let conversation = server.state.store.conversation(&chat_id).await.unwrap();
    assert_eq!(
        conversation[1].content,
        "Based is a language for conversational agents."
    );

    // A rejected key is reported clearly, without the key.
    fake.push_status(401, &format!("{{\"error\": \"bad key {SECRET}\"}}"));
    ws.send_json(&new_message("Again?", false, false, None)).await;
    let reply = recv_reply(&mut ws).await;
    assert!(reply.contains("401"), "{reply}");
    assert!(!reply.contains(SECRET), "{reply}");
    assert_eq!(fake.requests().len(), 2, "a 401 is not retried");
}

#[tokio::test]
async fn a_slow_model_blocks_nothing_and_can_be_cancelled() {
    let server = TestServer::start().await;
    let fake = FakeModel::start().await;
    let (chat_id, mut ws) = setup(&server, &fake).await;
    fake.push_hang();
    ws.send_json(&new_message("Take your time", true, true, None)).await;
    ws.recv_event("agent_progress").await;

    // The same chat refuses a second run, and still echoes.
    ws.send_json(&new_message("And this", true, true, None)).await;
    assert!(recv_reply(&mut ws).await.contains("already working"));
    let started = Instant::now();
    ws.send_text("ping").await;
    assert_eq!(recv_reply(&mut ws).await, "Echo: ping");
    // Another chat answers at once.
    let (_, _, other_chat) = server.user_with_chat("other@example.com").await;
    let mut other = server.connect(&other_chat, false).await;
    other.recv_initial().await;
    other.send_text("hello").await;
    assert_eq!(other.recv_text().await, "Echo: hello");
    assert!(started.elapsed() < Duration::from_secs(5));

    ws.send_json(&json!({"action": "cancel"})).await;
    let reply = recv_reply(&mut ws).await;
    assert!(reply.contains("cancelled"), "{reply}");
    assert!(server.state.store.chat_files(&chat_id).await.unwrap().is_empty());
    // The slot is free again.
    fake.push_json(json!({"type": "based", "filename": "a.based", "text": VALID}));
    ws.send_json(&new_message("Now", true, true, None)).await;
    assert!(recv_reply(&mut ws).await.contains("agent_response"));
}

#[tokio::test]
async fn a_hanging_model_times_out_with_a_clear_error() {
    let server = TestServer::start_with(|s| s.llm_timeout = Duration::from_millis(300)).await;
    let fake = FakeModel::start().await;
    let (_, mut ws) = setup(&server, &fake).await;
    fake.push_hang();
    ws.send_json(&new_message("Hello", true, true, None)).await;
    let reply = recv_reply(&mut ws).await;
    assert!(reply.contains("did not answer within"), "{reply}");
}

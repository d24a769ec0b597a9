//! The agent's answer streaming to clients as the model writes it, end to end: the real
//! server, WebSocket clients and a fake model that streams server-sent events over HTTP.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a panic is the failure report"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_tests::fake_model::{FakeModel, SseStep};
use kafka_tests::{TestDatabase, TestServer, WsClient};
use serde_json::{Value, json};
use tokio::sync::Notify;

const VALID: &str = "say(\"Hi, I book tables.\", exact=True)\nloop:\n    booking = talk(\"Ask for the party size.\", True)\nuntil \"user gave party size\":\n    say(\"Booked.\", exact=True)\n";

async fn setup(server: &TestServer, fake: &FakeModel) -> (String, WsClient) {
    let (user_id, _, chat_id) = server.user_with_chat("stream@example.com").await;
    server
        .add_model(&user_id, "fake-model", "sk-stream", &fake.base_url())
        .await;
    let ws = client(server, &chat_id, true).await;
    (chat_id, ws)
}

async fn client(server: &TestServer, chat_id: &str, v2: bool) -> WsClient {
    let mut ws = server.connect(chat_id, v2).await;
    ws.recv_initial().await;
    ws
}

fn new_message(prompt: &str, first: bool) -> Value {
    json!({"action": "new_message", "model": "fake-model", "prompt": prompt,
           "is_first_prompt": first, "is_chat_or_composer": true})
}

/// The answer's streamed text and the frames up to and including the brief's reply.
struct Watched {
    text: String,
    frames: Vec<Value>,
    reply: String,
}

impl Watched {
    fn events(&self, name: &str) -> Vec<&Value> {
        self.frames.iter().filter(|f| f["event"] == name).collect()
    }

    fn position(&self, predicate: impl Fn(&Value) -> bool) -> usize {
        self.frames.iter().position(predicate).expect("the frame arrived")
    }
}

/// Reads frames until the brief's reply (a frame that is not an event).
async fn watch(ws: &mut WsClient, text: String) -> Watched {
    let mut watched = Watched {
        text,
        frames: Vec::new(),
        reply: String::new(),
    };
    loop {
        let raw = ws.recv_text().await;
        let frame: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
        if frame.get("event").is_none() {
            watched.reply = raw;
            return watched;
        }
        if frame["event"] == "agent_output" {
            watched.text.push_str(frame["delta"].as_str().unwrap());
        }
        watched.frames.push(frame);
    }
}

/// Reads events until the watcher (a v2 client that did not send the prompt) sees `done`.
async fn watch_until_done(ws: &mut WsClient, text: String) -> Watched {
    let mut watched = Watched {
        text,
        frames: Vec::new(),
        reply: String::new(),
    };
    loop {
        let frame = ws.recv_json().await;
        if frame["event"] == "agent_output" {
            watched.text.push_str(frame["delta"].as_str().unwrap());
        }
        let done = frame["event"] == "agent_progress" && frame["stage"] == "done";
        watched.frames.push(frame);
        if done {
            return watched;
        }
    }
}

#[tokio::test]
async fn the_first_delta_reaches_every_v2_client_long_before_the_answer_ends() {
    let server = TestServer::start().await;
    let fake = FakeModel::start().await;
    let (chat_id, mut sender) = setup(&server, &fake).await;
    let mut watcher = client(&server, &chat_id, true).await;
    let mut legacy = client(&server, &chat_id, false).await;
    let gate = Arc::new(Notify::new());
    let head = "## booking.based\n```based\n";
    fake.push_sse_steps(vec![
        SseStep::Delta(head.into()),
        SseStep::Gate(gate.clone()),
        SseStep::Delta(VALID.into()),
        SseStep::Delta("```\n".into()),
        SseStep::Finish,
        SseStep::Usage(120, 40),
        SseStep::Done,
    ]);

    sender.send_json(&new_message("Write a booking agent", true)).await;
    // The model has not finished (it waits at the gate), yet both v2 clients read its start.
    for ws in [&mut sender, &mut watcher] {
        let first = ws.recv_event("agent_output").await;
        assert_eq!(
            first,
            json!({"event": "agent_output", "stage": "generating", "attempt": 1, "delta": head})
        );
    }
    assert!(fake.streams().is_empty(), "the answer is still being written");
    gate.notify_one();

    let sent = watch(&mut sender, head.to_string()).await;
    let seen = watch_until_done(&mut watcher, head.to_string()).await;
    let whole = format!("{head}{VALID}```\n");
    assert_eq!(sent.text, whole);
    assert_eq!(seen.text, whole);
    let reply: Value = serde_json::from_str(&sent.reply).unwrap();
    assert_eq!(reply["action"], "agent_response");
    assert_eq!(reply["content"]["based_content"], VALID);
    assert_eq!(reply["content"]["based_filename"], "booking.based");
    // The text comes before the validation that follows it; usage comes with `done`.
    let last_output = sent.frames.iter().rposition(|f| f["event"] == "agent_output").unwrap();
    assert!(last_output < sent.position(|f| f["stage"] == "validating"));
    let done = seen.events("agent_progress").into_iter().last().unwrap().clone();
    assert_eq!(done["stage"], "done");
    assert_eq!(
        done["usage"],
        json!({"prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160})
    );
    // A legacy client of the chat sees none of it.
    legacy.expect_silence(Duration::from_millis(300)).await;
    // The run is kept with its usage, next to the entry it produced.
    let runs = server.state.store.agent_runs(&chat_id).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        (runs[0].outcome.as_str(), runs[0].model.as_str()),
        ("file", "fake-model")
    );
    assert_eq!(runs[0].tokens, Some((120, 40, 160)));
    let conversation = server.state.store.conversation(&chat_id).await.unwrap();
    assert_eq!(runs[0].message_seq, conversation.last().map(|m| m.seq));
}

#[tokio::test]
async fn frames_are_coalesced_to_about_twenty_a_second() {
    let server = TestServer::start().await;
    let fake = FakeModel::start().await;
    let (_, mut ws) = setup(&server, &fake).await;
    let mut steps = vec![SseStep::Delta("Counting:".into())];
    for n in 0..300 {
        steps.push(SseStep::Delta(format!(" {n}")));
        steps.push(SseStep::Pause(Duration::from_millis(2)));
    }
    steps.extend([SseStep::Finish, SseStep::Done]);
    fake.push_sse_steps(steps);

    let started = Instant::now();
    // Outside chat/composer mode: a plain answer, no triage call.
    ws.send_json(
        &json!({"action": "new_message", "model": "fake-model", "prompt": "Count",
                         "is_chat_or_composer": false}),
    )
    .await;
    let watched = watch(&mut ws, String::new()).await;
    let elapsed = started.elapsed();

    let expected: String = std::iter::once("Counting:".to_string())
        .chain((0..300).map(|n| format!(" {n}")))
        .collect();
    assert_eq!(watched.text, expected);
    let frames = watched.events("agent_output").len();
    let allowed = (elapsed.as_millis() / 50) as usize + 2;
    assert!(frames <= allowed, "{frames} frames in {elapsed:?}");
    assert!(
        frames >= 2,
        "the text came in several frames, not one at the end ({frames})"
    );
    assert_eq!(watched.reply, expected);
}

#[tokio::test]
async fn cancel_mid_stream_closes_the_models_connection_and_saves_nothing() {
    let server = TestServer::start().await;
    let fake = FakeModel::start().await;
    let (chat_id, mut ws) = setup(&server, &fake).await;
    fake.push_sse_steps(vec![
        SseStep::Delta("## a.based\n```based\nloop:\n".into()),
        SseStep::Pause(Duration::from_secs(60)),
        SseStep::Delta("rest".into()),
        SseStep::Done,
    ]);
    ws.send_json(&new_message("Write it", true)).await;
    ws.recv_event("agent_output").await;

    let cancelled_at = Instant::now();
    ws.send_json(&json!({"action": "cancel"})).await;
    let watched = watch(&mut ws, String::new()).await;
    assert_eq!(
        serde_json::from_str::<Value>(&watched.reply).unwrap()["error"],
        "The agent stopped: the request was cancelled"
    );
    while fake.streams().is_empty() {
        assert!(
            cancelled_at.elapsed() < Duration::from_secs(1),
            "the model's connection is still open"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        !fake.streams()[0].finished,
        "the fake saw its connection closed mid-answer"
    );
    assert!(server.state.store.chat_files(&chat_id).await.unwrap().is_empty());
    let conversation = server.state.store.conversation(&chat_id).await.unwrap();
    let note = conversation.last().unwrap();
    assert_eq!(
        (note.role.as_str(), note.content.as_str()),
        ("system", Some("The agent stopped: the request was cancelled"))
    );
    let runs = server.state.store.agent_runs(&chat_id).await.unwrap();
    assert_eq!(runs[0].outcome, "cancelled");
    assert_eq!(runs[0].tokens, None);
}

#[tokio::test]
async fn a_provider_that_ignores_stream_still_works_and_shows_the_answer_whole() {
    let server = TestServer::start().await;
    let fake = FakeModel::start().await;
    let (chat_id, mut ws) = setup(&server, &fake).await;
    let answer = format!("## booking.based\n```based\n{VALID}```\n");
    fake.push_content(&answer);

    ws.send_json(&new_message("Write it", true)).await;
    let watched = watch(&mut ws, String::new()).await;

    assert_eq!(watched.events("agent_output").len(), 1);
    assert_eq!(watched.text, answer);
    assert_eq!(
        serde_json::from_str::<Value>(&watched.reply).unwrap()["action"],
        "agent_response"
    );
    assert!(watched.events("agent_progress").last().unwrap().get("usage").is_none());
    assert_eq!(fake.requests()[0].body["stream"], true);
    let runs = server.state.store.agent_runs(&chat_id).await.unwrap();
    assert_eq!((runs[0].outcome.as_str(), runs[0].tokens), ("file", None));
}

#[tokio::test]
async fn a_stream_broken_half_way_is_a_clear_error_and_changes_nothing() {
    let server = TestServer::start().await;
    let fake = FakeModel::start().await;
    let (chat_id, mut ws) = setup(&server, &fake).await;
    fake.push_sse_steps(vec![
        SseStep::Delta("## a.based\n```based\nloop:\n".into()),
        SseStep::Break,
    ]);

    ws.send_json(&new_message("Write it", true)).await;
    let watched = watch(&mut ws, String::new()).await;

    let error = serde_json::from_str::<Value>(&watched.reply).unwrap()["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        error.starts_with("The agent stopped: the model's answer broke off"),
        "{error}"
    );
    assert_eq!(fake.requests().len(), 1, "not retried");
    assert!(server.state.store.chat_files(&chat_id).await.unwrap().is_empty());
    assert_eq!(
        server.state.store.agent_runs(&chat_id).await.unwrap()[0].outcome,
        "failed"
    );
}

#[tokio::test]
async fn a_legacy_client_gets_only_the_briefs_reply() {
    let server = TestServer::start().await;
    let fake = FakeModel::start().await;
    let (chat_id, _v2) = setup(&server, &fake).await;
    let mut legacy = client(&server, &chat_id, false).await;
    fake.push_sse(&["## a.based\n```based\n", VALID, "```\n"]);

    legacy.send_json(&new_message("Write it", true)).await;
    let reply = legacy.recv_json().await;

    assert_eq!(reply["action"], "agent_response");
    assert_eq!(reply["content"]["based_content"], VALID);
    legacy.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn streamed_text_reaches_clients_of_another_instance() {
    let Some(database) = TestDatabase::create().await else {
        eprintln!("streamed_text_reaches_clients_of_another_instance: skipped: no PostgreSQL configured");
        return;
    };
    let a = TestServer::start_on(Some(Arc::clone(&database)), |_| {}).await;
    let b = TestServer::start_on(Some(database), |_| {}).await;
    let fake = FakeModel::start().await;
    let (chat_id, mut on_a) = setup(&a, &fake).await;
    let mut on_b = client(&b, &chat_id, true).await;
    let gate = Arc::new(Notify::new());
    fake.push_sse_steps(vec![
        SseStep::Delta("## a.based\n".into()),
        SseStep::Gate(gate.clone()),
        SseStep::Delta(format!("```based\n{VALID}```\n")),
        SseStep::Finish,
        SseStep::Usage(5, 6),
        SseStep::Done,
    ]);

    on_a.send_json(&new_message("Write it", true)).await;
    assert_eq!(on_b.recv_event("agent_output").await["delta"], "## a.based\n");
    gate.notify_one();
    let seen = watch_until_done(&mut on_b, "## a.based\n".to_string()).await;

    assert_eq!(seen.text, format!("## a.based\n```based\n{VALID}```\n"));
    assert_eq!(seen.frames.last().unwrap()["usage"]["total_tokens"], 11);
}

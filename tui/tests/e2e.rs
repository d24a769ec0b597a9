//! The newcomer's whole flow, driven by key events against the real server and a fake
//! model: log in, add a model, chat a Based file into existence, change it, see the diff,
//! revert it, quit. Also: live changes from another client, and reconnecting after the
//! server went away.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a panic is the failure report"
)]

mod common;

use common::Harness;
use crossterm::event::{KeyCode, KeyModifiers};
use futures_util::{SinkExt, StreamExt};
use kafka_protocol::ws::{ConversationMessage, InitialPayload};
use kafka_tests::TestServer;
use kafka_tests::fake_model::FakeModel;
use kafka_tui::app::{Connection, Popup, Screen};
use ratatui::style::Color;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

const VALID: &str = "say(\"Hi, I book tables.\", exact=True)\nloop:\n    booking = talk(\"Ask for the party size.\", True)\nuntil \"user gave party size\":\n    say(\"Booked.\", exact=True)\n";
const SECRET: &str = "sk-e2e-secret-1234";

fn edited() -> String {
    VALID.replace("party size.\", True", "party size and time.\", True")
}

#[tokio::test]
async fn a_newcomer_writes_changes_diffs_and_reverts_a_based_file() {
    let server = TestServer::start().await;
    let fake = FakeModel::start().await;
    let mut ui = Harness::new(&server.base, 120, 40);

    // Log in.
    assert!(ui.screen().contains("Email"));
    ui.type_text("newcomer@example.com");
    ui.press(KeyCode::Enter);
    ui.wait_for("the browser", |app| app.screen == Screen::Browser).await;
    assert!(ui.screen().contains("Default Workspace"));

    // Add a model; the key is typed masked.
    ui.char('m');
    ui.press(KeyCode::Enter);
    assert!(matches!(ui.app().popup, Some(Popup::AddModel(_))));
    ui.type_text("fake-model");
    ui.press(KeyCode::Tab);
    ui.type_text(&fake.base_url());
    ui.press(KeyCode::Tab);
    ui.type_text(SECRET);
    let form = ui.screen();
    assert!(!form.contains(SECRET), "the key shows masked:\n{form}");
    ui.press(KeyCode::Enter);
    ui.wait_for("the model", |app| app.model.as_deref() == Some("fake-model"))
        .await;

    // A new chat opens with the input focused.
    ui.char('n');
    ui.press(KeyCode::Enter);
    ui.wait_for("the chat, connected and loaded", |app| {
        app.connection == Connection::Connected && app.chat.as_ref().is_some_and(|chat| chat.loaded)
    })
    .await;

    // Chat a file into existence.
    fake.push_json(json!({"type": "based", "filename": "booking.based", "text": VALID}));
    ui.type_text("Write a booking agent");
    ui.press(KeyCode::Enter);
    ui.wait_for("the new file", |app| {
        let chat = app.chat.as_ref().unwrap();
        !chat.agent_busy && chat.selected_based().is_some()
    })
    .await;
    let screen = ui.screen();
    assert!(screen.contains("booking.based"), "{screen}");
    assert!(screen.contains("Write a booking agent"), "{screen}");
    assert!(screen.contains("2 │ loop:"), "line numbers and code:\n{screen}");
    let talk = ui.style_of("talk(").expect("talk is shown");
    assert!(
        matches!(talk.fg, Some(Color::Rgb(..))),
        "talk is highlighted as a built-in: {talk:?}"
    );

    // Copy two lines of it: to the code pane, V on line 2, j, y; the terminal gets exactly
    // those lines. Enter goes back to the input.
    for key in [
        KeyCode::Esc,
        KeyCode::Tab,
        KeyCode::Tab,
        KeyCode::Char('j'),
        KeyCode::Char('V'),
    ] {
        ui.press(key);
    }
    ui.char('j');
    assert!(ui.screen().contains("lines 2–3 of 5"));
    ui.char('y');
    let copied = ui.driver.clipboard.pop().map(|text| kafka_tui::clipboard::osc52(&text));
    let lines: String = VALID.lines().skip(1).take(2).map(|line| format!("{line}\n")).collect();
    assert_eq!(
        copied.as_deref().and_then(kafka_tui::clipboard::decode_osc52),
        Some(lines)
    );
    ui.press(KeyCode::Enter);

    // Change it: the agent triages, then writes a diff.
    fake.push_json(json!({"summary": "edit", "extraction_indices": [], "genNewFile": false,
                          "files_list": [], "plain_response": false, "tools": []}));
    let patch = "--- booking.based\n+++ booking.based\n@@ -2,3 +2,3 @@\n loop:\n-    booking = talk(\"Ask for the party size.\", True)\n+    booking = talk(\"Ask for the party size and time.\", True)\n until \"user gave party size\":\n";
    fake.push_json(json!({"type": "diff", "filename": "booking.based", "text": patch}));
    ui.type_text("Also ask for the time");
    ui.press(KeyCode::Enter);
    ui.wait_for("the second version", |app| {
        let chat = app.chat.as_ref().unwrap();
        !chat.agent_busy && chat.selected_based().is_some_and(|file| file.versions.len() == 2)
    })
    .await;
    assert_eq!(
        ui.app().chat.as_ref().unwrap().selected_based().unwrap().latest_content,
        edited()
    );

    // The diff of version 1 against the latest.
    ui.press(KeyCode::Esc);
    ui.char('v');
    ui.wait_for("the diff", |app| {
        app.chat
            .as_ref()
            .unwrap()
            .versions
            .as_ref()
            .is_some_and(|view| view.diff.is_some())
    })
    .await;
    ui.char(']');
    let screen = ui.screen();
    assert!(screen.contains("booking.based: v1 → latest"), "{screen}");
    assert!(
        screen.contains("+ ") && screen.contains("party size and time"),
        "{screen}"
    );
    assert!(screen.contains("− "), "{screen}");

    // Revert, after a confirmation that names the file and the version.
    ui.char('r');
    let confirm = ui.screen();
    assert!(confirm.contains("Revert booking.based to version 1 of 2"), "{confirm}");
    ui.char('y');
    ui.wait_for("the revert", |app| {
        let chat = app.chat.as_ref().unwrap();
        chat.based_files[0].versions.len() == 3 && chat.based_files[0].latest_content == VALID
    })
    .await;
    let files = server
        .state
        .store
        .chat_files(&ui.app().chat.as_ref().unwrap().chat_id)
        .await
        .unwrap();
    let latest = server.state.store.latest_version(&files[0].id).await.unwrap();
    assert_eq!(latest.content, VALID, "the revert really restored the file");

    // Help, then quit.
    ui.char('?');
    assert!(ui.screen().contains("revert to this version"));
    ui.press(KeyCode::Esc);
    ui.char('q');
    assert!(ui.app().should_quit);
}

#[tokio::test]
async fn workspaces_chats_and_files_are_managed_from_the_keyboard() {
    let server = TestServer::start().await;
    let mut ui = Harness::new(&server.base, 80, 24);
    let first = ui.driver.app.start(Some("keys@example.com".into()), None);
    ui.driver.execute(first);
    ui.wait_for("the browser", |app| app.screen == Screen::Browser).await;

    // A workspace: created, then renamed.
    ui.press(KeyCode::Esc);
    ui.char('n');
    ui.press(KeyCode::Enter);
    ui.wait_for("the new workspace", |app| app.workspaces().len() == 2)
        .await;
    ui.char('R');
    for _ in 0.."New workspace".len() {
        ui.press(KeyCode::Backspace);
    }
    ui.type_text("Scratch");
    ui.press(KeyCode::Enter);
    ui.wait_for("the rename", |app| app.workspaces()[1].name == "Scratch")
        .await;

    // A chat in it, with an uploaded file (the path tab-completed), then deleted.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "Tables for 2 and 4.").unwrap();
    ui.press(KeyCode::Tab);
    ui.char('n');
    ui.press(KeyCode::Enter);
    ui.wait_for("the chat", |app| app.chat.as_ref().is_some_and(|c| c.loaded))
        .await;
    ui.press(KeyCode::Esc);
    ui.char('u');
    ui.type_text(&format!("{}/no", dir.path().display()));
    ui.press(KeyCode::Tab);
    ui.press(KeyCode::Enter);
    ui.wait_for("the upload", |app| app.chat.as_ref().unwrap().text_files.len() == 1)
        .await;
    assert!(ui.screen().contains("notes.txt"));
    ui.press(KeyCode::Tab);
    ui.char('x');
    assert!(ui.screen().contains("Delete file notes.txt"));
    ui.char('y');
    ui.wait_for("the file deleted", |app| {
        app.chat.as_ref().unwrap().text_files.is_empty()
    })
    .await;

    // Back in the browser: delete the chat, then the workspace, each after a confirmation.
    ui.press(KeyCode::Esc);
    assert_eq!(ui.app().screen, Screen::Browser);
    ui.char('D');
    ui.char('y');
    ui.wait_for("the chat deleted", |app| app.workspaces()[1].chats.is_empty())
        .await;
    ui.press(KeyCode::Esc);
    ui.char('D');
    assert!(ui.screen().contains("Delete workspace"));
    ui.char('y');
    ui.wait_for("the workspace deleted", |app| app.workspaces().len() == 1)
        .await;
}

#[tokio::test]
async fn another_clients_changes_appear_at_once_and_typing_survives() {
    let server = TestServer::start().await;
    let (_, _, chat_id) = server.user_with_chat("live@example.com").await;
    let mut ui = Harness::new(&server.base, 80, 24);
    let first = ui
        .driver
        .app
        .start(Some("live@example.com".into()), Some(chat_id.clone()));
    ui.driver.execute(first);
    ui.wait_for("the chat", |app| app.connection == Connection::Connected)
        .await;
    ui.wait_for("the payload", |app| app.chat.as_ref().is_some_and(|c| c.loaded))
        .await;
    ui.type_text("half a thought");
    ui.press_with(KeyCode::Enter, KeyModifiers::ALT);
    ui.type_text("and more");

    let mut other = server.connect(&chat_id, false).await;
    other.recv_initial().await;
    let data = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, VALID);
    other
        .send_json(&json!({"action": "upload_file", "filename": "shared.based", "file_data": data}))
        .await;
    ui.wait_for("the other client's file", |app| {
        app.chat
            .as_ref()
            .unwrap()
            .based_files
            .iter()
            .any(|f| f.name == "shared.based")
    })
    .await;
    assert!(ui.screen().contains("shared.based"));
    assert_eq!(ui.app().chat.as_ref().unwrap().input.text(), "half a thought\nand more");
}

/// The initial payload of a stand-in chat with `messages` messages.
fn payload(messages: usize) -> String {
    let message = ConversationMessage {
        role: "user".into(),
        kind: "text".into(),
        content: json!("hello"),
    };
    let payload = InitialPayload {
        chat_id: "chat-1".into(),
        chat_name: "Reconnecting".into(),
        conversation: vec![message; messages],
        chat_files_text: Vec::new(),
        chat_files_based: Vec::new(),
        workspace_files: Vec::new(),
        workspace_id: "ws-1".into(),
        models: Vec::new(),
        initial: true,
    };
    serde_json::to_string(&payload).unwrap()
}

/// Serves one chat twice: the first connection is closed after its payload.
async fn flaky_server(listener: TcpListener) {
    for round in 1..=2 {
        let (stream, _) = listener.accept().await.unwrap();
        let mut socket = tokio_tungstenite::accept_async(stream).await.unwrap();
        socket.send(Message::text(payload(round))).await.unwrap();
        if round == 1 {
            // Give the client time to see the chat before the "restart".
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            socket.close(None).await.unwrap();
        } else {
            while socket.next().await.is_some() {}
        }
    }
}

#[tokio::test]
async fn a_dropped_socket_reconnects_and_the_typed_text_stays() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(flaky_server(listener));
    let mut ui = Harness::new(&base, 80, 24);
    let open = ui.driver.app.open_chat("chat-1");
    ui.driver.execute(open);
    ui.wait_for("the first payload", |app| {
        app.chat.as_ref().is_some_and(|c| c.conversation.len() == 1)
    })
    .await;
    ui.type_text("unsent words");

    ui.wait_for("the lost connection", |app| {
        matches!(app.connection, Connection::Retrying { .. })
    })
    .await;
    assert!(ui.screen().contains("reconnecting"));
    ui.wait_for("the second payload", |app| {
        app.connection == Connection::Connected && app.chat.as_ref().is_some_and(|c| c.conversation.len() == 2)
    })
    .await;
    assert_eq!(ui.app().chat.as_ref().unwrap().input.text(), "unsent words");
}

/// The real server in protected mode: the password is asked, and every REST call and the
/// WebSocket carry the token (without it the server would answer 401 and nothing would load).
#[tokio::test]
async fn a_protected_server_is_used_with_a_password_and_tokens_throughout() {
    let server = TestServer::start_with(|s| s.auth = kafka_server::auth::AuthMode::Token).await;
    let created = server
        .http
        .post(server.url("/auth/login"))
        .json(&json!({"email": "guarded@example.com", "password": "a long passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);

    let mut ui = Harness::new(&server.base, 120, 40);
    ui.type_text("guarded@example.com");
    ui.press(KeyCode::Enter);
    ui.wait_for("the password field", |app| app.login.asks_password).await;
    let typed = "a long passphrase";
    ui.type_text(typed);
    assert!(!ui.screen().contains(typed), "the password shows masked");
    ui.press(KeyCode::Enter);
    ui.wait_for("the browser", |app| app.screen == Screen::Browser).await;

    // A new chat (REST with the token) opens and loads over the WebSocket (?token=).
    ui.char('n');
    ui.press(KeyCode::Enter);
    ui.wait_for("the chat, connected and loaded", |app| {
        app.connection == Connection::Connected && app.chat.as_ref().is_some_and(|chat| chat.loaded)
    })
    .await;
}

/// A new email on a protected server: the server wants a password for it too, so the field
/// shows; a too-short one is refused with the server's reason, and a good one creates the
/// account with it.
#[tokio::test]
async fn a_new_account_on_a_protected_server_is_asked_a_password_and_made_with_it() {
    let server = TestServer::start_with(|s| s.auth = kafka_server::auth::AuthMode::Token).await;
    let mut ui = Harness::new(&server.base, 120, 40);
    ui.type_text("newcomer@example.com");
    ui.press(KeyCode::Enter);
    ui.wait_for("the password field", |app| app.login.asks_password && !app.logging_in)
        .await;
    assert_eq!(ui.app().last_error, None);
    assert!(ui.screen().contains("The server wants a password"), "{}", ui.screen());

    ui.type_text("short");
    ui.press(KeyCode::Enter);
    ui.wait_for("the refusal", |app| !app.logging_in && app.last_error.is_some())
        .await;
    assert!(
        ui.app().last_error.as_deref().unwrap().contains("at least 8"),
        "{:?}",
        ui.app().last_error
    );
    ui.type_text(" but longer now");
    ui.press(KeyCode::Enter);
    ui.wait_for("the browser", |app| app.screen == Screen::Browser).await;
    let account = server
        .state
        .store
        .credentials("newcomer@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(account.password_hash.is_some(), "made with the password");
}

#[tokio::test]
async fn the_answer_is_watched_as_it_is_written_and_ctrl_x_stops_it() {
    use kafka_tests::fake_model::SseStep;
    let server = TestServer::start().await;
    let fake = FakeModel::start().await;
    let (user_id, _, chat_id) = server.user_with_chat("watch@example.com").await;
    server.add_model(&user_id, "fake-model", SECRET, &fake.base_url()).await;
    let mut ui = Harness::new(&server.base, 120, 40);
    let first = ui.driver.app.start(Some("watch@example.com".into()), Some(chat_id));
    ui.driver.execute(first);
    ui.wait_for("the chat with its model", |app| {
        app.chat.as_ref().is_some_and(|c| c.loaded) && app.model.as_deref() == Some("fake-model")
    })
    .await;

    // The model writes the file's first lines, then waits: the TUI shows them meanwhile.
    let gate = std::sync::Arc::new(tokio::sync::Notify::new());
    let (start, rest) = VALID.split_at(VALID.find("loop:").unwrap());
    fake.push_sse_steps(vec![
        SseStep::Delta("## booking.based\n```based\n".into()),
        SseStep::Delta(start.into()),
        SseStep::Gate(gate.clone()),
        SseStep::Delta(format!("{rest}```\n")),
        SseStep::Finish,
        SseStep::Usage(50, 20),
        SseStep::Done,
    ]);
    ui.type_text("Write a booking agent");
    ui.press(KeyCode::Enter);
    ui.wait_for("the first lines", |app| {
        app.chat
            .as_ref()
            .unwrap()
            .live
            .as_ref()
            .is_some_and(|live| live.line_count() >= 3)
    })
    .await;
    let screen = ui.screen();
    assert!(screen.contains("kafka writing · attempt 1"), "{screen}");
    assert!(screen.contains("▏ say(\"Hi, I book tables.\", exact=True)"), "{screen}");
    assert!(
        screen.contains("agent: generating · "),
        "the elapsed time shows:\n{screen}"
    );
    let say = ui.style_of("say(").expect("say is shown");
    assert!(
        matches!(say.fg, Some(Color::Rgb(..))),
        "highlighted as it arrives: {say:?}"
    );
    gate.notify_one();
    ui.wait_for("the file", |app| {
        let chat = app.chat.as_ref().unwrap();
        !chat.agent_busy && chat.selected_based().is_some()
    })
    .await;
    let screen = ui.screen();
    assert!(
        !screen.contains("kafka writing"),
        "the live copy made way for the file:\n{screen}"
    );
    assert!(screen.contains("70 tokens (50 in, 20 out)"), "{screen}");

    // A second answer that stalls half-way: Ctrl+X stops it and closes the model's stream.
    fake.push_json(json!({"summary": "s", "extraction_indices": [], "genNewFile": false,
                          "files_list": [], "plain_response": true, "tools": []}));
    fake.push_sse_steps(vec![
        SseStep::Delta("Thinking about it".into()),
        SseStep::Pause(std::time::Duration::from_secs(60)),
        SseStep::Done,
    ]);
    ui.type_text("Explain it");
    ui.press(KeyCode::Enter);
    ui.wait_for("the answer's start", |app| app.chat.as_ref().unwrap().live.is_some())
        .await;
    assert!(ui.screen().contains("Thinking about it"));
    let pressed = std::time::Instant::now();
    ui.press_with(KeyCode::Char('x'), KeyModifiers::CONTROL);
    ui.wait_for("the run to stop", |app| !app.chat.as_ref().unwrap().agent_busy)
        .await;
    while fake.streams().len() < 2 {
        assert!(
            pressed.elapsed() < std::time::Duration::from_secs(1),
            "the stream is still open"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(!fake.streams()[1].finished);
    ui.wait_for("the note", |app| {
        app.chat
            .as_ref()
            .unwrap()
            .conversation
            .last()
            .is_some_and(|m| m.role == "system")
    })
    .await;
    let screen = ui.screen();
    assert!(screen.contains("cancelled"), "{screen}");
    assert!(!screen.contains("Thinking about it"), "{screen}");
}

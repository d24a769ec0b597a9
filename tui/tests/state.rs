//! The app's update functions alone: keys and frames in, state and commands out.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a panic is the failure report"
)]

mod fixtures;

use crossterm::event::KeyCode;
use fixtures::{CHAT_ID, FILE_ID, key};
use kafka_protocol::ws::{
    AgentResponse, BasedFile, BasedFileContent, ChatEvent, ClientAction, Message, ServerAction, ServerFrame,
};
use kafka_tui::app::{App, AppEvent, Command, Connection, Popup};

fn frame(app: &mut App, frame: ServerFrame) -> Vec<Command> {
    app.handle_event(AppEvent::Frame {
        chat_id: CHAT_ID.into(),
        frame,
    })
}

fn type_and_send(app: &mut App, text: &str) -> Vec<Command> {
    app.paste(text);
    app.handle_key(crossterm::event::KeyEvent::from(KeyCode::Enter))
}

#[test]
fn enter_sends_a_new_message_with_the_model_mode_and_file() {
    let mut app = fixtures::chat_with(fixtures::CODE);
    let commands = type_and_send(&mut app, "Add a goodbye");
    let [Command::Send(ClientAction::NewMessage(message))] = commands.as_slice() else {
        panic!("{commands:?}");
    };
    assert_eq!(message.model, "gpt-4o");
    assert_eq!(message.prompt, "Add a goodbye");
    assert!(message.is_chat_or_composer, "composer mode by default");
    assert!(!message.is_first_prompt, "the chat has a file already");
    assert_eq!(message.selected_filename.as_deref(), Some("booking.based"));
    let chat = app.chat.as_ref().unwrap();
    assert!(chat.agent_busy && chat.input.is_blank());

    // Chat mode: the agent answers in text.
    frame(&mut app, ServerFrame::Text("ok".into()));
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Char('c'));
    key(&mut app, KeyCode::Enter);
    let commands = type_and_send(&mut app, "Why?");
    let [Command::Send(ClientAction::NewMessage(message))] = commands.as_slice() else {
        panic!("{commands:?}");
    };
    assert!(!message.is_chat_or_composer);
}

#[test]
fn a_message_is_kept_when_it_cannot_be_sent() {
    let mut app = fixtures::chat();
    app.handle_event(AppEvent::Connection {
        chat_id: CHAT_ID.into(),
        state: Connection::Retrying {
            attempt: 1,
            delay_ms: 250,
        },
    });
    assert!(type_and_send(&mut app, " please").is_empty());
    assert_eq!(
        app.chat.as_ref().unwrap().input.text(),
        "Now also confirm by SMS please"
    );
    assert!(app.last_error.as_deref().unwrap().contains("kept"));
}

#[test]
fn without_a_model_sending_opens_the_model_picker() {
    let mut app = fixtures::chat_with(fixtures::CODE);
    app.models.clear();
    app.model = None;
    assert!(type_and_send(&mut app, "Hello").is_empty());
    assert!(matches!(app.popup, Some(Popup::Models { .. })));
}

#[test]
fn the_file_the_agent_writes_is_selected_when_it_arrives() {
    let mut app = fixtures::chat_with(fixtures::CODE);
    let content = BasedFileContent {
        based_filename: "new.based".into(),
        based_content: "say(\"hi\")\n".into(),
        message: None,
    };
    let response = AgentResponse {
        kind: "file".into(),
        id: "file-new".into(),
        content: content.clone(),
        message: Message {
            role: "assistant".into(),
            kind: "file".into(),
            content,
        },
        block: None,
    };
    // The reply comes before the event that adds the file.
    frame(&mut app, ServerFrame::Action(ServerAction::AgentResponse(response)));
    let file = BasedFile {
        file_id: "file-new".into(),
        name: "new.based".into(),
        latest_content: "say(\"hi\")\n".into(),
        versions: Vec::new(),
        kind: "based".into(),
    };
    frame(&mut app, ServerFrame::Event(ChatEvent::BasedFileAdded { file }));
    assert_eq!(app.chat.as_ref().unwrap().selected_based().unwrap().name, "new.based");
}

#[test]
fn a_new_version_refreshes_the_older_versions_counts() {
    let mut app = fixtures::chat_with(fixtures::CODE);
    let commands = frame(
        &mut app,
        ServerFrame::Event(ChatEvent::VersionAdded {
            file_id: FILE_ID.into(),
            filename: "booking.based".into(),
            version_id: "v-3".into(),
            timestamp: "2026-11-25T22:00:00.000000".into(),
            content: "say(\"v3\")\n".into(),
        }),
    );
    let asked: Vec<_> = commands
        .iter()
        .filter_map(|command| match command {
            Command::Send(ClientAction::GetDiff(get)) => Some(get.from_version_id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(asked, ["v-1", "v-2"]);
    let file = app.chat.as_ref().unwrap().selected_based().unwrap();
    assert_eq!(file.latest_content, "say(\"v3\")\n");
}

#[test]
fn revert_needs_a_confirmation_that_names_the_file_and_version() {
    let mut app = fixtures::versions();
    key(&mut app, KeyCode::Char('r'));
    let Some(Popup::Confirm { question, .. }) = app.popup.clone() else {
        panic!("no confirmation");
    };
    assert!(
        question.contains("booking.based") && question.contains("version 1 of 2"),
        "{question}"
    );
    assert!(
        app.handle_key(crossterm::event::KeyEvent::from(KeyCode::Char('n')))
            .is_empty()
    );
    assert!(app.popup.is_none());
    key(&mut app, KeyCode::Char('r'));
    let commands = app.handle_key(crossterm::event::KeyEvent::from(KeyCode::Char('y')));
    let [Command::Send(ClientAction::RevertVersion(revert))] = commands.as_slice() else {
        panic!("{commands:?}");
    };
    assert_eq!(
        (revert.version_id.as_str(), revert.filename.as_str()),
        ("v-1", "booking.based")
    );
}

#[test]
fn hunk_keys_jump_between_hunks() {
    let mut app = fixtures::versions();
    let top = |app: &App| app.chat.as_ref().unwrap().versions.as_ref().unwrap().diff_top;
    assert_eq!(top(&app), 2, "the diff opens at its first hunk");
    key(&mut app, KeyCode::Char('['));
    assert_eq!(top(&app), 2);
    key(&mut app, KeyCode::Char('y'));
    assert!(app.notice.as_deref().unwrap().starts_with("Copied"));
}

#[test]
fn big_files_are_highlighted_in_the_background_small_ones_at_once() {
    let mut app = fixtures::logged_in();
    app.open_chat(CHAT_ID);
    let big: String = (0..3_000).map(|n| format!("say(\"{n}\")\n")).collect();
    let commands = frame(&mut app, ServerFrame::Initial(Box::new(fixtures::payload(&big))));
    let key = kafka_tui::highlight::content_key(&big);
    assert!(
        commands
            .iter()
            .any(|c| matches!(c, Command::Highlight { key: k, .. } if *k == key)),
        "{}",
        commands.len()
    );
    assert!(
        !app.highlights.contains(key),
        "shown plain until the background job answers"
    );

    let mut app = fixtures::chat_with(fixtures::CODE);
    assert!(
        app.highlights
            .contains(kafka_tui::highlight::content_key(fixtures::CODE))
    );
    assert!(
        type_and_send(&mut app, "x")
            .iter()
            .all(|c| !matches!(c, Command::Highlight { .. }))
    );
}

#[test]
fn the_wheel_scrolls_the_pane_under_the_pointer() {
    let code: String = (1..=100).map(|n| format!("say(\"{n}\")\n")).collect();
    let mut app = fixtures::chat_with(&code);
    let screen = ratatui::layout::Rect::new(0, 0, 120, 40);
    let pane = kafka_tui::ui::pane_at(&app, screen, 100, 20);
    assert_eq!(pane, Some(kafka_tui::app::Pane::Code));
    app.scroll(pane, 3);
    let chat = app.chat.as_ref().unwrap();
    assert_eq!(chat.code_top, 3);
    assert_eq!(
        chat.focus,
        kafka_tui::app::Pane::Input,
        "scrolling does not move the focus"
    );
    assert_eq!(
        kafka_tui::ui::pane_at(&app, screen, 10, 5),
        Some(kafka_tui::app::Pane::Conversation)
    );
}

#[test]
fn long_lines_scroll_sideways_and_a_new_file_starts_at_the_left() {
    let mut app = fixtures::chat_with(fixtures::CODE);
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Char('l'));
    assert_eq!(app.chat.as_ref().unwrap().code_left, 16);
    key(&mut app, KeyCode::Char('h'));
    assert_eq!(app.chat.as_ref().unwrap().code_left, 8);
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Down);
    assert_eq!(
        app.chat.as_ref().unwrap().code_left,
        0,
        "another file starts at column 0"
    );
}

/// The text of the one `Copy` command, as the terminal receives it: through OSC 52.
fn copied_through_osc52(commands: &[Command]) -> String {
    let [Command::Copy(text)] = commands else {
        panic!("expected one copy: {commands:?}");
    };
    let sequence = kafka_tui::clipboard::osc52(text);
    kafka_tui::clipboard::decode_osc52(&sequence).expect("a well-formed OSC 52 sequence")
}

fn press(app: &mut App, code: KeyCode) -> Vec<Command> {
    app.handle_key(crossterm::event::KeyEvent::from(code))
}

#[test]
fn y_copies_exactly_the_selected_lines_through_osc52() {
    let code: String = (1..=100).map(|n| format!("say(\"line {n}\")\n")).collect();
    let mut app = fixtures::chat_with(&code);
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Char('j'));
    key(&mut app, KeyCode::Char('j'));
    // V anchors on the top line shown (line 3); j, ↓ and k stretch it to line 5.
    key(&mut app, KeyCode::Char('V'));
    key(&mut app, KeyCode::Char('j'));
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Char('k'));
    let chat = app.chat.as_ref().unwrap();
    assert_eq!(chat.selection.map(|s| s.range()), Some(2..=4));
    assert_eq!(chat.code_top, 2, "stretching inside the view does not scroll");

    let copied = copied_through_osc52(&press(&mut app, KeyCode::Char('y')));
    assert_eq!(copied, "say(\"line 3\")\nsay(\"line 4\")\nsay(\"line 5\")\n");
    assert_eq!(app.notice.as_deref(), Some("Copied 3 lines to the clipboard."));
    assert!(
        app.chat.as_ref().unwrap().selection.is_none(),
        "copying ends the selection"
    );

    // Without a selection, y copies the whole file again.
    let copied = copied_through_osc52(&press(&mut app, KeyCode::Char('y')));
    assert_eq!(copied, code);
}

#[test]
fn a_selection_scrolls_with_its_end_and_esc_or_v_cancels_it() {
    let code: String = (1..=100).map(|n| format!("say(\"line {n}\")\n")).collect();
    let mut app = fixtures::chat_with(&code);
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Tab);
    // V from the files pane moves to the code pane.
    key(&mut app, KeyCode::Char('V'));
    let chat = app.chat.as_mut().unwrap();
    assert_eq!(chat.focus, kafka_tui::app::Pane::Code);
    chat.code_rows.set(10);
    key(&mut app, KeyCode::PageDown);
    let chat = app.chat.as_ref().unwrap();
    assert_eq!(chat.selection.map(|s| s.range()), Some(0..=15));
    assert_eq!(chat.code_top, 6, "the moving end stays on screen");
    assert_eq!(
        app.contexts().first(),
        Some(&kafka_tui::keymap::Context::Selection),
        "the footer and help show the selection's keys"
    );

    key(&mut app, KeyCode::Esc);
    let chat = app.chat.as_ref().unwrap();
    assert!(chat.selection.is_none() && app.screen == kafka_tui::app::Screen::Chat);
    key(&mut app, KeyCode::Char('V'));
    key(&mut app, KeyCode::Char('V'));
    assert!(app.chat.as_ref().unwrap().selection.is_none(), "V again cancels");
    key(&mut app, KeyCode::Char('j'));
    assert_eq!(app.chat.as_ref().unwrap().code_top, 7, "j scrolls again");
}

#[test]
fn lines_of_a_diff_can_be_selected_and_copied() {
    let mut app = fixtures::versions();
    key(&mut app, KeyCode::Char('V'));
    key(&mut app, KeyCode::Char('j'));
    key(&mut app, KeyCode::Char('j'));
    let view = app.chat.as_ref().unwrap().versions.as_ref().unwrap();
    assert_eq!(view.selected, 0, "j stretches the selection, not the version choice");
    let rows = &view.diff.as_ref().unwrap().parsed.rows;
    let top = view.diff_top;
    let expected: String = rows[top..=top + 2]
        .iter()
        .map(|row| format!("{}\n", row.text))
        .collect();
    let copied = copied_through_osc52(&press(&mut app, KeyCode::Char('y')));
    assert_eq!(copied, expected);
    assert!(copied.contains("loop:\n"), "{copied:?}");
}

#[test]
fn a_refused_login_asks_for_the_password_then_says_when_it_is_wrong() {
    use kafka_tui::app::{LoginField, RestCall};
    let mut app = App::new("test");
    let login = |email: &str, password: Option<&str>| {
        vec![Command::Rest(RestCall::Login {
            email: email.into(),
            password: password.map(str::to_owned),
        })]
    };
    assert_eq!(
        type_and_send(&mut app, "ada@example.com"),
        login("ada@example.com", None)
    );
    app.handle_event(AppEvent::LoginRefused("Invalid credentials.".into()));
    assert!(app.login.asks_password && app.login.focus == LoginField::Password);
    assert_eq!(app.last_error, None, "the first 401 only means a password is needed");

    assert_eq!(
        type_and_send(&mut app, "wrong"),
        login("ada@example.com", Some("wrong"))
    );
    app.handle_event(AppEvent::LoginRefused("Invalid credentials.".into()));
    assert_eq!(app.last_error.as_deref(), Some("Invalid credentials."));
    assert!(app.login.password.text().is_empty(), "typed again from scratch");

    // Enter with the field empty sends no password: the 401 asks for it again, it does not
    // say the (unsent) password was wrong.
    assert_eq!(type_and_send(&mut app, ""), login("ada@example.com", None));
    app.handle_event(AppEvent::LoginRefused("Invalid credentials.".into()));
    assert_eq!(app.last_error.as_deref(), Some("Type the password."));
    assert!(app.login.asks_password && app.login.focus == LoginField::Password);
    // A new account's password that the server refuses (422) says why.
    assert_eq!(
        type_and_send(&mut app, "short"),
        login("ada@example.com", Some("short"))
    );
    app.handle_event(AppEvent::Failed("Field password: use at least 8 characters.".into()));
    assert_eq!(
        app.last_error.as_deref(),
        Some("Field password: use at least 8 characters.")
    );
    assert!(!app.logging_in);

    key(&mut app, KeyCode::Tab);
    assert_eq!(app.login.focus, LoginField::Email);
    assert_eq!(app.login.email.text(), "ada@example.com");
}

#[test]
fn after_the_session_expired_logging_in_again_reopens_the_chat_with_the_unsent_message() {
    use kafka_tui::app::{RestAnswer, Screen};
    let mut app = fixtures::chat();
    assert_eq!(app.handle_event(AppEvent::SessionExpired), [Command::Disconnect]);
    assert_eq!(app.screen, Screen::Login);
    assert!(app.chat.is_none() && app.user.is_none() && app.token().is_none());
    assert!(app.last_error.as_deref().unwrap().contains("session expired"));
    assert!(app.handle_event(AppEvent::SessionExpired).is_empty(), "once is enough");

    let commands = app.handle_event(AppEvent::Rest(RestAnswer::LoggedIn(fixtures::login())));
    assert_eq!(
        commands,
        [Command::Connect {
            chat_id: CHAT_ID.into()
        }]
    );
    let chat = app.chat.as_ref().unwrap();
    assert_eq!(chat.input.text(), "Now also confirm by SMS");

    // Another account does not get that chat.
    app.handle_event(AppEvent::SessionExpired);
    let mut other = fixtures::login();
    other.email = "bob@example.com".into();
    assert!(app.handle_event(AppEvent::Rest(RestAnswer::LoggedIn(other))).is_empty());
    assert_eq!((app.screen, app.chat.is_none()), (Screen::Browser, true));
}

/// On PostgreSQL, progress events travel through LISTEN/NOTIFY and can trail the reply: the
/// run's late progress must not mark the agent busy again, while the next run's still does.
#[test]
fn progress_events_that_trail_the_reply_do_not_revive_the_spinner() {
    use kafka_protocol::ws::{ChatEvent, ServerFrame};
    let mut chat = kafka_tui::app::ChatState::new("chat-1", "Chat");
    let progress = |stage: &str| {
        ServerFrame::Event(ChatEvent::AgentProgress {
            stage: stage.into(),
            label: stage.into(),
            usage: None,
        })
    };
    chat.prompt_sent();
    chat.apply_frame(progress("generating"));
    chat.apply_frame(ServerFrame::Text("The answer.".into()));
    assert!(!chat.agent_busy);
    chat.apply_frame(progress("validating"));
    assert!(!chat.agent_busy, "a late event of the finished run");
    chat.apply_frame(progress("done"));
    assert!(!chat.agent_busy);
    // Another client's run afterwards shows as usual.
    chat.apply_frame(progress("generating"));
    assert!(chat.agent_busy);
}

/// The answer streams into the chat as it is written; a new attempt starts afresh; the reply
/// ends it; the `done` event's usage stays for the status line.
#[test]
fn streamed_output_grows_and_goes_with_the_reply() {
    use kafka_protocol::ws::{ChatEvent, ServerFrame, TokenUsage};
    let mut chat = kafka_tui::app::ChatState::new("chat-1", "Chat");
    let output = |attempt: u32, delta: &str| {
        ServerFrame::Event(ChatEvent::AgentOutput {
            stage: "generating".into(),
            attempt,
            delta: delta.into(),
        })
    };
    chat.prompt_sent();
    chat.apply_frame(output(1, "## a.based\n```based\nloop:\n  "));
    let live = chat.live.as_ref().expect("the answer shows as it comes");
    assert_eq!((live.attempt, live.line_count()), (1, 4));
    chat.apply_frame(output(2, "```based\n"));
    assert_eq!(chat.live.as_ref().map(|l| (l.attempt, l.line_count())), Some((2, 1)));
    let usage = TokenUsage {
        prompt_tokens: 1,
        completion_tokens: 2,
        total_tokens: 3,
    };
    chat.apply_frame(ServerFrame::Event(ChatEvent::AgentProgress {
        stage: "done".into(),
        label: "done".into(),
        usage: Some(usage),
    }));
    chat.apply_frame(ServerFrame::Text("The answer.".into()));
    assert!(chat.live.is_none() && !chat.agent_busy && chat.run_started.is_none());
    assert_eq!(chat.last_usage, Some(usage));
    // A late frame of the finished run does not bring it back.
    chat.apply_frame(output(2, "more"));
    assert!(chat.live.is_none());
}

#[test]
fn a_diff_is_highlighted_off_the_ui_thread_and_then_shown_in_colour() {
    let mut app = fixtures::chat_with(fixtures::CODE);
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Char('v'));
    let commands = app.handle_event(AppEvent::Frame {
        chat_id: CHAT_ID.into(),
        frame: kafka_protocol::ws::ServerFrame::Action(kafka_protocol::ws::ServerAction::Diff(
            kafka_protocol::ws::VersionDiff {
                file_id: FILE_ID.into(),
                from_version_id: "v-1".into(),
                to_version_id: "v-2".into(),
                diff: fixtures::DIFF.into(),
            },
        )),
    });
    // Shown at once, plain; its highlighting is asked of a background task.
    let diff = |app: &App| {
        app.chat
            .as_ref()
            .unwrap()
            .versions
            .as_ref()
            .unwrap()
            .diff
            .clone()
            .unwrap()
    };
    let plain = diff(&app);
    assert!(
        plain
            .lines
            .iter()
            .all(|line| line.spans.iter().all(|s| s.style.fg.is_none()))
    );
    let asked: Vec<_> = commands
        .iter()
        .filter_map(|command| match command {
            Command::Highlight { key, text, .. } if *key == plain.key => Some(text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(asked, std::slice::from_ref(&plain.text), "{commands:?}");

    // What the task answers replaces the plain rows, one line per row.
    let lines = kafka_tui::highlight::highlight(&plain.text, kafka_tui::highlight::Background::Dark);
    app.handle_event(AppEvent::Highlighted { key: plain.key, lines });
    let coloured = diff(&app);
    assert_eq!(coloured.lines.len(), coloured.parsed.rows.len());
    assert!(
        coloured
            .lines
            .iter()
            .any(|line| line.spans.iter().any(|s| s.style.fg.is_some()))
    );
}

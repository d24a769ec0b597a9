//! Every screen on ratatui's TestBackend at 80×24 and 120×40, as insta snapshots; and every
//! screen at small and odd sizes, which must render without panicking.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a panic is the failure report"
)]

mod fixtures;

use crossterm::event::KeyCode;
use fixtures::key;
use kafka_protocol::ws::{ChatEvent, ServerFrame, TokenUsage};
use kafka_tui::app::{App, AppEvent};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const SIZES: [(u16, u16); 2] = [(80, 24), (120, 40)];

fn draw(app: &App, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| kafka_tui::ui::render(app, frame)).unwrap();
    terminal
}

fn snapshot(name: &str, app: &App) {
    for (width, height) in SIZES {
        let terminal = draw(app, width, height);
        insta::assert_snapshot!(format!("{name}_{width}x{height}"), terminal.backend());
    }
}

fn login() -> App {
    let mut app = App::new("embedded server");
    app.paste("ada@example.com");
    app
}

/// The server wants a password; it is being typed (masked).
fn login_password() -> App {
    let mut app = login();
    key(&mut app, KeyCode::Enter);
    app.handle_event(AppEvent::LoginRefused("Invalid credentials.".into()));
    app.paste("hunter2");
    app
}

fn busy_chat() -> App {
    let mut app = fixtures::chat();
    app.handle_event(AppEvent::Frame {
        chat_id: fixtures::CHAT_ID.into(),
        frame: ServerFrame::Event(ChatEvent::AgentProgress {
            stage: "validating".into(),
            label: "validating attempt 2/5".into(),
            usage: None,
        }),
    });
    without_clock(app)
}

/// The elapsed time depends on the clock, so snapshots leave it out.
fn without_clock(mut app: App) -> App {
    if let Some(chat) = app.chat.as_mut() {
        chat.run_started = None;
    }
    app
}

fn event(app: &mut App, event: ChatEvent) {
    app.handle_event(AppEvent::Frame {
        chat_id: fixtures::CHAT_ID.into(),
        frame: ServerFrame::Event(event),
    });
}

/// The agent writing a file, half-way through a line; the last run's tokens in the status.
fn streaming_chat() -> App {
    let mut app = fixtures::chat();
    let progress = |stage: &str, usage| ChatEvent::AgentProgress {
        stage: stage.into(),
        label: stage.into(),
        usage,
    };
    let usage = TokenUsage {
        prompt_tokens: 1200,
        completion_tokens: 345,
        total_tokens: 1545,
    };
    event(&mut app, progress("done", Some(usage)));
    app.handle_event(AppEvent::Frame {
        chat_id: fixtures::CHAT_ID.into(),
        frame: ServerFrame::Text("The last answer.".into()),
    });
    event(&mut app, progress("generating", None));
    let code: String = fixtures::CODE.lines().take(6).map(|l| format!("{l}\n")).collect();
    let answer = format!("## booking.based\n```based\n{code}    say(\"Boo");
    // Pieces cut anywhere, as the server's coalesced frames are.
    for piece in answer
        .as_bytes()
        .chunks(9)
        .map(|c| String::from_utf8_lossy(c).into_owned())
    {
        event(
            &mut app,
            ChatEvent::AgentOutput {
                stage: "generating".into(),
                attempt: 1,
                delta: piece,
            },
        );
    }
    without_clock(app)
}

fn with_key(mut app: App, code: KeyCode) -> App {
    key(&mut app, code);
    app
}

/// Lines 2–4 of the code selected with `V`, `j`, `j`.
fn code_selection() -> App {
    let mut app = fixtures::chat_with(fixtures::CODE);
    for code in [KeyCode::Esc, KeyCode::Tab, KeyCode::Tab, KeyCode::Char('j')] {
        key(&mut app, code);
    }
    for code in [KeyCode::Char('V'), KeyCode::Char('j'), KeyCode::Char('j')] {
        key(&mut app, code);
    }
    app
}

fn add_model() -> App {
    let mut app = fixtures::logged_in();
    key(&mut app, KeyCode::Char('m'));
    key(&mut app, KeyCode::Char('a'));
    key(&mut app, KeyCode::Enter);
    app.paste("local");
    key(&mut app, KeyCode::Tab);
    app.paste("http://localhost:11434/v1");
    key(&mut app, KeyCode::Tab);
    app.paste("sk-secret");
    app
}

/// Every screen and popup, by name.
fn screens() -> Vec<(&'static str, App)> {
    vec![
        ("login", login()),
        ("login_password", login_password()),
        ("browser", fixtures::logged_in()),
        ("chat", fixtures::chat()),
        ("chat_busy", busy_chat()),
        ("chat_streaming", streaming_chat()),
        ("versions", fixtures::versions()),
        ("code_selection", code_selection()),
        ("confirm_revert", with_key(fixtures::versions(), KeyCode::Char('r'))),
        ("help", with_key(fixtures::logged_in(), KeyCode::Char('?'))),
        ("models", with_key(fixtures::logged_in(), KeyCode::Char('m'))),
        ("add_model", add_model()),
        ("new_chat", with_key(fixtures::logged_in(), KeyCode::Char('n'))),
        ("delete_chat", with_key(fixtures::logged_in(), KeyCode::Char('D'))),
    ]
}

#[test]
fn every_screen_matches_its_snapshot() {
    for (name, app) in screens() {
        snapshot(name, &app);
    }
}

#[test]
fn every_screen_renders_at_any_size() {
    for (_, app) in screens() {
        for (width, height) in [(40, 12), (41, 13), (20, 6), (1, 1), (0, 0), (300, 80), (12, 40)] {
            draw(&app, width, height);
        }
    }
}

#[test]
fn long_lines_and_wide_characters_render_in_the_code_pane() {
    let code = format!("say(\"{}\")\nsay(\"日本語のテキスト🙂\")\n", "x".repeat(500));
    let app = fixtures::chat_with(&code);
    let terminal = draw(&app, 80, 24);
    let screen = format!("{:?}", terminal.backend());
    assert!(screen.contains("日本語"), "{screen}");
}

#[test]
fn a_10000_line_file_scrolls_to_its_end() {
    let code: String = (1..=10_000).map(|n| format!("say(\"line {n}\")\n")).collect();
    let mut app = fixtures::chat_with(&code);
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Tab);
    for _ in 0..700 {
        key(&mut app, KeyCode::PageDown);
    }
    let terminal = draw(&app, 120, 40);
    let screen = format!("{:?}", terminal.backend());
    assert!(screen.contains("10000 │ say(\"line 10000\")"), "{screen}");
}

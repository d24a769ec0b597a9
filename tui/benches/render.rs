//! Frame time of the chat view at 120×40: showing a 2,000-line highlighted `.based` file,
//! scrolling a page per frame; and watching the agent stream a 2,000-line file, a frame per
//! `agent_output` (the server sends at most ~20 a second; here each carries 3 lines).
//! Run with `cargo bench -p kafka-tui --bench render`.

// Shared with the snapshot tests; the bench needs only part of it.
#[allow(dead_code)]
#[path = "../tests/fixtures/mod.rs"]
mod fixtures;

use std::time::{Duration, Instant};

use crossterm::event::KeyCode;
use kafka_protocol::ws::{ChatEvent, ServerFrame};
use kafka_tui::app::{App, AppEvent};
use kafka_tui::highlight;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const LINES: usize = 2_000;
const FRAMES: usize = 2_000;

/// A realistic `.based` file of `LINES` lines: the fixture's flow, repeated.
fn big_file() -> String {
    let block: Vec<&str> = fixtures::CODE.lines().collect();
    (0..LINES).map(|n| format!("{}\n", block[n % block.len()])).collect()
}

fn main() {
    let code = big_file();
    let started = Instant::now();
    let lines = highlight::highlight(&code, highlight::Background::Dark);
    let highlight_time = started.elapsed();

    let mut app: App = fixtures::chat_with(&code);
    // The driver would highlight this big file in the background; the bench does it above.
    app.highlights.insert(highlight::content_key(&code), lines);
    fixtures::key(&mut app, KeyCode::Esc);
    fixtures::key(&mut app, KeyCode::Tab);
    fixtures::key(&mut app, KeyCode::Tab);

    let mut terminal = Terminal::new(TestBackend::new(120, 40)).expect("test terminal");
    let mut frame_times = Vec::with_capacity(FRAMES);
    for frame in 0..FRAMES {
        // Down through the file, then back up, a page per frame.
        let key = if (frame / 130) % 2 == 0 {
            KeyCode::PageDown
        } else {
            KeyCode::PageUp
        };
        fixtures::key(&mut app, key);
        let started = Instant::now();
        terminal.draw(|f| kafka_tui::ui::render(&app, f)).expect("draw");
        frame_times.push(started.elapsed());
    }
    println!("highlighting {LINES} lines once: {highlight_time:?}");
    report("render 120x40, scrolling", frame_times);
    report("render 120x40, a 2,000-line answer streaming", stream_frames(&code));
}

/// Each frame: one `agent_output` of three lines applied, then a draw.
fn stream_frames(code: &str) -> Vec<Duration> {
    let mut app: App = fixtures::chat_with(fixtures::CODE);
    let event = |app: &mut App, event: ChatEvent| {
        app.handle_event(AppEvent::Frame {
            chat_id: fixtures::CHAT_ID.into(),
            frame: ServerFrame::Event(event),
        });
    };
    event(
        &mut app,
        ChatEvent::AgentProgress {
            stage: "generating".into(),
            label: "generating".into(),
            usage: None,
        },
    );
    let answer = format!("## big.based\n```based\n{code}```\n");
    let lines: Vec<&str> = answer.split_inclusive('\n').collect();
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).expect("test terminal");
    let mut frame_times = Vec::new();
    for piece in lines.chunks(3) {
        let started = Instant::now();
        event(
            &mut app,
            ChatEvent::AgentOutput {
                stage: "generating".into(),
                attempt: 1,
                delta: piece.concat(),
            },
        );
        terminal.draw(|f| kafka_tui::ui::render(&app, f)).expect("draw");
        frame_times.push(started.elapsed());
    }
    frame_times
}

fn report(what: &str, mut frame_times: Vec<Duration>) {
    frame_times.sort();
    let frames = frame_times.len();
    let mean = frame_times.iter().sum::<Duration>() / frames as u32;
    let percentile = |p: usize| frame_times[(frames * p / 100).min(frames - 1)];
    println!(
        "{what}, {frames} frames: mean {mean:?}, p50 {:?}, p99 {:?}, max {:?}",
        percentile(50),
        percentile(99),
        frame_times[frames - 1]
    );
}

//! Frame time of the chat view showing a 2,000-line highlighted `.based` file at 120×40,
//! scrolling a page per frame. Run with `cargo bench -p kafka-tui --bench render`.

// Shared with the snapshot tests; the bench needs only part of it.
#[allow(dead_code)]
#[path = "../tests/fixtures/mod.rs"]
mod fixtures;

use std::time::{Duration, Instant};

use crossterm::event::KeyCode;
use kafka_tui::app::App;
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
    let lines = highlight::highlight(&code);
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
    frame_times.sort();
    let mean = frame_times.iter().sum::<Duration>() / FRAMES as u32;
    let percentile = |p: usize| frame_times[(FRAMES * p / 100).min(FRAMES - 1)];
    println!("highlighting {LINES} lines once: {highlight_time:?}");
    println!(
        "render 120x40, {FRAMES} frames: mean {mean:?}, p50 {:?}, p99 {:?}, max {:?}",
        percentile(50),
        percentile(99),
        frame_times[FRAMES - 1]
    );
}

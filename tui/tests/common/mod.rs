//! Drives the real `Driver` with key events and renders it on ratatui's `TestBackend`.

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use kafka_tui::app::App;
use kafka_tui::driver::Driver;
use kafka_tui::net::Rest;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

/// How long a test waits for the app to reach a state.
const WAIT: Duration = Duration::from_secs(15);

pub struct Harness {
    pub driver: Driver,
    terminal: Terminal<TestBackend>,
}

impl Harness {
    pub fn new(base_url: &str, width: u16, height: u16) -> Self {
        let driver = Driver::new(App::new("test server"), Rest::new(base_url));
        let terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
        Harness { driver, terminal }
    }

    pub fn app(&self) -> &App {
        &self.driver.app
    }

    pub fn press(&mut self, code: KeyCode) {
        self.driver.key(KeyEvent::new(code, KeyModifiers::NONE));
    }

    pub fn press_with(&mut self, code: KeyCode, modifiers: KeyModifiers) {
        self.driver.key(KeyEvent::new(code, modifiers));
    }

    pub fn char(&mut self, c: char) {
        self.press(KeyCode::Char(c));
    }

    pub fn type_text(&mut self, text: &str) {
        for c in text.chars() {
            self.char(c);
        }
    }

    /// Feeds bus events to the app until `done` holds; fails after [`WAIT`].
    pub async fn wait_for(&mut self, what: &str, done: impl Fn(&App) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !done(&self.driver.app) {
            match tokio::time::timeout_at(deadline, self.driver.next_event()).await {
                Ok(Some(event)) => self.driver.event(event),
                _ => {
                    let error = self.driver.app.last_error.clone();
                    panic!(
                        "timed out waiting for: {what}\nlast error: {error:?}\nscreen:\n{}",
                        self.screen()
                    )
                }
            }
        }
    }

    /// Draws the app and returns the screen as text, one line per row.
    pub fn screen(&mut self) -> String {
        let app = &self.driver.app;
        self.terminal
            .draw(|frame| kafka_tui::ui::render(app, frame))
            .expect("draw");
        let buffer = self.terminal.backend().buffer();
        let width = usize::from(buffer.area.width);
        buffer
            .content
            .chunks(width)
            .map(|row| row.iter().map(|cell| cell.symbol()).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The style of the first cell showing `word` (after a draw).
    pub fn style_of(&mut self, word: &str) -> Option<ratatui::style::Style> {
        let screen = self.screen();
        let buffer = self.terminal.backend().buffer();
        let width = usize::from(buffer.area.width);
        for (row, line) in screen.lines().enumerate() {
            let Some(at) = line.find(word) else { continue };
            // Cells hold one symbol each; count the symbols before the match.
            let column = line[..at].chars().count();
            return Some(buffer.content[row * width + column].style());
        }
        None
    }
}

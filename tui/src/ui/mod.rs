//! Rendering: `render(&App, &mut Frame)` draws the whole screen from the state alone.

pub mod browser;
pub mod chat;
pub mod code;
pub mod diff;
pub mod login;
pub mod popups;
pub mod status;
pub mod versions;
pub mod wrap;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Paragraph};

use crate::app::{App, Screen};

pub fn render(app: &App, frame: &mut Frame) {
    let [body, status_line, footer_line] = screen_layout(frame.area());
    match app.screen {
        Screen::Login => login::render(app, frame, body),
        Screen::Browser => browser::render(app, frame, body),
        Screen::Chat => chat::render(app, frame, body),
    }
    status::render(app, frame, status_line);
    render_footer(app, frame, footer_line);
    popups::render(app, frame);
}

/// The screen's body, status bar and footer.
fn screen_layout(area: Rect) -> [Rect; 3] {
    Layout::vertical([Constraint::Min(1), Constraint::Length(1), Constraint::Length(1)]).areas(area)
}

/// The chat pane at a terminal cell, for the mouse wheel; `None` off the chat view's panes.
pub fn pane_at(app: &App, screen: Rect, column: u16, row: u16) -> Option<crate::app::Pane> {
    let chat = app
        .chat
        .as_ref()
        .filter(|_| app.screen == Screen::Chat && app.popup.is_none())?;
    let [body, _, _] = screen_layout(screen);
    let position = ratatui::layout::Position { x: column, y: row };
    chat::areas(chat, body)
        .into_iter()
        .find(|(_, area)| area.contains(position))
        .map(|(pane, _)| pane)
}

/// The key hints of the contexts in force, from the keymap.
fn render_footer(app: &App, frame: &mut Frame, area: Rect) {
    let hints = match app.screen {
        // The login screen has no keymap context: it only types, and its keys are fixed.
        Screen::Login if app.login.asks_password => {
            vec![("Enter", "log in"), ("Tab", "email / password"), ("Esc/^C", "quit")]
        }
        Screen::Login => vec![("Enter", "log in"), ("Esc/^C", "quit")],
        _ => app.keymap.footer_hints(&app.contexts()),
    };
    let mut spans = Vec::new();
    for (keys, what) in hints {
        spans.push(Span::styled(format!(" {keys} "), key_style()));
        spans.push(Span::raw(format!(" {what}  ")));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

pub fn key_style() -> Style {
    Style::default().fg(Color::Black).bg(Color::Cyan)
}

/// A pane's frame: its title, bright borders when it has focus.
pub fn pane(title: impl Into<Line<'static>>, focused: bool) -> Block<'static> {
    let border = if focused {
        Style::default().fg(Color::Cyan).add_modifier(Modifier::BOLD)
    } else {
        Style::default().fg(Color::DarkGray)
    };
    Block::default()
        .borders(Borders::ALL)
        .border_type(if focused { BorderType::Thick } else { BorderType::Plain })
        .border_style(border)
        .title(title)
}

pub fn selected_style() -> Style {
    Style::default().add_modifier(Modifier::REVERSED)
}

/// Lines selected with `V`: a blue tint that reads on dark and light terminals.
pub fn selection_style(background: crate::highlight::Background) -> Style {
    let tint = match background {
        crate::highlight::Background::Dark => Color::Rgb(40, 60, 110),
        crate::highlight::Background::Light => Color::Rgb(200, 215, 250),
    };
    Style::default().bg(tint)
}

pub fn dim() -> Style {
    Style::default().fg(Color::DarkGray)
}

/// The first line index to show so that `selected` stays visible in `height` rows.
pub fn scroll_for(selected: usize, height: usize) -> usize {
    (selected + 1).saturating_sub(height.max(1))
}

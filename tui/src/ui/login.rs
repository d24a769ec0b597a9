//! The login screen: one email field.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

use super::{dim, pane};
use crate::app::{App, SPINNER};

/// What the login screen says while it waits.
const WAITING: &str = "logging in…";

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let [_, middle, _] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(8), Constraint::Fill(1)]).areas(area);
    let [_, column, _] =
        Layout::horizontal([Constraint::Fill(1), Constraint::Max(60), Constraint::Fill(1)]).areas(middle);
    let [title, field, hint] =
        Layout::vertical([Constraint::Length(2), Constraint::Length(3), Constraint::Length(3)]).areas(column);
    let heading = Line::styled(
        "Kafka: chat Based agents into existence",
        Style::default().fg(Color::Cyan).add_modifier(Modifier::BOLD),
    );
    frame.render_widget(Paragraph::new(heading).centered(), title);
    let block = pane(" Email ", true);
    let inner = block.inner(field);
    let (rows, cursor) = app.email.layout(inner.width.saturating_sub(1), false);
    let shown = rows.last().cloned().unwrap_or_default();
    frame.render_widget(Paragraph::new(shown).block(block), field);
    if app.popup.is_none() && inner.width > 0 && inner.height > 0 {
        frame.set_cursor_position((inner.x + cursor.1.min(inner.width - 1), inner.y));
    }
    let message = if app.logging_in {
        format!("{} {WAITING}", SPINNER[app.spinner])
    } else {
        "Type your email and press Enter. A new email makes a new account.".into()
    };
    frame.render_widget(
        Paragraph::new(message)
            .style(dim())
            .wrap(ratatui::widgets::Wrap { trim: true }),
        hint,
    );
}

//! The login screen: the email field, and the password field (masked) once the server asked
//! for a password.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

use super::{dim, pane};
use crate::app::{App, LoginField, SPINNER};
use crate::text_input::TextInput;

/// What the login screen says while it waits.
const WAITING: &str = "logging in…";

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let form = &app.login;
    let fields = if form.asks_password { 2 } else { 1 };
    let [_, middle, _] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(5 + 3 * fields),
        Constraint::Fill(1),
    ])
    .areas(area);
    let [_, column, _] =
        Layout::horizontal([Constraint::Fill(1), Constraint::Max(60), Constraint::Fill(1)]).areas(middle);
    let [title, email, password, hint] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(3),
        Constraint::Length(3 * (fields - 1)),
        Constraint::Length(3),
    ])
    .areas(column);
    let heading = Line::styled(
        "Kafka: chat Based agents into existence",
        Style::default().fg(Color::Cyan).add_modifier(Modifier::BOLD),
    );
    frame.render_widget(Paragraph::new(heading).centered(), title);
    let typing = app.popup.is_none();
    let focus = form.focus;
    render_field(
        frame,
        email,
        " Email ",
        &form.email,
        false,
        typing && focus == LoginField::Email,
    );
    if form.asks_password {
        let focused = typing && focus == LoginField::Password;
        render_field(frame, password, " Password ", &form.password, true, focused);
    }
    frame.render_widget(
        Paragraph::new(hint_text(app))
            .style(dim())
            .wrap(ratatui::widgets::Wrap { trim: true }),
        hint,
    );
}

/// One single-line field; the cursor goes to the focused one. A password shows as dots.
fn render_field(frame: &mut Frame, area: Rect, title: &str, input: &TextInput, masked: bool, focused: bool) {
    let block = pane(title.to_owned(), focused);
    let inner = block.inner(area);
    let (rows, cursor) = input.layout(inner.width.saturating_sub(1), masked);
    let shown = rows.last().cloned().unwrap_or_default();
    frame.render_widget(Paragraph::new(shown).block(block), area);
    if focused && inner.width > 0 && inner.height > 0 {
        frame.set_cursor_position((inner.x + cursor.1.min(inner.width - 1), inner.y));
    }
}

fn hint_text(app: &App) -> String {
    if app.logging_in {
        format!("{} {WAITING}", SPINNER[app.spinner])
    } else if app.login.asks_password {
        "The server wants a password: type it and press Enter (a new email's account gets this one). \
         Tab goes back to the email."
            .into()
    } else {
        "Type your email and press Enter. A new email makes a new account.".into()
    }
}

//! The status bar: server, connection, model, mode, agent progress, the last error, the user.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::app::{App, Connection, SPINNER, Screen};

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let bar = Style::default().bg(Color::DarkGray).fg(Color::White);
    let mut spans = vec![Span::styled(
        format!(" {} ", app.server_label),
        Style::default().add_modifier(Modifier::BOLD),
    )];
    if app.screen == Screen::Chat {
        spans.push(connection(app));
    }
    let model = app.model.as_deref().unwrap_or("no model (m)");
    spans.push(Span::raw(format!("│ {model} │ {} ", app.mode.label())));
    if let Some(progress) = app
        .chat
        .as_ref()
        .filter(|c| c.agent_busy)
        .and_then(|c| c.progress.as_deref())
    {
        let elapsed = app
            .chat
            .as_ref()
            .and_then(|c| crate::live::since(c.run_started))
            .map_or_else(String::new, |e| format!("{e} "));
        spans.push(Span::styled(
            format!("│ {} {progress} {elapsed}", SPINNER[app.spinner]),
            Style::default().fg(Color::Yellow),
        ));
    }
    if let Some(usage) = app.chat.as_ref().and_then(|c| c.last_usage) {
        spans.push(Span::raw(format!(
            "│ {} tokens ({} in, {} out) ",
            usage.total_tokens, usage.prompt_tokens, usage.completion_tokens
        )));
    }
    if let Some(error) = app.last_error.as_deref() {
        spans.push(Span::styled(
            format!("│ {error} "),
            Style::default().fg(Color::LightRed).add_modifier(Modifier::BOLD),
        ));
    } else if let Some(notice) = app.notice.as_deref() {
        spans.push(Span::styled(
            format!("│ {notice} "),
            Style::default().fg(Color::LightGreen),
        ));
    }
    // Who is logged in matters least when space runs out, so it comes last.
    if let Some(user) = app.user.as_ref() {
        spans.push(Span::raw(format!("│ {} ", user.email)));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)).style(bar), area);
}

fn connection(app: &App) -> Span<'static> {
    match app.connection {
        Connection::Connected => Span::styled("● live ", Style::default().fg(Color::LightGreen)),
        Connection::Connecting => Span::styled(
            format!("{} connecting ", SPINNER[app.spinner]),
            Style::default().fg(Color::Yellow),
        ),
        Connection::Retrying { attempt, delay_ms } => Span::styled(
            format!("○ reconnecting (try {attempt}, in {:.1}s) ", delay_ms as f64 / 1000.0),
            Style::default().fg(Color::LightRed),
        ),
        Connection::Idle => Span::styled("○ offline ", Style::default().fg(Color::Gray)),
    }
}

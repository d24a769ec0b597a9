//! The chat view: conversation and input on the left, files and code (or versions) on the right.

use kafka_protocol::ws::ConversationMessage;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{List, ListItem, ListState, Paragraph};
use serde_json::Value;

use super::wrap::wrap;
use super::{code, dim, pane, selected_style, versions};
use crate::app::{App, ChatState, FileEntry, Pane, SPINNER, message_text};
use crate::live::{self, LiveAnswer, LiveLine};

/// Input rows shown before the input box scrolls.
const INPUT_ROWS: u16 = 6;
/// Lines of a file shown inside its card in the conversation.
const CARD_PREVIEW: usize = 3;

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let Some(chat) = app.chat.as_ref() else { return };
    let [(_, conversation), (_, input), (_, files), (_, code_area)] = areas(chat, area);
    render_conversation(app, chat, frame, conversation);
    render_input(app, chat, frame, input);
    render_files(chat, frame, files);
    if chat.versions.is_some() {
        versions::render(chat, frame, code_area);
    } else {
        code::render(app, chat, frame, code_area);
    }
}

/// Where each pane goes: conversation and input on the left, files and code on the right.
pub fn areas(chat: &ChatState, area: Rect) -> [(Pane, Rect); 4] {
    let split = if area.width >= 100 { 45 } else { 50 };
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(split), Constraint::Percentage(100 - split)]).areas(area);
    let input_height = input_height(chat, left);
    let [conversation, input] = Layout::vertical([Constraint::Min(3), Constraint::Length(input_height)]).areas(left);
    let files_height = (chat.files().len() as u16 + 2).clamp(3, (right.height / 3).max(3));
    let [files, code] = Layout::vertical([Constraint::Length(files_height), Constraint::Min(3)]).areas(right);
    [
        (Pane::Conversation, conversation),
        (Pane::Input, input),
        (Pane::Files, files),
        (Pane::Code, code),
    ]
}

fn input_height(chat: &ChatState, area: Rect) -> u16 {
    let (rows, _) = chat.input.layout(area.width.saturating_sub(2), false);
    (rows.len() as u16).clamp(1, INPUT_ROWS) + 2
}

fn render_conversation(app: &App, chat: &ChatState, frame: &mut Frame, area: Rect) {
    let title = format!(" {} ", if chat.name.is_empty() { "Chat" } else { &chat.name });
    let block = pane(title, chat.focus == Pane::Conversation);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut lines = conversation_lines(&chat.conversation, usize::from(inner.width));
    if !chat.loaded {
        lines.push(Line::styled("loading the chat…", dim()));
    } else if chat.conversation.is_empty() {
        lines.extend(empty_chat_hint());
    }
    let height = usize::from(inner.height);
    if let Some(answer) = chat.live.as_ref() {
        lines.extend(live_lines(answer, usize::from(inner.width), height + chat.scroll_back));
    }
    if chat.agent_busy {
        let progress = chat.progress.as_deref().unwrap_or("working");
        let elapsed = live::since(chat.run_started).map_or_else(String::new, |e| format!(" · {e}"));
        lines.push(Line::styled(
            format!("{} agent: {progress}{elapsed}", SPINNER[app.spinner]),
            Style::default().fg(Color::Yellow),
        ));
    }
    let newest_top = lines.len().saturating_sub(height);
    let top = newest_top.saturating_sub(chat.scroll_back);
    let shown: Vec<Line> = lines.into_iter().skip(top).take(height).collect();
    frame.render_widget(Paragraph::new(shown), inner);
}

/// The answer being written: its last `rows` lines at most (only those can be on screen),
/// under a header; code clipped to the pane, prose wrapped.
fn live_lines(answer: &LiveAnswer, width: usize, rows: usize) -> Vec<Line<'static>> {
    let bar = Style::default().fg(Color::Magenta);
    let mut lines = vec![Line::from(vec![
        Span::styled("kafka", Style::default().fg(Color::Green).add_modifier(Modifier::BOLD)),
        Span::styled(
            format!(" writing · attempt {} · {} lines", answer.attempt, answer.line_count()),
            dim(),
        ),
    ])];
    let mut body = Vec::new();
    for line in answer.tail(rows) {
        match line {
            LiveLine::Prose(text) => body.extend(wrap(text, width).into_iter().map(Line::raw)),
            LiveLine::Marker(text) => body.push(Line::styled(text.clone(), dim())),
            LiveLine::Code(code) => {
                let mut spans = vec![Span::styled("▏ ", bar)];
                spans.extend(code.spans.iter().cloned());
                body.push(Line::from(spans).style(code.style));
            }
        }
    }
    match answer.partial() {
        ("", _) => {}
        (text, true) => body.push(Line::from(vec![
            Span::styled("▏ ", bar),
            Span::styled(text.to_owned(), Style::default().fg(Color::LightBlue)),
        ])),
        (text, false) => body.extend(wrap(text, width).into_iter().map(Line::raw)),
    }
    let skip = body.len().saturating_sub(rows);
    lines.extend(body.into_iter().skip(skip));
    lines
}

fn empty_chat_hint() -> Vec<Line<'static>> {
    [
        "Describe the agent you want, e.g. \"Write a Based agent that books a table\",",
        "and press Enter. The agent writes a .based file; then ask for changes.",
        "Press ? for every key.",
    ]
    .into_iter()
    .map(|text| Line::styled(text, dim()))
    .collect()
}

/// Every message as display lines, wrapped to `width`.
pub fn conversation_lines(conversation: &[ConversationMessage], width: usize) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    for message in conversation {
        let (who, style) = speaker(&message.role);
        lines.push(Line::styled(who.to_owned(), style.add_modifier(Modifier::BOLD)));
        if message.kind == "file" {
            lines.extend(file_card(&message.content, width));
        } else {
            let text_style = if message.role == "system" {
                dim()
            } else {
                Style::default()
            };
            lines.extend(text_lines(&message_text(message), width, text_style));
        }
        lines.push(Line::default());
    }
    lines
}

/// A text message wrapped to `width`; fenced code blocks get a bar in the margin and a
/// colour of their own, so they stand out (and `y` copies the last one).
fn text_lines(body: &str, width: usize, text_style: Style) -> Vec<Line<'static>> {
    let bar = Style::default().fg(Color::Magenta);
    let code = Style::default().fg(Color::LightBlue);
    let mut lines = Vec::new();
    let mut in_code = false;
    for line in body.split('\n') {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            lines.push(Line::styled(line.to_owned(), dim()));
        } else if in_code {
            let rows = wrap(line, width.saturating_sub(2));
            lines.extend(
                rows.into_iter()
                    .map(|row| Line::from(vec![Span::styled("▏ ", bar), Span::styled(row, code)])),
            );
        } else {
            lines.extend(wrap(line, width).into_iter().map(|row| Line::styled(row, text_style)));
        }
    }
    lines
}

fn speaker(role: &str) -> (&'static str, Style) {
    match role {
        "user" => ("you", Style::default().fg(Color::Cyan)),
        "assistant" => ("kafka", Style::default().fg(Color::Green)),
        _ => ("system", Style::default().fg(Color::Yellow)),
    }
}

/// A file message as a small card: the file's name, size and first lines.
fn file_card(content: &Value, width: usize) -> Vec<Line<'static>> {
    let border = Style::default().fg(Color::Magenta);
    let text = |key: &str| content.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    let (name, body, what) = if content.get("deleted_file_id").is_some() {
        (text("filename"), String::new(), "deleted".to_owned())
    } else if content.get("based_filename").is_some() {
        let body = text("based_content");
        let note = content.get("message").and_then(Value::as_str).unwrap_or("written");
        (
            text("based_filename"),
            body.clone(),
            format!("{note} · {} lines", body.lines().count()),
        )
    } else {
        (text("filename"), String::new(), "uploaded".to_owned())
    };
    let inner_width = width.saturating_sub(2).max(1);
    let mut card = vec![Line::from(vec![
        Span::styled("┌ ", border),
        Span::styled(name, Style::default().add_modifier(Modifier::BOLD)),
        Span::styled(format!(" · {what}"), dim()),
    ])];
    for row in body
        .lines()
        .take(CARD_PREVIEW)
        .flat_map(|line| wrap(line, inner_width).into_iter().take(1))
    {
        card.push(Line::from(vec![Span::styled("│ ", border), Span::styled(row, dim())]));
    }
    card.push(Line::styled("└", border));
    card
}

fn render_input(app: &App, chat: &ChatState, frame: &mut Frame, area: Rect) {
    let focused = chat.focus == Pane::Input;
    let title = if focused {
        " Message (Enter sends, Alt+Enter new line) "
    } else {
        " Message (Enter to type) "
    };
    let block = pane(title, focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let (rows, cursor) = chat.input.layout(inner.width, false);
    let height = usize::from(inner.height.max(1));
    let top = super::scroll_for(usize::from(cursor.0), height);
    let shown: Vec<Line> = rows.into_iter().skip(top).take(height).map(Line::from).collect();
    frame.render_widget(Paragraph::new(shown), inner);
    if focused && app.popup.is_none() && inner.width > 0 && inner.height > 0 {
        let row = (usize::from(cursor.0) - top) as u16;
        frame.set_cursor_position((inner.x + cursor.1.min(inner.width - 1), inner.y + row));
    }
}

fn render_files(chat: &ChatState, frame: &mut Frame, area: Rect) {
    let focused = chat.focus == Pane::Files;
    let block = pane(" Files ", focused);
    let files = chat.files();
    if files.is_empty() {
        let hint = Paragraph::new(Span::styled("none yet: ask the agent, or u to upload", dim())).block(block);
        frame.render_widget(hint, area);
        return;
    }
    let items: Vec<ListItem> = files.iter().map(file_item).collect();
    let list = List::new(items).block(block).highlight_style(selected_style());
    frame.render_stateful_widget(
        list,
        area,
        &mut ListState::default().with_selected(Some(chat.selected_file)),
    );
}

fn file_item(entry: &FileEntry) -> ListItem<'static> {
    match entry {
        FileEntry::Based(file) => ListItem::new(Line::from(vec![
            Span::styled("◆ ", Style::default().fg(Color::Green)),
            Span::raw(file.name.clone()),
            Span::styled(format!("  {} versions", file.versions.len()), dim()),
        ])),
        FileEntry::Text(file) => ListItem::new(Line::from(vec![
            Span::styled("◇ ", Style::default().fg(Color::Blue)),
            Span::raw(file.name.clone()),
            Span::styled(format!("  {}", file.kind), dim()),
        ])),
    }
}

//! The code pane: the selected file with line numbers, highlighted from the cache. Only the
//! visible lines are built, so a 10,000-line file scrolls as fast as a short one.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{dim, pane};
use crate::app::{App, ChatState, FileEntry, Pane};
use crate::highlight;

pub fn render(app: &App, chat: &ChatState, frame: &mut Frame, area: Rect) {
    let focused = chat.focus == Pane::Code;
    let Some((key, text, _)) = chat.shown_text() else {
        let hint = Paragraph::new(Span::styled("no file selected", dim()));
        frame.render_widget(hint.block(pane(" Code ", focused)), area);
        return;
    };
    let total = text.lines().count();
    let block = pane(title(chat, total), focused);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let height = usize::from(inner.height);
    let top = chat.code_top.min(total.saturating_sub(1));
    let code_lines: Vec<Line<'static>> = match app.highlights.get(key) {
        Some(cached) => cached.iter().skip(top).take(height).cloned().collect(),
        // Still being highlighted in the background: plain text meanwhile.
        None => text.lines().skip(top).take(height).flat_map(highlight::plain).collect(),
    };
    frame.render_widget(Paragraph::new(numbered(code_lines, top, total)), inner);
}

fn title(chat: &ChatState, total: usize) -> String {
    match chat.selected_entry() {
        Some(FileEntry::Based(file)) => format!(" {} · v{} · {total} lines ", file.name, file.versions.len()),
        Some(entry) => format!(" {} · {total} lines ", entry.name()),
        None => " Code ".into(),
    }
}

/// Prefixes each line with its number, the gutter as wide as the largest number.
pub fn numbered(lines: Vec<Line<'static>>, first: usize, total: usize) -> Vec<Line<'static>> {
    let width = total.max(1).to_string().len();
    lines
        .into_iter()
        .enumerate()
        .map(|(offset, line)| {
            let mut spans = vec![Span::styled(format!("{:>width$} │ ", first + offset + 1), dim())];
            spans.extend(line.spans);
            Line::from(spans)
        })
        .collect()
}

//! The code pane: the selected file with line numbers, highlighted from the cache. Only the
//! visible lines are built, so a 10,000-line file scrolls as fast as a short one.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{dim, pane, selection_style};
use crate::app::{App, ChatState, FileEntry, LineSelection, Pane};
use crate::highlight;
use unicode_width::UnicodeWidthChar;

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
    chat.code_rows.set(height);
    let top = chat.code_top.min(total.saturating_sub(1));
    let code_lines: Vec<Line<'static>> = match app.highlights.get(key) {
        Some(cached) => cached.iter().skip(top).take(height).cloned().collect(),
        // Still being highlighted in the background: plain text meanwhile.
        None => text.lines().skip(top).take(height).flat_map(highlight::plain).collect(),
    };
    let shifted = code_lines
        .into_iter()
        .map(|line| skip_columns(line, chat.code_left))
        .collect();
    frame.render_widget(Paragraph::new(numbered(shifted, top, total, chat.selection)), inner);
}

/// The line without its first `columns` display columns; a wide character cut in half
/// becomes a space so the rest stays aligned.
fn skip_columns(line: Line<'static>, columns: usize) -> Line<'static> {
    if columns == 0 {
        return line;
    }
    let mut to_skip = columns;
    let mut spans = Vec::new();
    for span in line.spans {
        if to_skip == 0 {
            spans.push(span);
            continue;
        }
        let mut kept = String::new();
        for c in span.content.chars() {
            let width = c.width().unwrap_or(0);
            if to_skip == 0 {
                kept.push(c);
            } else if width > to_skip {
                kept.push_str(&" ".repeat(width - to_skip));
                to_skip = 0;
            } else {
                to_skip -= width;
            }
        }
        if !kept.is_empty() {
            spans.push(Span::styled(kept, span.style));
        }
    }
    Line::from(spans)
}

/// The file, its version and length; while selecting, which lines are selected instead of the
/// length (short enough for an 80-column terminal).
fn title(chat: &ChatState, total: usize) -> String {
    let size = match chat.selection {
        Some(selection) => format!("{} of {total}", selection.label("line")),
        None => format!("{total} lines"),
    };
    match chat.selected_entry() {
        Some(FileEntry::Based(file)) => format!(" {} · v{} · {size} ", file.name, file.versions.len()),
        Some(entry) => format!(" {} · {size} ", entry.name()),
        None => " Code ".into(),
    }
}

/// Prefixes each line with its number, the gutter as wide as the largest number. Selected
/// lines are tinted and get a thick bar, so a selection shows even without colours.
pub fn numbered(
    lines: Vec<Line<'static>>,
    first: usize,
    total: usize,
    selection: Option<LineSelection>,
) -> Vec<Line<'static>> {
    let width = total.max(1).to_string().len();
    lines
        .into_iter()
        .enumerate()
        .map(|(offset, line)| {
            let number = first + offset;
            let selected = selection.is_some_and(|selection| selection.contains(number));
            let bar = if selected { '┃' } else { '│' };
            let mut spans = vec![Span::styled(format!("{:>width$} {bar} ", number + 1), dim())];
            spans.extend(line.spans);
            let line = Line::from(spans);
            if selected { line.style(selection_style()) } else { line }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::style::{Color, Style};

    #[test]
    fn skipping_columns_keeps_styles_and_alignment() {
        let line = Line::from(vec![
            Span::styled("say", Style::default().fg(Color::Red)),
            Span::raw("(\"日本\")"),
        ]);
        let shifted = skip_columns(line.clone(), 2);
        assert_eq!(shifted.to_string(), "y(\"日本\")");
        assert_eq!(shifted.spans[0].style.fg, Some(Color::Red));
        assert_eq!(
            skip_columns(line.clone(), 6).to_string(),
            " 本\")",
            "half a wide character is a space"
        );
        assert_eq!(skip_columns(line, 40).to_string(), "");
    }
}

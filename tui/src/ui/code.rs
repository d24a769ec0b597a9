//! The code pane: the selected file with line numbers, highlighted from the cache. Only the
//! visible lines are built, so a 10,000-line file scrolls as fast as a short one.

use kafka_protocol::rest::DiagnosticInfo;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{dim, pane, selection_style};
use crate::app::{App, ChatState, FileEntry, LineSelection, Pane};
use crate::highlight::{self, Background};
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
    let mut rows = numbered(shifted, top, total, chat.selection, chat.background);
    if let Some(diagnostics) = chat.shown_diagnostics().filter(|d| !d.is_empty()) {
        rows = with_carets(rows, text, diagnostics, top, total, chat.code_left);
        rows.truncate(height);
    }
    frame.render_widget(Paragraph::new(rows), inner);
}

/// Puts each diagnostic under its line: a caret (`^^^`) under the columns it names and its
/// message, like a compiler does. Rows are the numbered lines from `first` on.
fn with_carets(
    rows: Vec<Line<'static>>,
    text: &str,
    diagnostics: &[DiagnosticInfo],
    first: usize,
    total: usize,
    left: usize,
) -> Vec<Line<'static>> {
    let gutter = " ".repeat(total.max(1).to_string().len());
    let mut out = Vec::with_capacity(rows.len() + diagnostics.len());
    for (offset, (row, source)) in rows.into_iter().zip(text.lines().skip(first)).enumerate() {
        out.push(row);
        let number = first + offset + 1;
        for d in diagnostics.iter().filter(|d| d.line == number) {
            out.push(caret_line(&gutter, source, d, left));
        }
    }
    out
}

fn caret_line(gutter: &str, source: &str, d: &DiagnosticInfo, left: usize) -> Line<'static> {
    let column = d.column.max(1);
    let start: usize = source.chars().take(column - 1).map(|c| c.width().unwrap_or(0)).sum();
    let span_chars = if d.end_line == d.line && d.end_column > column {
        d.end_column - column
    } else {
        source.chars().count().saturating_sub(column - 1).max(1)
    };
    let style = match d.severity.as_str() {
        "error" => Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
        _ => Style::default().fg(Color::Yellow).add_modifier(Modifier::BOLD),
    };
    // Scrolled sideways past the column: the caret sits at the left edge, pointing on.
    let (pad, carets) = match start.checked_sub(left) {
        Some(pad) => (" ".repeat(pad), "^".repeat(span_chars.min(80))),
        None => (String::new(), "←".to_owned()),
    };
    Line::from(vec![
        Span::styled(format!("{gutter} │ "), dim()),
        Span::styled(
            format!("{pad}{carets} {}[{}]: {}", d.severity, d.code, d.message),
            style,
        ),
    ])
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
    let findings = match chat.shown_diagnostics() {
        Some([]) => " · valid".to_owned(),
        Some(diagnostics) => {
            let errors = diagnostics.iter().filter(|d| d.severity == "error").count();
            let warnings = diagnostics.len() - errors;
            let plural = |n: usize| if n == 1 { "" } else { "s" };
            format!(
                " · {errors} error{}, {warnings} warning{}",
                plural(errors),
                plural(warnings)
            )
        }
        None => String::new(),
    };
    match chat.selected_entry() {
        Some(FileEntry::Based(file)) => format!(" {} · v{} · {size}{findings} ", file.name, file.versions.len()),
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
    background: Background,
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
            if selected {
                line.style(selection_style(background))
            } else {
                line
            }
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

//! The diff pane: a gutter sized from the largest line number, `+`/`−` signs, tinted rows,
//! `⋮` between hunks, and the code itself highlighted.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{dim, pane, selection_style};
use crate::app::{ChatState, VersionsView};
use crate::diff::{Row, RowKind};
use crate::highlight::Background;

/// Row tints for added and removed lines: deep on dark terminals, pale on light ones.
fn tints(background: Background) -> (Color, Color) {
    match background {
        Background::Dark => (Color::Rgb(30, 70, 40), Color::Rgb(90, 35, 40)),
        Background::Light => (Color::Rgb(215, 245, 215), Color::Rgb(250, 220, 220)),
    }
}

pub fn render(chat: &ChatState, view: &VersionsView, title: String, frame: &mut Frame, area: Rect) {
    let title = match chat.selection {
        Some(selection) => format!("{title}· {} selected ", selection.label("row")),
        None => title,
    };
    let block = pane(title, false);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    chat.code_rows.set(usize::from(inner.height));
    let Some(diff) = view.diff.as_ref() else {
        frame.render_widget(Paragraph::new(Span::styled("loading the diff…", dim())), inner);
        return;
    };
    if diff.parsed.rows.is_empty() {
        frame.render_widget(Paragraph::new(Span::styled("no differences", dim())), inner);
        return;
    }
    let gutter = diff.parsed.max_line_number().max(1).to_string().len();
    let lines: Vec<Line> = diff
        .parsed
        .rows
        .iter()
        .zip(diff.lines.iter())
        .enumerate()
        .skip(view.diff_top)
        .take(usize::from(inner.height))
        .map(|(index, (row, code))| {
            let line = diff_line(row, code, gutter, tints(chat.background));
            match chat.selection {
                Some(selection) if selection.contains(index) => line.style(selection_style(chat.background)),
                _ => line,
            }
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

fn diff_line(row: &Row, code: &Line<'static>, gutter: usize, (added, removed): (Color, Color)) -> Line<'static> {
    let number = |n: Option<usize>| n.map_or(" ".repeat(gutter), |n| format!("{n:>gutter$}"));
    match row.kind {
        RowKind::Header => Line::styled(row.text.clone(), Style::default().add_modifier(Modifier::BOLD)),
        RowKind::Hunk => Line::styled(format!("⋮ {}", row.text), Style::default().fg(Color::Cyan)),
        RowKind::Context | RowKind::Added | RowKind::Removed => {
            let (sign, sign_style, background) = match row.kind {
                RowKind::Added => ("+", Style::default().fg(Color::Green), Some(added)),
                RowKind::Removed => ("−", Style::default().fg(Color::Red), Some(removed)),
                _ => (" ", Style::default(), None),
            };
            let gutter_text = format!("{} {} ", number(row.old_line), number(row.new_line));
            let mut spans = vec![
                Span::styled(gutter_text, dim()),
                Span::styled(format!("{sign} "), sign_style.add_modifier(Modifier::BOLD)),
            ];
            spans.extend(code.spans.iter().cloned());
            let line = Line::from(spans);
            match background {
                Some(color) => line.style(Style::default().bg(color)),
                None => line,
            }
        }
    }
}

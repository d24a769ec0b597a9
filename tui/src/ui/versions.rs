//! The versions view in place of the code pane: the file's versions, newest last, with
//! their +/− counts against the latest, above the diff of the selected one.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{List, ListItem, ListState};

use super::{diff, pane, selected_style};
use crate::app::{ChatState, Pane, short_time};
use crate::diff::ParsedDiff;

pub fn render(chat: &ChatState, frame: &mut Frame, area: Rect) {
    let (Some(view), Some(file)) = (chat.versions.as_ref(), chat.versions_file()) else {
        return;
    };
    let focused = chat.focus == Pane::Code;
    let list_height = (file.versions.len() as u16 + 2).clamp(3, (area.height / 3).max(3));
    let [list_area, diff_area] = Layout::vertical([Constraint::Length(list_height), Constraint::Min(3)]).areas(area);
    let latest = file.versions.len().saturating_sub(1);
    let items: Vec<ListItem> = file
        .versions
        .iter()
        .enumerate()
        .map(|(index, version)| {
            let counts = ParsedDiff::parse(&version.diff);
            let mark = if view.base == Some(index) { "◆ " } else { "  " };
            let tail = if index == latest {
                "  latest".to_owned()
            } else {
                String::new()
            };
            ListItem::new(Line::from(vec![
                Span::raw(format!("{mark}v{:<3} {}  ", index + 1, short_time(&version.timestamp))),
                Span::styled(format!("+{}", counts.added), Style::default().fg(Color::Green)),
                Span::raw(" "),
                Span::styled(format!("−{}", counts.removed), Style::default().fg(Color::Red)),
                Span::styled(tail, Style::default().fg(Color::Cyan)),
            ]))
        })
        .collect();
    let title = format!(" Versions of {} (+/− to latest) ", file.name);
    let list = List::new(items)
        .block(pane(title, focused))
        .highlight_style(selected_style());
    frame.render_stateful_widget(
        list,
        list_area,
        &mut ListState::default().with_selected(Some(view.selected)),
    );
    let from = view.base.unwrap_or(view.selected);
    let to = if view.base.is_some() {
        format!("v{}", view.selected + 1)
    } else {
        "latest".to_owned()
    };
    let title = format!(" {}: v{} → {to} ", file.name, from + 1);
    diff::render(chat, view, title, frame, diff_area);
}

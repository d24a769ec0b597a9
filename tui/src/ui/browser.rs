//! The browser: workspaces on the left; the selected workspace's chats and files on the right.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{List, ListItem, ListState, Paragraph};

use super::{dim, pane, selected_style};
use crate::app::{App, BrowserFocus, short_time};

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let [left, right] = Layout::horizontal([Constraint::Percentage(30), Constraint::Percentage(70)]).areas(area);
    render_workspaces(app, frame, left);
    let files = app.current_workspace().map_or(0, |w| w.files.len());
    let files_height = (files as u16 + 2).clamp(3, (right.height / 3 + 1).max(3));
    let [chats, files_area] = Layout::vertical([Constraint::Min(3), Constraint::Length(files_height)]).areas(right);
    render_chats(app, frame, chats);
    render_files(app, frame, files_area);
}

fn render_workspaces(app: &App, frame: &mut Frame, area: Rect) {
    let items: Vec<ListItem> = app
        .workspaces()
        .iter()
        .map(|w| ListItem::new(format!("{} ({} chats)", w.name, w.chats.len())))
        .collect();
    let focused = app.browser.focus == BrowserFocus::Workspaces;
    let list = List::new(items)
        .block(pane(" Workspaces ", focused))
        .highlight_style(selected_style());
    let mut state = ListState::default().with_selected(Some(app.browser.workspace));
    frame.render_stateful_widget(list, area, &mut state);
}

fn render_chats(app: &App, frame: &mut Frame, area: Rect) {
    let focused = app.browser.focus == BrowserFocus::Chats;
    let title = match app.current_workspace() {
        Some(workspace) => format!(" Chats in {} ", workspace.name),
        None => " Chats ".into(),
    };
    let chats = app.current_workspace().map(|w| w.chats.as_slice()).unwrap_or_default();
    if chats.is_empty() {
        let hint = Paragraph::new(Line::from(vec![
            Span::raw("No chats yet. Press "),
            Span::styled("n", Style::default().fg(Color::Cyan)),
            Span::raw(" (or Enter) to start one."),
        ]))
        .block(pane(title, focused));
        frame.render_widget(hint, area);
        return;
    }
    let items: Vec<ListItem> = chats
        .iter()
        .map(|chat| {
            let updated = chat.last_updated.as_deref().map(short_time).unwrap_or_default();
            ListItem::new(Line::from(vec![
                Span::raw(chat.name.clone()),
                Span::styled(format!("  {updated}  {} versions", chat.num_versions), dim()),
            ]))
        })
        .collect();
    let list = List::new(items)
        .block(pane(title, focused))
        .highlight_style(selected_style());
    let selected = focused.then_some(app.browser.chat).or(Some(app.browser.chat));
    frame.render_stateful_widget(list, area, &mut ListState::default().with_selected(selected));
}

fn render_files(app: &App, frame: &mut Frame, area: Rect) {
    let files = app.current_workspace().map(|w| w.files.as_slice()).unwrap_or_default();
    let items: Vec<ListItem> = if files.is_empty() {
        vec![ListItem::new(Span::styled("no files", dim()))]
    } else {
        files.iter().map(|file| ListItem::new(file.filename.clone())).collect()
    };
    frame.render_widget(List::new(items).block(pane(" Workspace files ", false)), area);
}

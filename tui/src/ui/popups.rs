//! Popups drawn over the screen: help (from the keymap), confirmations, prompts, the model
//! picker and the add-model form.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::{dim, key_style, selected_style};
use crate::app::{AddModelForm, App, Popup};
use crate::keymap::{Context, Keymap};
use crate::text_input::TextInput;

const HELP_CONTEXTS: [Context; 6] = [
    Context::Global,
    Context::Browser,
    Context::Chat,
    Context::Input,
    Context::Versions,
    Context::Selection,
];

pub fn render(app: &App, frame: &mut Frame) {
    let Some(popup) = app.popup.as_ref() else { return };
    let area = frame.area();
    match popup {
        Popup::Help { scroll } => render_help(&app.keymap, frame, area, *scroll),
        Popup::Confirm { question, .. } => render_confirm(frame, area, question),
        Popup::Prompt { title, input, .. } => render_prompt(frame, area, title, input),
        Popup::Models { selected } => render_models(app, frame, area, *selected),
        Popup::AddModel(form) => render_add_model(app, frame, area, form),
    }
}

/// A centred rectangle of at most `width` × `height`, inside `area`.
fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [_, row, _] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(height), Constraint::Fill(1)]).areas(area);
    let [_, rect, _] =
        Layout::horizontal([Constraint::Fill(1), Constraint::Length(width), Constraint::Fill(1)]).areas(row);
    rect
}

fn popup_block(title: &str) -> Block<'static> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(Style::default().fg(Color::Yellow))
        .title(format!(" {title} "))
}

/// Every binding of every context, from the same list the footer reads.
pub fn help_lines(keymap: &Keymap) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    for context in HELP_CONTEXTS {
        lines.push(Line::styled(
            context.title(),
            Style::default().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ));
        for binding in keymap.bindings_of(context) {
            lines.push(Line::from(vec![
                Span::styled(format!("  {:<10}", binding.label), Style::default().fg(Color::Cyan)),
                Span::raw(binding.help),
            ]));
        }
        lines.push(Line::default());
    }
    lines
}

fn render_help(keymap: &Keymap, frame: &mut Frame, area: Rect, scroll: u16) {
    let rect = centered(area, 56, area.height.saturating_sub(2));
    frame.render_widget(Clear, rect);
    let text = Paragraph::new(help_lines(keymap))
        .block(popup_block("Keys: ↑/↓ scroll, Esc closes"))
        .scroll((scroll, 0));
    frame.render_widget(text, rect);
}

fn render_confirm(frame: &mut Frame, area: Rect, question: &str) {
    let rect = centered(area, 60, 8);
    frame.render_widget(Clear, rect);
    let lines = vec![
        Line::from(question.to_owned()),
        Line::default(),
        Line::from(vec![
            Span::styled(" y ", key_style()),
            Span::raw(" confirm   "),
            Span::styled(" n/Esc ", key_style()),
            Span::raw(" cancel"),
        ]),
    ];
    let text = Paragraph::new(lines)
        .block(popup_block("Confirm"))
        .wrap(Wrap { trim: true });
    frame.render_widget(text, rect);
}

fn render_prompt(frame: &mut Frame, area: Rect, title: &str, input: &TextInput) {
    let rect = centered(area, 60, 3);
    frame.render_widget(Clear, rect);
    let block = popup_block(title);
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    render_field(frame, inner, input, false);
}

/// One line of a text field, scrolled so the cursor shows, with the cursor placed.
fn render_field(frame: &mut Frame, area: Rect, input: &TextInput, mask: bool) {
    if area.width == 0 || area.height == 0 {
        return;
    }
    let (rows, cursor) = input.layout(u16::MAX, mask);
    let line = rows.into_iter().next().unwrap_or_default();
    let skip = usize::from(cursor.1.saturating_sub(area.width - 1));
    let shown: String = line.chars().skip(skip).collect();
    frame.render_widget(Paragraph::new(shown), area);
    let column = cursor.1.saturating_sub(skip as u16).min(area.width - 1);
    frame.set_cursor_position((area.x + column, area.y));
}

fn render_models(app: &App, frame: &mut Frame, area: Rect, selected: usize) {
    let height = (app.models.len() as u16 + 5).min(area.height);
    let rect = centered(area, 50, height);
    frame.render_widget(Clear, rect);
    let mut lines: Vec<Line> = app
        .models
        .iter()
        .map(|name| {
            let current = if app.model.as_deref() == Some(name) {
                "● "
            } else {
                "  "
            };
            Line::from(format!("{current}{name}"))
        })
        .collect();
    lines.push(Line::styled("+ add a model…", Style::default().fg(Color::Green)));
    if let Some(line) = lines.get_mut(selected) {
        *line = line.clone().style(selected_style());
    }
    lines.push(Line::default());
    lines.push(Line::styled("Enter choose · a add · Esc close", dim()));
    let block = popup_block("Model");
    frame.render_widget(Paragraph::new(lines).block(block), rect);
}

fn render_add_model(app: &App, frame: &mut Frame, area: Rect, form: &AddModelForm) {
    let rect = centered(area, 64, 10);
    frame.render_widget(Clear, rect);
    let block = popup_block("Add a model (OpenAI-compatible)");
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let rows = Layout::vertical([Constraint::Length(1); 6]).split(inner);
    for (index, label) in AddModelForm::LABELS.iter().enumerate() {
        let Some(row) = rows.get(index * 2).copied() else { break };
        let [label_area, field_area] = Layout::horizontal([Constraint::Length(11), Constraint::Min(1)]).areas(row);
        let style = if index == form.focus {
            Style::default().fg(Color::Cyan).add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        };
        frame.render_widget(Paragraph::new(Span::styled(format!("{label}:"), style)), label_area);
        let mask = index == AddModelForm::KEY_FIELD;
        if index == form.focus {
            render_field(frame, field_area, &form.fields[index], mask);
        } else {
            let (text, _) = form.fields[index].layout(u16::MAX, mask);
            frame.render_widget(Paragraph::new(text.concat()), field_area);
        }
    }
    let hint = match app.last_error.as_deref() {
        Some(error) => Span::styled(error.to_owned(), Style::default().fg(Color::LightRed)),
        None => Span::styled(
            "e.g. http://localhost:11434/v1 · Tab next field · Enter add · Esc",
            dim(),
        ),
    };
    if let Some(row) = rows.get(5).copied() {
        frame.render_widget(Paragraph::new(hint), row);
    }
}

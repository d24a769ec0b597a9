//! Popups over the screen: help, confirmations, one-line prompts, the model picker and the
//! add-model form. An open popup takes every key.

use std::path::{Path, PathBuf};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use kafka_protocol::ws::{ClientAction, DeleteFile, RevertVersion, SaveVersion};

use super::{App, Command, RestCall};
use crate::text_input::TextInput;

#[derive(Debug, Clone, PartialEq)]
pub enum Popup {
    Help {
        scroll: u16,
    },
    /// A destructive action waiting for `y`; the question names what it destroys.
    Confirm {
        question: String,
        action: Confirmed,
    },
    Prompt {
        title: String,
        input: TextInput,
        purpose: PromptPurpose,
    },
    /// The model list; the last entry adds a model.
    Models {
        selected: usize,
    },
    AddModel(AddModelForm),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmed {
    DeleteChat {
        chat_id: String,
    },
    DeleteWorkspace {
        workspace_id: String,
    },
    DeleteFile {
        file_id: String,
    },
    Revert {
        version_id: String,
        filename: String,
    },
    /// The user's edit met a newer version: `y` saves it anyway, `n` shows the latest.
    SaveAnyway(SaveVersion),
    WriteFile {
        path: PathBuf,
        content: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptPurpose {
    NewChat {
        workspace_id: String,
    },
    RenameChat {
        chat_id: String,
    },
    NewWorkspace,
    RenameWorkspace {
        workspace_id: String,
    },
    Upload,
    /// `w`: where to write this content.
    WriteFile {
        content: String,
    },
}

/// Name, base URL and API key of a new model; the key is shown masked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddModelForm {
    pub fields: [TextInput; 3],
    pub focus: usize,
}

impl AddModelForm {
    pub const LABELS: [&'static str; 3] = ["Name", "Base URL", "API key"];
    pub const KEY_FIELD: usize = 2;
}

impl Popup {
    pub fn input_mut(&mut self) -> Option<&mut TextInput> {
        match self {
            Popup::Prompt { input, .. } => Some(input),
            Popup::AddModel(form) => form.fields.get_mut(form.focus),
            _ => None,
        }
    }
}

impl App {
    pub(super) fn popup_key(&mut self, key: KeyEvent) -> Vec<Command> {
        let Some(popup) = self.popup.take() else {
            return Vec::new();
        };
        let ctrl_c = key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl_c {
            self.should_quit = true;
            return Vec::new();
        }
        match popup {
            Popup::Help { scroll } => {
                self.popup = help_key(key, scroll);
                Vec::new()
            }
            Popup::Confirm { question, action } => self.confirm_key(key, question, action),
            Popup::Prompt { title, input, purpose } => self.prompt_key(key, title, input, purpose),
            Popup::Models { selected } => self.models_key(key, selected),
            Popup::AddModel(form) => self.add_model_key(key, form),
        }
    }

    fn confirm_key(&mut self, key: KeyEvent, question: String, action: Confirmed) -> Vec<Command> {
        match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => self.confirmed(action),
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => self.declined(action),
            _ => {
                self.popup = Some(Popup::Confirm { question, action });
                Vec::new()
            }
        }
    }

    fn confirmed(&mut self, action: Confirmed) -> Vec<Command> {
        match action {
            Confirmed::DeleteChat { chat_id } => vec![Command::Rest(RestCall::DeleteChat { chat_id })],
            Confirmed::DeleteWorkspace { workspace_id } => {
                vec![Command::Rest(RestCall::DeleteWorkspace { workspace_id })]
            }
            Confirmed::DeleteFile { file_id } => vec![Command::Send(ClientAction::DeleteFile(DeleteFile { file_id }))],
            Confirmed::Revert { version_id, filename } => {
                vec![Command::Send(ClientAction::RevertVersion(RevertVersion {
                    version_id,
                    filename,
                }))]
            }
            Confirmed::SaveAnyway(request) => self.send_save(request),
            Confirmed::WriteFile { path, content } => vec![Command::WriteFile { path, content }],
        }
    }

    fn declined(&mut self, action: Confirmed) -> Vec<Command> {
        match action {
            // The latest version is already shown; the edit is not lost.
            Confirmed::SaveAnyway(request) => {
                self.notice = Some("Showing the latest version; your edit is on the clipboard.".into());
                vec![Command::Copy(request.content)]
            }
            _ => {
                self.notice = Some("Cancelled.".into());
                Vec::new()
            }
        }
    }

    fn prompt_key(
        &mut self,
        key: KeyEvent,
        title: String,
        mut input: TextInput,
        purpose: PromptPurpose,
    ) -> Vec<Command> {
        match key.code {
            KeyCode::Esc => return Vec::new(),
            KeyCode::Enter if !input.is_blank() => return self.prompt_submitted(input.text().trim(), purpose),
            KeyCode::Tab if matches!(purpose, PromptPurpose::Upload | PromptPurpose::WriteFile { .. }) => {
                input.set(&complete_path(input.text()))
            }
            _ => edit(&mut input, key),
        }
        self.popup = Some(Popup::Prompt { title, input, purpose });
        Vec::new()
    }

    fn prompt_submitted(&mut self, text: &str, purpose: PromptPurpose) -> Vec<Command> {
        match purpose {
            PromptPurpose::NewChat { workspace_id } => match self.user.as_ref() {
                Some(user) => vec![Command::Rest(RestCall::NewChat {
                    user_id: user.user_id.clone(),
                    workspace_id,
                    name: text.to_owned(),
                })],
                None => Vec::new(),
            },
            PromptPurpose::RenameChat { chat_id } => vec![Command::Rest(RestCall::RenameChat {
                chat_id,
                name: text.to_owned(),
            })],
            PromptPurpose::NewWorkspace => match self.user.as_ref() {
                Some(user) => vec![Command::Rest(RestCall::NewWorkspace {
                    owner_id: user.user_id.clone(),
                    name: text.to_owned(),
                })],
                None => Vec::new(),
            },
            PromptPurpose::RenameWorkspace { workspace_id } => vec![Command::Rest(RestCall::RenameWorkspace {
                workspace_id,
                name: text.to_owned(),
            })],
            PromptPurpose::Upload => vec![Command::Upload {
                path: expand_home(text),
            }],
            PromptPurpose::WriteFile { content } => self.write_to(expand_home(text), content),
        }
    }

    fn models_key(&mut self, key: KeyEvent, selected: usize) -> Vec<Command> {
        let entries = self.models.len() + 1;
        let selected = match key.code {
            KeyCode::Esc => return Vec::new(),
            KeyCode::Up | KeyCode::Char('k') => selected.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => (selected + 1).min(entries - 1),
            KeyCode::Char('a') => self.models.len(),
            KeyCode::Enter => return self.model_chosen(selected),
            _ => selected,
        };
        self.popup = Some(Popup::Models { selected });
        Vec::new()
    }

    fn model_chosen(&mut self, selected: usize) -> Vec<Command> {
        match self.models.get(selected) {
            Some(name) => {
                self.model = Some(name.clone());
                self.notice = Some(format!("Model: {name}"));
            }
            None => self.popup = Some(Popup::AddModel(AddModelForm::default())),
        }
        Vec::new()
    }

    fn add_model_key(&mut self, key: KeyEvent, mut form: AddModelForm) -> Vec<Command> {
        let fields = form.fields.len();
        match key.code {
            KeyCode::Esc => return Vec::new(),
            KeyCode::Tab | KeyCode::Down => form.focus = (form.focus + 1) % fields,
            KeyCode::BackTab | KeyCode::Up => form.focus = (form.focus + fields - 1) % fields,
            KeyCode::Enter if form.focus + 1 < fields => form.focus += 1,
            KeyCode::Enter => return self.submit_model(form),
            _ => edit(&mut form.fields[form.focus], key),
        }
        self.popup = Some(Popup::AddModel(form));
        Vec::new()
    }

    fn submit_model(&mut self, form: AddModelForm) -> Vec<Command> {
        let [name, base_url, api_key] = form.fields.clone().map(|field| field.text().trim().to_owned());
        let missing = AddModelForm::LABELS
            .iter()
            .zip([&name, &base_url, &api_key])
            .find(|(_, value)| value.is_empty());
        if let Some((label, _)) = missing {
            self.last_error = Some(format!("{label} is needed to add a model."));
            self.popup = Some(Popup::AddModel(form));
            return Vec::new();
        }
        let Some(user) = self.user.as_ref() else {
            return Vec::new();
        };
        vec![Command::Rest(RestCall::AddModel {
            user_id: user.user_id.clone(),
            name,
            base_url,
            api_key,
        })]
    }
}

fn help_key(key: KeyEvent, scroll: u16) -> Option<Popup> {
    match key.code {
        KeyCode::Esc | KeyCode::Char('?') | KeyCode::Char('q') | KeyCode::Enter => None,
        KeyCode::Down | KeyCode::Char('j') => Some(Popup::Help {
            scroll: scroll.saturating_add(1),
        }),
        KeyCode::Up | KeyCode::Char('k') => Some(Popup::Help {
            scroll: scroll.saturating_sub(1),
        }),
        _ => Some(Popup::Help { scroll }),
    }
}

/// The editing keys every text field shares.
pub(super) fn edit(input: &mut TextInput, key: KeyEvent) {
    match key.code {
        KeyCode::Char(c) if !key.modifiers.intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) => input.insert(c),
        KeyCode::Backspace => input.backspace(),
        KeyCode::Delete => input.delete(),
        KeyCode::Left => input.left(),
        KeyCode::Right => input.right(),
        KeyCode::Home => input.home(),
        KeyCode::End => input.end(),
        _ => {}
    }
}

fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// Completes the last path component to the longest prefix the matching entries share
/// (a lone directory gets its `/`).
pub fn complete_path(typed: &str) -> String {
    let (dir_part, prefix) = match typed.rfind('/') {
        Some(at) => (&typed[..=at], &typed[at + 1..]),
        None => ("", typed),
    };
    let dir = if dir_part.is_empty() {
        PathBuf::from(".")
    } else {
        expand_home(dir_part)
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return typed.to_owned();
    };
    let matches: Vec<(String, bool)> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let is_dir = entry.file_type().is_ok_and(|kind| kind.is_dir());
            name.starts_with(prefix).then_some((name, is_dir))
        })
        .collect();
    match matches.as_slice() {
        [] => typed.to_owned(),
        [(name, is_dir)] => format!("{dir_part}{name}{}", if *is_dir { "/" } else { "" }),
        _ => format!(
            "{dir_part}{}",
            common_prefix(matches.iter().map(|(name, _)| name.as_str()))
        ),
    }
}

fn common_prefix<'a>(mut names: impl Iterator<Item = &'a str>) -> String {
    let Some(first) = names.next() else {
        return String::new();
    };
    let mut prefix = first.to_owned();
    for name in names {
        while !name.starts_with(&prefix) {
            prefix.pop();
        }
    }
    prefix
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tab_completes_paths() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("flow_one.based"), "").unwrap();
        std::fs::write(dir.path().join("flow_two.based"), "").unwrap();
        std::fs::create_dir(dir.path().join("docs")).unwrap();
        let base = format!("{}/", dir.path().display());
        assert_eq!(complete_path(&format!("{base}fl")), format!("{base}flow_"));
        assert_eq!(complete_path(&format!("{base}flow_t")), format!("{base}flow_two.based"));
        assert_eq!(complete_path(&format!("{base}d")), format!("{base}docs/"));
        assert_eq!(complete_path(&format!("{base}zzz")), format!("{base}zzz"));
    }
}

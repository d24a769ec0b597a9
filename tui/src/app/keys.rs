//! Keys → state changes and commands, through the keymap.

use crossterm::event::{KeyEvent, KeyEventKind};
use kafka_protocol::ws::{ClientAction, NewMessage};

use super::chat::{PAGE, Pane};
use super::popup::{Confirmed, Popup, PromptPurpose, edit};
use super::{App, BrowserFocus, Command, Connection, Mode, Screen, short_time};
use crate::keymap::{Action, Context};
use crate::text_input::TextInput;

impl App {
    pub fn handle_key(&mut self, key: KeyEvent) -> Vec<Command> {
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        self.notice = None;
        let mut commands = if self.popup.is_some() {
            self.popup_key(key)
        } else {
            match self.screen {
                Screen::Login => self.login_key(key),
                Screen::Browser => self.browser_key(key),
                Screen::Chat => self.chat_key(key),
            }
        };
        commands.extend(self.highlight_commands());
        commands
    }

    /// The keymap contexts in force, most specific first (for dispatch and the footer).
    pub fn contexts(&self) -> Vec<Context> {
        match self.screen {
            Screen::Login => Vec::new(),
            Screen::Browser => vec![Context::Browser, Context::Global],
            Screen::Chat => match self.chat.as_ref() {
                Some(chat) if chat.focus == Pane::Input => vec![Context::Input],
                Some(chat) if chat.focus == Pane::Code => {
                    let selecting = chat.selection.is_some().then_some(Context::Selection);
                    let versions = chat.versions.is_some().then_some(Context::Versions);
                    let specific = [selecting, versions].into_iter().flatten();
                    specific.chain([Context::Chat, Context::Global]).collect()
                }
                _ => vec![Context::Chat, Context::Global],
            },
        }
    }

    fn browser_key(&mut self, key: KeyEvent) -> Vec<Command> {
        let Some(action) = self.keymap.action_for(&key, &self.contexts()) else {
            return Vec::new();
        };
        match action {
            Action::Up | Action::Down => self.browser_move(action == Action::Down),
            Action::NextPane | Action::PrevPane => {
                self.browser.focus = match self.browser.focus {
                    BrowserFocus::Workspaces => BrowserFocus::Chats,
                    BrowserFocus::Chats => BrowserFocus::Workspaces,
                }
            }
            Action::Open => return self.browser_open(),
            Action::Back => self.browser.focus = BrowserFocus::Workspaces,
            Action::NewChat | Action::Rename | Action::Delete => self.browser_edit(action),
            other => return self.common_action(other),
        }
        Vec::new()
    }

    /// `n` / `R` / `D`: on the workspace list they act on workspaces, elsewhere on chats.
    fn browser_edit(&mut self, action: Action) {
        match (self.browser.focus, action) {
            (BrowserFocus::Workspaces, Action::NewChat) => self.ask_new_workspace(),
            (BrowserFocus::Workspaces, Action::Rename) => self.ask_rename_workspace(),
            (BrowserFocus::Workspaces, _) => self.ask_delete_workspace(),
            (BrowserFocus::Chats, Action::NewChat) => self.ask_new_chat(),
            (BrowserFocus::Chats, Action::Rename) => self.ask_rename(),
            (BrowserFocus::Chats, _) => self.ask_delete_chat(),
        }
    }

    fn browser_open(&mut self) -> Vec<Command> {
        match self.browser.focus {
            BrowserFocus::Workspaces => {
                self.browser.focus = BrowserFocus::Chats;
                Vec::new()
            }
            BrowserFocus::Chats => match self.selected_chat().map(|chat| chat.id.clone()) {
                Some(chat_id) => self.open_chat(&chat_id),
                None => {
                    self.ask_new_chat();
                    Vec::new()
                }
            },
        }
    }

    fn ask_new_chat(&mut self) {
        let workspace_id = match (self.chat.as_ref(), self.current_workspace()) {
            (Some(chat), _) if !chat.workspace_id.is_empty() => chat.workspace_id.clone(),
            (_, Some(workspace)) => workspace.id.clone(),
            _ => return,
        };
        self.popup = Some(Popup::Prompt {
            title: "New chat: name".into(),
            input: TextInput::with_text("New chat"),
            purpose: PromptPurpose::NewChat { workspace_id },
        });
    }

    fn ask_rename(&mut self) {
        let Some(chat) = self.selected_chat() else { return };
        self.popup = Some(Popup::Prompt {
            title: format!("Rename chat {:?} to", chat.name),
            input: TextInput::with_text(&chat.name),
            purpose: PromptPurpose::RenameChat {
                chat_id: chat.id.clone(),
            },
        });
    }

    fn ask_delete_chat(&mut self) {
        let Some(chat) = self.selected_chat() else { return };
        self.popup = Some(Popup::Confirm {
            question: format!(
                "Delete chat {:?} with its messages, files and versions? This cannot be undone.",
                chat.name
            ),
            action: Confirmed::DeleteChat {
                chat_id: chat.id.clone(),
            },
        });
    }

    /// Actions that mean the same on every screen.
    fn common_action(&mut self, action: Action) -> Vec<Command> {
        match action {
            Action::Help => self.popup = Some(Popup::Help { scroll: 0 }),
            Action::Quit => self.should_quit = true,
            Action::Model => {
                let selected = self
                    .model
                    .as_ref()
                    .and_then(|m| self.models.iter().position(|n| n == m));
                self.popup = Some(Popup::Models {
                    selected: selected.unwrap_or(self.models.len()),
                });
            }
            _ => {}
        }
        Vec::new()
    }

    fn chat_key(&mut self, key: KeyEvent) -> Vec<Command> {
        let contexts = self.contexts();
        let action = self.keymap.action_for(&key, &contexts);
        let typing = contexts.first() == Some(&Context::Input);
        match (action, self.chat.as_mut()) {
            (None, Some(chat)) if typing => {
                edit(&mut chat.input, key);
                Vec::new()
            }
            (Some(action), Some(_)) => self.chat_action(action),
            _ => Vec::new(),
        }
    }

    fn chat_action(&mut self, action: Action) -> Vec<Command> {
        let Some(chat) = self.chat.as_mut() else {
            return Vec::new();
        };
        match action {
            Action::Send => return self.send_prompt(),
            Action::Newline => chat.input.insert('\n'),
            Action::NextPane | Action::PrevPane => chat.cycle_focus(action == Action::NextPane),
            Action::Back => return self.chat_back(),
            Action::Up | Action::Down => return self.chat_move(action == Action::Down),
            Action::Left | Action::Right => chat.scroll_sideways(action == Action::Right),
            Action::PageUp | Action::PageDown => {
                let page = PAGE as isize;
                let lines = if action == Action::PageDown { page } else { -page };
                // While selecting, a page stretches the selection like j/k do.
                if !chat.stretch_selection(lines) {
                    chat.scroll(lines);
                }
            }
            Action::Open => return self.chat_open(),
            Action::ToggleMode => self.toggle_mode(),
            Action::Versions => return self.toggle_versions(),
            Action::CompareBase => return chat.toggle_base(),
            Action::PrevHunk | Action::NextHunk => chat.jump_hunk(action == Action::NextHunk),
            Action::Revert => self.ask_revert(),
            Action::Upload => self.ask_upload(),
            Action::Edit => return self.edit_selected(),
            Action::WriteFile => self.ask_write_file(),
            Action::DeleteFile => self.ask_delete_file(),
            Action::Copy => return self.copy(),
            Action::Select => self.toggle_selection(),
            Action::NewChat => self.ask_new_chat(),
            Action::CancelAgent => return vec![Command::Send(ClientAction::Cancel)],
            other => return self.common_action(other),
        }
        Vec::new()
    }

    fn chat_back(&mut self) -> Vec<Command> {
        let Some(chat) = self.chat.as_mut() else {
            return Vec::new();
        };
        match chat.focus {
            Pane::Input => chat.focus = Pane::Conversation,
            Pane::Code if chat.selection.is_some() => chat.selection = None,
            Pane::Code if chat.versions.is_some() => chat.close_versions(),
            _ => {
                self.chat = None;
                self.screen = Screen::Browser;
                self.connection = Connection::Idle;
                return vec![Command::Disconnect];
            }
        }
        Vec::new()
    }

    fn chat_move(&mut self, down: bool) -> Vec<Command> {
        let Some(chat) = self.chat.as_mut() else {
            return Vec::new();
        };
        // While selecting, the moves stretch the selection (in the diff too, not the versions).
        if chat.stretch_selection(if down { 1 } else { -1 }) {
            return Vec::new();
        }
        if chat.focus == Pane::Code && chat.versions.is_some() {
            return chat.select_version(down);
        }
        chat.scroll(if down { 1 } else { -1 });
        Vec::new()
    }

    fn chat_open(&mut self) -> Vec<Command> {
        let Some(chat) = self.chat.as_mut() else {
            return Vec::new();
        };
        match chat.focus {
            Pane::Files => chat.focus = Pane::Code,
            _ => chat.focus = Pane::Input,
        }
        Vec::new()
    }

    fn toggle_mode(&mut self) {
        self.mode = match self.mode {
            Mode::Chat => Mode::Composer,
            Mode::Composer => Mode::Chat,
        };
        self.notice = Some(match self.mode {
            Mode::Chat => "Chat mode: the agent answers in text.".into(),
            Mode::Composer => "Composer mode: the agent writes and edits files.".into(),
        });
    }

    fn toggle_versions(&mut self) -> Vec<Command> {
        let Some(chat) = self.chat.as_mut() else {
            return Vec::new();
        };
        if chat.versions.is_some() {
            chat.close_versions();
            return Vec::new();
        }
        if chat.selected_based().is_none() {
            self.last_error = Some("Select a .based file in the files pane first.".into());
            return Vec::new();
        }
        chat.open_versions()
    }

    fn send_prompt(&mut self) -> Vec<Command> {
        let Some(chat) = self.chat.as_mut() else {
            return Vec::new();
        };
        if chat.input.is_blank() {
            return Vec::new();
        }
        let refusal = if self.connection != Connection::Connected {
            Some("Not connected to the server; your message is kept.")
        } else if chat.agent_busy {
            Some("The agent is still working (Ctrl+X stops it).")
        } else {
            None
        };
        if let Some(refusal) = refusal {
            self.last_error = Some(refusal.into());
            return Vec::new();
        }
        let Some(model) = self.model.clone() else {
            self.last_error = Some("Add a model first: the model picker is open.".into());
            self.popup = Some(Popup::Models {
                selected: self.models.len(),
            });
            return Vec::new();
        };
        let selected_filename = chat.selected_based().map(|file| file.name.clone());
        let message = NewMessage {
            model,
            prompt: chat.input.take(),
            is_first_prompt: chat.based_files.is_empty(),
            is_chat_or_composer: self.mode == Mode::Composer,
            selected_filename,
        };
        chat.prompt_sent();
        chat.scroll_back = 0;
        self.last_error = None;
        vec![Command::Send(ClientAction::NewMessage(message))]
    }

    fn ask_revert(&mut self) {
        let Some(chat) = self.chat.as_ref() else { return };
        let (Some(file), Some(view)) = (chat.versions_file(), chat.versions.as_ref()) else {
            return;
        };
        let Some(version) = file.versions.get(view.selected) else {
            return;
        };
        if view.selected + 1 == file.versions.len() {
            self.last_error = Some("That is the latest version already.".into());
            return;
        }
        self.popup = Some(Popup::Confirm {
            question: format!(
                "Revert {} to version {} of {} ({})? Its content becomes the new latest version; history is kept.",
                file.name,
                view.selected + 1,
                file.versions.len(),
                short_time(&version.timestamp)
            ),
            action: Confirmed::Revert {
                version_id: version.version_id.clone(),
                filename: file.name.clone(),
            },
        });
    }

    fn ask_upload(&mut self) {
        self.popup = Some(Popup::Prompt {
            title: "Upload a file: path (Tab completes)".into(),
            input: TextInput::default(),
            purpose: PromptPurpose::Upload,
        });
    }

    fn ask_delete_file(&mut self) {
        let Some(entry) = self.chat.as_ref().and_then(|chat| chat.selected_entry()) else {
            return;
        };
        self.popup = Some(Popup::Confirm {
            question: format!("Delete file {} from this chat, with all its versions?", entry.name()),
            action: Confirmed::DeleteFile {
                file_id: entry.file_id().to_owned(),
            },
        });
    }

    /// `V`: starts a line selection in the code pane, or cancels the one there.
    fn toggle_selection(&mut self) {
        let Some(chat) = self.chat.as_mut() else { return };
        if chat.selection.take().is_none() && !chat.start_selection() {
            self.last_error = Some("Nothing to select: choose a file (or a diff) first.".into());
        }
    }

    /// `y`: the selected lines, the diff in the versions view, the code in the code pane, else
    /// the newest message (its last code block, if it has one).
    fn copy(&mut self) -> Vec<Command> {
        let Some(chat) = self.chat.as_mut() else {
            return Vec::new();
        };
        if chat.focus == Pane::Code && chat.selection.is_some() {
            let text = chat.selected_text();
            chat.selection = None;
            return self.copied(text);
        }
        let text = match (chat.focus, chat.versions.as_ref()) {
            (Pane::Code, Some(view)) => view.diff.as_ref().map(|diff| {
                let rows = diff.parsed.rows.iter();
                rows.map(|row| row.text.clone()).collect::<Vec<_>>().join("\n")
            }),
            (Pane::Code | Pane::Files, None) => chat.shown_text().map(|(_, text, _)| text.to_owned()),
            _ => chat.conversation.last().map(super::copyable),
        };
        self.copied(text)
    }

    fn copied(&mut self, text: Option<String>) -> Vec<Command> {
        let Some(text) = text.filter(|text| !text.is_empty()) else {
            self.last_error = Some("Nothing to copy here.".into());
            return Vec::new();
        };
        self.notice = Some(format!("Copied {} lines to the clipboard.", text.lines().count()));
        vec![Command::Copy(text)]
    }
}

//! `e` and `w`: the selected file in the user's own editor (saved as their version, with a
//! conflict check), and written to a path.

use std::path::PathBuf;

use kafka_protocol::ws::{ClientAction, SaveVersion};

use super::popup::{Confirmed, Popup, PromptPurpose};
use super::{App, Command, Connection, FileEntry, SaveRefused};
use crate::editor::EditRequest;
use crate::text_input::TextInput;

impl App {
    /// `e`: the selected `.based` file's latest content, for the editor.
    pub(super) fn edit_selected(&mut self) -> Vec<Command> {
        let Some(chat) = self.chat.as_ref() else {
            return Vec::new();
        };
        let Some(request) = chat.edit_request() else {
            self.last_error = Some("Select a .based file in the files pane first.".into());
            return Vec::new();
        };
        if self.connection != Connection::Connected {
            self.last_error = Some("Not connected to the server; an edit could not be saved.".into());
            return Vec::new();
        }
        vec![Command::Edit(request)]
    }

    /// The editor is done: a changed file is saved as the user's version.
    pub(super) fn edited(&mut self, request: EditRequest, result: Result<Option<String>, String>) -> Vec<Command> {
        let content = match result {
            Ok(Some(content)) => content,
            Ok(None) => {
                self.notice = Some(format!("{} unchanged; nothing saved.", request.filename));
                return Vec::new();
            }
            Err(error) => {
                self.last_error = Some(format!("The editor failed: {error}"));
                return Vec::new();
            }
        };
        let still_open = self.chat.as_ref().is_some_and(|chat| chat.chat_id == request.chat_id);
        if !still_open {
            self.last_error = Some("The chat was closed while you edited; nothing saved.".into());
            return Vec::new();
        }
        self.send_save(SaveVersion {
            file_id: request.file_id,
            content,
            base_version_id: request.base_version_id,
        })
    }

    pub(super) fn send_save(&mut self, request: SaveVersion) -> Vec<Command> {
        let Some(chat) = self.chat.as_mut() else {
            return Vec::new();
        };
        chat.pending_save = Some(request.clone());
        self.notice = Some("Saving your version…".into());
        vec![Command::Send(ClientAction::SaveVersion(request))]
    }

    /// The file changed while the user edited it: save theirs anyway, or keep the latest.
    pub(super) fn ask_save_anyway(&mut self, refused: SaveRefused) {
        self.popup = Some(Popup::Confirm {
            question: format!(
                "{} changed while you edited it. {} Save your version anyway (y), replacing it as the \
                 newest version, or reload the latest (n; your edit goes to the clipboard)?",
                refused.filename, refused.error
            ),
            action: Confirmed::SaveAnyway(refused.retry),
        });
    }

    /// `w`: asks where to write the selected file (its latest content).
    pub(super) fn ask_write_file(&mut self) {
        let Some(entry) = self.chat.as_ref().and_then(|chat| chat.selected_entry()) else {
            self.last_error = Some("Select a file in the files pane first.".into());
            return;
        };
        let content = match entry {
            FileEntry::Based(file) => file.latest_content.clone(),
            FileEntry::Text(file) if file.kind == "text" => file.content.clone(),
            FileEntry::Text(file) => {
                self.last_error = Some(format!("{} has no text to write.", file.name));
                return;
            }
        };
        self.popup = Some(Popup::Prompt {
            title: format!("Write {} to: path (Tab completes)", entry.name()),
            input: TextInput::with_text(entry.name()),
            purpose: PromptPurpose::WriteFile { content },
        });
    }

    /// A path was given: written at once, or after a confirmation if something is there.
    pub(super) fn write_to(&mut self, path: PathBuf, content: String) -> Vec<Command> {
        if path.is_dir() {
            self.last_error = Some(format!("{} is a directory; name a file.", path.display()));
            return Vec::new();
        }
        if path.exists() {
            self.popup = Some(Popup::Confirm {
                question: format!("{} exists. Overwrite it?", path.display()),
                action: Confirmed::WriteFile { path, content },
            });
            return Vec::new();
        }
        vec![Command::WriteFile { path, content }]
    }
}

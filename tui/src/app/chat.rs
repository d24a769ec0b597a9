//! The open chat: its content as the socket reported it, what is selected and scrolled, and
//! how each server frame changes it.

use kafka_protocol::rest::DiagnosticInfo;
use kafka_protocol::ws::{
    BasedFile, ChatEvent, ClientAction, ConversationMessage, GetDiff, InitialPayload, SaveVersion, ServerAction,
    ServerFrame, TextFile, TokenUsage, VersionDiff, VersionInfo, VersionSaved,
};
use std::cell::Cell;
use std::time::Instant;

use ratatui::text::Line;
use serde_json::Value;

use super::Command;
use super::browser::step;
use super::selection::{LineSelection, keep_visible};
use crate::diff::ParsedDiff;
use crate::editor::EditRequest;
use crate::highlight::{self, Background};
use crate::live::LiveAnswer;
use crate::text_input::TextInput;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Input,
    Conversation,
    Files,
    Code,
}

/// Tab order.
pub const PANES: [Pane; 4] = [Pane::Input, Pane::Conversation, Pane::Files, Pane::Code];

/// Lines one PgUp / PgDn moves.
pub const PAGE: usize = 15;
/// Columns one ← / → moves the code.
pub const SIDE_STEP: usize = 8;

/// An entry of the files pane: the chat's `.based` files first, then its context files.
#[derive(Debug, Clone, Copy)]
pub enum FileEntry<'a> {
    Based(&'a BasedFile),
    Text(&'a TextFile),
}

impl FileEntry<'_> {
    pub fn name(&self) -> &str {
        match self {
            FileEntry::Based(file) => &file.name,
            FileEntry::Text(file) => &file.name,
        }
    }

    pub fn file_id(&self) -> &str {
        match self {
            FileEntry::Based(file) => &file.file_id,
            FileEntry::Text(file) => &file.file_id,
        }
    }
}

/// A diff the server sent, parsed, its lines highlighted off the UI thread.
#[derive(Debug, Clone)]
pub struct ShownDiff {
    pub from_version_id: String,
    pub to_version_id: String,
    pub parsed: ParsedDiff,
    /// The text of each row (same index as `parsed.rows`): plain at first, highlighted once
    /// the background task that highlights `text` answers (see [`ChatState::highlighted`]).
    pub lines: Vec<Line<'static>>,
    /// The rows' code as one text, and its highlight cache key.
    pub text: String,
    pub key: u64,
}

/// The validator's findings on a version the user saved, shown in the code pane while that
/// version is the file's latest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownDiagnostics {
    pub file_id: String,
    pub version_id: String,
    pub diagnostics: Vec<DiagnosticInfo>,
}

/// A `save_version` the server refused because the file changed meanwhile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaveRefused {
    /// The same edit, based on the version that is now the latest: sending it saves anyway.
    pub retry: SaveVersion,
    pub filename: String,
    /// The server's words, naming the latest version.
    pub error: String,
}

/// The versions list and diff of one `.based` file.
#[derive(Debug, Clone)]
pub struct VersionsView {
    pub file_id: String,
    /// Index into the file's versions (oldest first).
    pub selected: usize,
    /// The version to compare from (`b`); without it the selected one is compared with the latest.
    pub base: Option<usize>,
    pub diff: Option<ShownDiff>,
    /// First diff row shown.
    pub diff_top: usize,
}

#[derive(Debug)]
pub struct ChatState {
    /// The terminal's background, which the app chose: colours of code and diffs follow it.
    pub background: Background,
    pub chat_id: String,
    pub name: String,
    pub workspace_id: String,
    /// False until the initial payload arrived.
    pub loaded: bool,
    pub conversation: Vec<ConversationMessage>,
    pub text_files: Vec<TextFile>,
    pub based_files: Vec<BasedFile>,
    pub focus: Pane,
    pub input: TextInput,
    /// Conversation lines scrolled back from the newest (0 follows new messages).
    pub scroll_back: usize,
    pub selected_file: usize,
    /// First code line shown.
    pub code_top: usize,
    /// Columns of code scrolled off to the left (long lines are clipped, not wrapped).
    pub code_left: usize,
    pub versions: Option<VersionsView>,
    /// Lines selected with `V` in what the code pane shows (the file, or the diff).
    pub selection: Option<LineSelection>,
    /// Text rows the code pane had at its last draw. Only the UI knows the layout; it notes
    /// the height here so that stretching a selection can scroll its moving end into view.
    pub code_rows: Cell<usize>,
    pub agent_busy: bool,
    pub progress: Option<String>,
    /// Progress events trail the reply when they travel through another path (PostgreSQL's
    /// LISTEN/NOTIFY between instances): `done_seen` records the run's "done" event before its
    /// reply; `stale_progress` means the reply came first, so the run's remaining progress
    /// events, up to its "done", are old news and must not mark the agent busy again.
    pub done_seen: bool,
    pub stale_progress: bool,
    /// The answer the agent is writing, as it streams.
    pub live: Option<LiveAnswer>,
    /// When the agent's current run started (for the elapsed time shown).
    pub run_started: Option<Instant>,
    /// The last finished run's token usage, when the provider reported it.
    pub last_usage: Option<TokenUsage>,
    /// A file the agent just wrote, to select once its event arrives.
    follow_file: Option<String>,
    /// The user's edit on its way to the server (kept for a conflict).
    pub pending_save: Option<SaveVersion>,
    pub diagnostics: Option<ShownDiagnostics>,
}

/// What applying a frame means beyond the chat itself.
#[derive(Debug, Default)]
pub struct FrameOutcome {
    pub models: Option<Vec<String>>,
    pub error: Option<String>,
    pub notice: Option<String>,
    pub chat_deleted: bool,
    pub commands: Vec<Command>,
    /// Our save was refused as a conflict: ask whether to save anyway.
    pub conflict: Option<SaveRefused>,
}

impl ChatState {
    pub fn new(chat_id: &str, name: &str) -> Self {
        ChatState {
            background: Background::default(),
            chat_id: chat_id.to_owned(),
            name: name.to_owned(),
            workspace_id: String::new(),
            loaded: false,
            conversation: Vec::new(),
            text_files: Vec::new(),
            based_files: Vec::new(),
            focus: Pane::Input,
            input: TextInput::default(),
            scroll_back: 0,
            selected_file: 0,
            code_top: 0,
            code_left: 0,
            versions: None,
            selection: None,
            code_rows: Cell::new(PAGE),
            agent_busy: false,
            done_seen: false,
            stale_progress: false,
            progress: None,
            live: None,
            run_started: None,
            last_usage: None,
            follow_file: None,
            pending_save: None,
            diagnostics: None,
        }
    }

    pub fn files(&self) -> Vec<FileEntry<'_>> {
        let based = self.based_files.iter().map(FileEntry::Based);
        based.chain(self.text_files.iter().map(FileEntry::Text)).collect()
    }

    pub fn selected_entry(&self) -> Option<FileEntry<'_>> {
        self.files().get(self.selected_file).copied()
    }

    pub fn selected_based(&self) -> Option<&BasedFile> {
        match self.selected_entry()? {
            FileEntry::Based(file) => Some(file),
            FileEntry::Text(_) => None,
        }
    }

    pub fn versions_file(&self) -> Option<&BasedFile> {
        let view = self.versions.as_ref()?;
        self.based_files.iter().find(|file| file.file_id == view.file_id)
    }

    /// The text the code pane shows: `(cache key, text, is .based code)`.
    pub fn shown_text(&self) -> Option<(u64, &str, bool)> {
        match self.selected_entry()? {
            FileEntry::Based(file) => Some((
                highlight::content_key(&file.latest_content),
                file.latest_content.as_str(),
                true,
            )),
            // Offset so a context file never shares a key with equal `.based` content.
            FileEntry::Text(file) => Some((
                highlight::content_key(&file.content).wrapping_add(1),
                file.content.as_str(),
                false,
            )),
        }
    }

    pub fn cycle_focus(&mut self, forward: bool) {
        let at = PANES.iter().position(|pane| *pane == self.focus).unwrap_or(0);
        let next = if forward {
            (at + 1) % PANES.len()
        } else {
            (at + PANES.len() - 1) % PANES.len()
        };
        self.focus = PANES[next];
    }

    /// Scrolls the focused pane (the conversation when the input has focus).
    pub fn scroll(&mut self, lines_down: isize) {
        self.scroll_pane(self.focus, lines_down);
    }

    /// Scrolls one pane, wherever the focus is (the mouse wheel scrolls the pane under it).
    pub fn scroll_pane(&mut self, pane: Pane, lines_down: isize) {
        let down = lines_down > 0;
        let amount = lines_down.unsigned_abs();
        match (pane, self.versions.as_mut()) {
            (Pane::Code, Some(view)) => view.diff_top = shift(view.diff_top, amount, down),
            (Pane::Code, None) => {
                let last = self.shown_line_count().saturating_sub(1);
                self.code_top = shift(self.code_top, amount, down).min(last);
            }
            (Pane::Files, _) => {
                for _ in 0..amount {
                    self.select_file(step(self.selected_file, self.files().len(), down));
                }
            }
            _ => self.scroll_back = shift(self.scroll_back, amount, !down),
        }
    }

    /// Scrolls the code sideways by [`SIDE_STEP`] columns.
    pub fn scroll_sideways(&mut self, right: bool) {
        self.code_left = shift(self.code_left, SIDE_STEP, right);
    }

    fn shown_line_count(&self) -> usize {
        match self.selected_entry() {
            Some(FileEntry::Based(file)) => file.latest_content.lines().count(),
            Some(FileEntry::Text(file)) => file.content.lines().count(),
            None => 0,
        }
    }

    pub fn select_file(&mut self, index: usize) {
        if index != self.selected_file {
            self.selected_file = index;
            self.code_top = 0;
            self.code_left = 0;
            self.close_versions();
        }
    }

    /// Back to the code; a selection made in the diff means nothing there.
    pub fn close_versions(&mut self) {
        self.versions = None;
        self.selection = None;
    }

    /// Lines the code pane shows: the file's, or the diff's rows in the versions view.
    fn code_line_count(&self) -> usize {
        match self.versions.as_ref() {
            Some(view) => view.diff.as_ref().map_or(0, |diff| diff.parsed.rows.len()),
            None => self.shown_line_count(),
        }
    }

    /// `V`: selects the top line shown in the code pane (focusing it); false when it shows
    /// nothing to select.
    pub fn start_selection(&mut self) -> bool {
        let count = self.code_line_count();
        if count == 0 {
            return false;
        }
        let top = self.versions.as_ref().map_or(self.code_top, |view| view.diff_top);
        self.selection = Some(LineSelection::at(top.min(count - 1)));
        self.focus = Pane::Code;
        true
    }

    /// Moves the selection's free end, scrolling it into view; false without a selection or
    /// when the code pane has lost focus (the keys move that pane then).
    pub fn stretch_selection(&mut self, lines_down: isize) -> bool {
        let count = self.code_line_count();
        let Some(selection) = self.selection.as_mut().filter(|_| self.focus == Pane::Code) else {
            return false;
        };
        selection.stretch(lines_down, count);
        let (head, rows) = (selection.head, self.code_rows.get());
        match self.versions.as_mut() {
            Some(view) => view.diff_top = keep_visible(view.diff_top, head, rows),
            None => self.code_top = keep_visible(self.code_top, head, rows),
        }
        true
    }

    /// The selected lines as `y` copies them: the file's text, or the diff rows' code.
    pub fn selected_text(&self) -> Option<String> {
        let selection = self.selection.as_ref()?;
        let text = match self.versions.as_ref() {
            Some(view) => selection.extract(view.diff.as_ref()?.parsed.rows.iter().map(|row| row.text.as_str())),
            None => selection.extract(self.shown_text()?.1.lines()),
        };
        Some(text).filter(|text| !text.is_empty())
    }

    fn select_file_id(&mut self, file_id: &str) -> bool {
        match self.files().iter().position(|entry| entry.file_id() == file_id) {
            Some(index) => {
                self.select_file(index);
                true
            }
            None => false,
        }
    }

    pub fn apply_frame(&mut self, frame: ServerFrame) -> FrameOutcome {
        match frame {
            ServerFrame::Initial(payload) => self.load(*payload),
            ServerFrame::Event(event) => self.apply_event(event),
            ServerFrame::Action(action) => self.apply_action(action),
            ServerFrame::Error(error) if error.conflict.is_some() => self.save_refused(error.error, error.conflict),
            ServerFrame::Error(error) => {
                self.agent_done();
                FrameOutcome {
                    error: Some(error.error),
                    ..FrameOutcome::default()
                }
            }
            // A plain text frame is the agent's answer in chat mode; the message itself comes
            // as a `message_added` event.
            ServerFrame::Text(_) => {
                self.agent_done();
                FrameOutcome::default()
            }
        }
    }

    /// Takes the initial payload, on first connect and after every reconnect. The input,
    /// focus and selection (by file) are the user's and stay.
    fn load(&mut self, payload: InitialPayload) -> FrameOutcome {
        let selected_id = self.selected_entry().map(|entry| entry.file_id().to_owned());
        if !payload.chat_name.is_empty() {
            self.name = payload.chat_name;
        }
        self.workspace_id = payload.workspace_id;
        self.conversation = payload.conversation;
        self.text_files = payload.chat_files_text;
        self.based_files = payload.chat_files_based;
        self.loaded = true;
        self.agent_done();
        if !selected_id.is_some_and(|id| self.select_file_id(&id)) {
            self.selected_file = self.selected_file.min(self.files().len().saturating_sub(1));
        }
        FrameOutcome {
            models: Some(payload.models),
            ..FrameOutcome::default()
        }
    }

    fn agent_done(&mut self) {
        self.stale_progress = self.agent_busy && !self.done_seen;
        self.agent_busy = false;
        self.progress = None;
        self.done_seen = false;
        // The answer itself arrives as a message (or the run failed): the live copy goes.
        self.live = None;
        self.run_started = None;
    }

    /// A new prompt of ours: whatever was pending of the last run no longer matters.
    pub fn prompt_sent(&mut self) {
        self.agent_busy = true;
        self.progress = Some("sending".into());
        self.done_seen = false;
        self.stale_progress = false;
        self.live = None;
        self.run_started = Some(Instant::now());
    }

    /// A piece of the answer being written; a new attempt starts afresh. A run's progress
    /// comes before its text, so text while no run is going is a finished run's, late.
    fn agent_output(&mut self, attempt: u32, delta: &str) {
        if !self.agent_busy || self.stale_progress {
            return;
        }
        let live = match self.live.as_mut() {
            Some(live) if live.attempt == attempt => live,
            _ => self.live.insert(LiveAnswer::new(attempt, self.background)),
        };
        live.push(delta);
    }

    fn apply_event(&mut self, event: ChatEvent) -> FrameOutcome {
        let mut outcome = FrameOutcome::default();
        match event {
            ChatEvent::MessageAdded { message, .. } => {
                // Another client's run ends with its result (or failure note) saved; the
                // sender's ends with its reply.
                let result = message.role == "system"
                    || (message.role == "assistant" && (message.kind == "file" || self.done_seen));
                if result && self.live.is_some() {
                    self.agent_done();
                }
                self.conversation.push(message);
            }
            ChatEvent::TextFileAdded { file } => self.text_files.push(file),
            ChatEvent::BasedFileAdded { file } => self.add_based_file(file),
            ChatEvent::VersionAdded {
                file_id,
                version_id,
                timestamp,
                content,
                ..
            } => {
                outcome.commands = self.add_version(&file_id, version_id, timestamp, content);
            }
            ChatEvent::FileDeleted { file_id, filename } => {
                self.remove_file(&file_id);
                outcome.notice = Some(format!("{filename} deleted."));
            }
            ChatEvent::AgentProgress { stage, .. } if stage == "done" && self.stale_progress => {
                self.stale_progress = false;
            }
            ChatEvent::AgentProgress { stage, label, usage } if stage == "done" => {
                self.done_seen = true;
                self.progress = Some(label);
                if usage.is_some() {
                    self.last_usage = usage;
                }
            }
            ChatEvent::AgentProgress { .. } if self.stale_progress => {}
            ChatEvent::AgentProgress { label, .. } => {
                self.agent_busy = true;
                self.run_started.get_or_insert_with(Instant::now);
                self.progress = Some(label);
            }
            ChatEvent::AgentOutput { attempt, delta, .. } => self.agent_output(attempt, &delta),
            ChatEvent::ChatRenamed { name } => self.name = name,
            ChatEvent::ChatDeleted => outcome.chat_deleted = true,
        }
        outcome
    }

    fn add_based_file(&mut self, file: BasedFile) {
        if self.based_files.iter().any(|known| known.file_id == file.file_id) {
            return;
        }
        let file_id = file.file_id.clone();
        self.based_files.push(file);
        if self.follow_file.as_deref() == Some(file_id.as_str()) || self.based_files.len() == 1 {
            self.follow_file = None;
            // Indices after the new one shifted; select by ID.
            self.selected_file = usize::MAX;
            self.select_file_id(&file_id);
        }
    }

    /// Records a new latest version. The older versions' diffs (to the latest) are stale now,
    /// so they are asked for again.
    fn add_version(&mut self, file_id: &str, version_id: String, timestamp: String, content: String) -> Vec<Command> {
        let Some(file) = self.based_files.iter_mut().find(|file| file.file_id == file_id) else {
            return Vec::new();
        };
        file.latest_content = content;
        file.versions.push(VersionInfo {
            version_id: version_id.clone(),
            timestamp,
            diff: String::new(),
        });
        let mut commands: Vec<Command> = file.versions[..file.versions.len() - 1]
            .iter()
            .map(|version| get_diff(file_id, &version.version_id, None))
            .collect();
        if let Some(view) = self.versions.as_mut().filter(|view| view.file_id == file_id) {
            view.selected = view.selected.min(file.versions.len().saturating_sub(1));
            commands.extend(self.request_diff());
        }
        commands
    }

    fn remove_file(&mut self, file_id: &str) {
        let selected_id = self.selected_entry().map(|entry| entry.file_id().to_owned());
        self.based_files.retain(|file| file.file_id != file_id);
        self.text_files.retain(|file| file.file_id != file_id);
        if self.versions.as_ref().is_some_and(|view| view.file_id == file_id) {
            self.close_versions();
        }
        if selected_id.as_deref() == Some(file_id) {
            self.code_top = 0;
            self.selection = None;
        }
        self.selected_file = self.selected_file.min(self.files().len().saturating_sub(1));
    }

    fn apply_action(&mut self, action: ServerAction) -> FrameOutcome {
        let mut outcome = FrameOutcome::default();
        match action {
            ServerAction::AgentResponse(response) => {
                self.agent_done();
                if !self.select_file_id(&response.id) {
                    self.follow_file = Some(response.id);
                }
                self.code_top = 0;
            }
            ServerAction::RevertComplete { message } => {
                outcome.notice = message.content.message.or(Some("Reverted.".into()));
            }
            ServerAction::Diff(diff) => self.take_diff(diff),
            // Their effects arrive as events, from whichever client caused them.
            ServerAction::FileUploaded { .. } | ServerAction::FileDeleted { .. } => {}
            // The TUI asks for the full payload, so it never pages the conversation.
            ServerAction::Messages(_) => {}
            ServerAction::VersionSaved(saved) => outcome.notice = Some(self.version_saved(saved)),
        }
        outcome
    }

    /// What `e` edits: the selected `.based` file at its latest version.
    pub fn edit_request(&self) -> Option<EditRequest> {
        let file = self.selected_based()?;
        Some(EditRequest {
            chat_id: self.chat_id.clone(),
            file_id: file.file_id.clone(),
            filename: file.name.clone(),
            content: file.latest_content.clone(),
            base_version_id: file.versions.last().map(|v| v.version_id.clone()),
        })
    }

    /// The diagnostics to show with the selected file: those of its latest version, if the
    /// user saved it in this session.
    pub fn shown_diagnostics(&self) -> Option<&[DiagnosticInfo]> {
        let file = self.selected_based()?;
        let shown = self.diagnostics.as_ref()?;
        let latest = file.versions.last()?;
        (shown.file_id == file.file_id && shown.version_id == latest.version_id).then_some(&shown.diagnostics)
    }

    /// Our save was answered: its diagnostics go to the code pane, with the file shown.
    fn version_saved(&mut self, saved: VersionSaved) -> String {
        if self.pending_save.as_ref().is_some_and(|p| p.file_id == saved.file_id) {
            self.pending_save = None;
        }
        let file = self.based_files.iter().find(|file| file.file_id == saved.file_id);
        let name = file.map_or_else(String::new, |file| file.name.clone());
        // Unchanged content names no version: it is the latest one.
        let version_id = saved
            .version_id
            .clone()
            .or_else(|| file.and_then(|file| file.versions.last()).map(|v| v.version_id.clone()));
        let errors = saved.diagnostics.iter().filter(|d| d.severity == "error").count();
        let warnings = saved.diagnostics.len() - errors;
        if let Some(version_id) = version_id {
            self.diagnostics = Some(ShownDiagnostics {
                file_id: saved.file_id.clone(),
                version_id,
                diagnostics: saved.diagnostics,
            });
        }
        if self.select_file_id(&saved.file_id) || self.selected_based().is_some() {
            self.focus = Pane::Code;
        }
        let findings = match (errors, warnings) {
            (0, 0) => "the validator finds no problems".to_owned(),
            (errors, warnings) => format!(
                "{errors} error{}, {warnings} warning{} (shown in the code)",
                if errors == 1 { "" } else { "s" },
                if warnings == 1 { "" } else { "s" }
            ),
        };
        if saved.unchanged {
            format!("No changes to {name}; nothing saved. {findings}.")
        } else {
            format!("Saved your version of {name}: {findings}.")
        }
    }

    /// A conflict on our pending save: the app asks whether to save it anyway.
    fn save_refused(&mut self, error: String, conflict: Option<kafka_protocol::ws::SaveConflict>) -> FrameOutcome {
        let pending = self.pending_save.take();
        let (Some(conflict), Some(pending)) = (conflict, pending) else {
            return FrameOutcome {
                error: Some(error),
                ..FrameOutcome::default()
            };
        };
        if pending.file_id != conflict.file_id {
            return FrameOutcome {
                error: Some(error),
                ..FrameOutcome::default()
            };
        }
        let filename = self
            .based_files
            .iter()
            .find(|file| file.file_id == conflict.file_id)
            .map_or_else(String::new, |file| file.name.clone());
        FrameOutcome {
            conflict: Some(SaveRefused {
                retry: SaveVersion {
                    base_version_id: Some(conflict.latest_version_id),
                    ..pending
                },
                filename,
                error,
            }),
            ..FrameOutcome::default()
        }
    }

    /// A diff arrived: if it leads to the latest version it refreshes that version's counts;
    /// if it is the one the versions view asked for, the view shows it.
    fn take_diff(&mut self, diff: VersionDiff) {
        if let Some(file) = self.based_files.iter_mut().find(|file| file.file_id == diff.file_id) {
            let latest = file.versions.last().map(|v| v.version_id.clone());
            let leads_to_latest = latest.as_deref() == Some(diff.to_version_id.as_str());
            let from = file.versions.iter_mut().find(|v| v.version_id == diff.from_version_id);
            if let (true, Some(version)) = (leads_to_latest, from) {
                version.diff = diff.diff.clone();
            }
        }
        let wanted = self.wanted_diff();
        let Some(view) = self.versions.as_mut() else { return };
        let matches = wanted
            .is_some_and(|(from, to)| from == diff.from_version_id && to.is_none_or(|to| to == diff.to_version_id));
        if view.file_id == diff.file_id && matches {
            let parsed = ParsedDiff::parse(&diff.diff);
            let text: Vec<&str> = parsed.rows.iter().map(|row| row.text.as_str()).collect();
            let text = text.join("\n");
            // Shown plain at once; highlighted off the UI thread (the app asks for it).
            let lines = rows_of(highlight::plain(&text), parsed.rows.len());
            let key = highlight::content_key(&text).wrapping_add(2);
            view.diff_top = parsed.hunk_starts.first().copied().unwrap_or(0);
            // Its rows are other rows now.
            self.selection = None;
            view.diff = Some(ShownDiff {
                from_version_id: diff.from_version_id,
                to_version_id: diff.to_version_id,
                parsed,
                lines,
                text,
                key,
            });
        }
    }

    /// The shown diff's text when it still waits for highlighting: `(key, text)`.
    pub fn diff_to_highlight(&self) -> Option<(u64, &str)> {
        let diff = self.versions.as_ref()?.diff.as_ref()?;
        Some((diff.key, diff.text.as_str()))
    }

    /// Highlighted lines arrived for `key`: the shown diff takes them if they are its own.
    pub fn highlighted(&mut self, key: u64, lines: &[Line<'static>]) {
        let diff = self.versions.as_mut().and_then(|view| view.diff.as_mut());
        if let Some(diff) = diff.filter(|diff| diff.key == key) {
            diff.lines = rows_of(lines.to_vec(), diff.parsed.rows.len());
        }
    }

    /// The diff the versions view shows: from the base (or the selected version) to the
    /// selected version (or the latest).
    fn wanted_diff(&self) -> Option<(String, Option<String>)> {
        let view = self.versions.as_ref()?;
        let versions = &self.versions_file()?.versions;
        let selected = versions.get(view.selected)?.version_id.clone();
        match view.base.and_then(|base| versions.get(base)) {
            Some(base) => Some((base.version_id.clone(), Some(selected))),
            None => Some((selected, None)),
        }
    }

    pub fn request_diff(&self) -> Vec<Command> {
        let (Some(view), Some((from, to))) = (self.versions.as_ref(), self.wanted_diff()) else {
            return Vec::new();
        };
        vec![get_diff(&view.file_id, &from, to)]
    }

    /// Opens the versions of the selected `.based` file, the version before the latest
    /// selected (the most recent change).
    pub fn open_versions(&mut self) -> Vec<Command> {
        let Some(file) = self.selected_based() else {
            return Vec::new();
        };
        self.versions = Some(VersionsView {
            file_id: file.file_id.clone(),
            selected: file.versions.len().saturating_sub(2),
            base: None,
            diff: None,
            diff_top: 0,
        });
        self.selection = None;
        self.focus = Pane::Code;
        self.request_diff()
    }

    pub fn select_version(&mut self, down: bool) -> Vec<Command> {
        let count = self.versions_file().map_or(0, |file| file.versions.len());
        let Some(view) = self.versions.as_mut() else {
            return Vec::new();
        };
        let next = step(view.selected, count, down);
        if next == view.selected {
            return Vec::new();
        }
        view.selected = next;
        view.diff = None;
        self.selection = None;
        self.request_diff()
    }

    /// Marks the selected version as the one to compare from, or clears the mark.
    pub fn toggle_base(&mut self) -> Vec<Command> {
        let Some(view) = self.versions.as_mut() else {
            return Vec::new();
        };
        view.base = if view.base == Some(view.selected) {
            None
        } else {
            Some(view.selected)
        };
        view.diff = None;
        self.selection = None;
        self.request_diff()
    }

    pub fn jump_hunk(&mut self, forward: bool) {
        let Some(view) = self.versions.as_mut() else { return };
        let Some(diff) = view.diff.as_ref() else { return };
        let target = if forward {
            diff.parsed.next_hunk(view.diff_top)
        } else {
            diff.parsed.previous_hunk(view.diff_top)
        };
        if let Some(row) = target {
            view.diff_top = row;
        }
    }
}

fn get_diff(file_id: &str, from: &str, to: Option<String>) -> Command {
    Command::Send(ClientAction::GetDiff(GetDiff {
        file_id: file_id.to_owned(),
        from_version_id: from.to_owned(),
        to_version_id: to,
    }))
}

fn shift(value: usize, amount: usize, increase: bool) -> usize {
    if increase {
        value.saturating_add(amount)
    } else {
        value.saturating_sub(amount)
    }
}

/// A message as plain text.
pub fn message_text(message: &ConversationMessage) -> String {
    match &message.content {
        Value::String(text) => text.clone(),
        Value::Object(fields) => ["based_content", "filename", "based_filename"]
            .iter()
            .find_map(|key| fields.get(*key).and_then(Value::as_str))
            .unwrap_or_default()
            .to_owned(),
        other => other.to_string(),
    }
}

/// What `y` copies from a message: its last fenced code block if it has one, else all of it.
pub fn copyable(message: &ConversationMessage) -> String {
    let text = message_text(message);
    let blocks: Vec<&str> = text.split("```").collect();
    // Odd pieces sit between an opening and a closing fence; the first line names the language.
    let last_block = blocks
        .iter()
        .enumerate()
        .rev()
        .find(|(index, _)| index % 2 == 1 && index + 1 < blocks.len())
        .map(|(_, block)| block.split_once('\n').map_or(*block, |(_, code)| code));
    last_block.map_or(text.clone(), str::to_owned)
}

/// One line per diff row: a trailing empty row yields no line of its own when split.
fn rows_of(mut lines: Vec<Line<'static>>, rows: usize) -> Vec<Line<'static>> {
    lines.resize(rows, Line::default());
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(content: &str) -> ConversationMessage {
        ConversationMessage {
            role: "assistant".into(),
            kind: "text".into(),
            content: Value::String(content.into()),
        }
    }

    #[test]
    fn copy_takes_the_last_code_block_or_the_whole_text() {
        let answer = text("Try this:\n```based\nsay(\"a\")\n```\nor\n```\nsay(\"b\")\n```\ndone");
        assert_eq!(copyable(&answer), "say(\"b\")\n");
        assert_eq!(copyable(&text("no code here")), "no code here");
        assert_eq!(
            copyable(&text("unclosed ```based\nsay(1)")),
            "unclosed ```based\nsay(1)"
        );
    }
}

//! The application state and its pure update functions. Keys and server frames go in;
//! [`Command`]s (network and terminal effects) come out for the driver to carry out. Nothing
//! here touches a socket or the terminal, so all of it is tested without either.

mod browser;
mod chat;
mod edit;
mod keys;
mod login;
mod popup;
mod selection;

use std::collections::HashSet;
use std::path::PathBuf;

use kafka_protocol::rest::{ChatResponse, LoginResponse, ModelInfo};
use kafka_protocol::ws::{ClientAction, ServerFrame};
use ratatui::text::Line;

pub use browser::{BrowserFocus, BrowserState};
pub use chat::{ChatState, FileEntry, Pane, SaveRefused, ShownDiagnostics, VersionsView, copyable, message_text};
pub use login::{LoginField, LoginForm, Resume};
pub use popup::{AddModelForm, Confirmed, Popup, PromptPurpose};
pub use selection::LineSelection;

use crate::editor::EditRequest;
use crate::highlight::{self, Background, HighlightCache};
use crate::keymap::Keymap;
use crate::text_input::TextInput;

/// Frames of the agent-progress spinner.
pub const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Login,
    Browser,
    Chat,
}

/// How the agent treats a prompt: `Chat` answers in text, `Composer` may write files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Chat,
    Composer,
}

impl Mode {
    pub fn label(self) -> &'static str {
        match self {
            Mode::Chat => "chat",
            Mode::Composer => "composer",
        }
    }
}

/// The chat socket's state, as the status bar shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    Idle,
    Connecting,
    Connected,
    /// Lost; the next attempt starts after `delay_ms`.
    Retrying {
        attempt: u32,
        delay_ms: u64,
    },
}

/// An effect for the driver: network calls, the clipboard, background highlighting.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Rest(RestCall),
    /// Open the chat's WebSocket (closing any other).
    Connect {
        chat_id: String,
    },
    Disconnect,
    Send(ClientAction),
    /// Read the file; it is sent as an `upload_file` action once read ([`AppEvent::UploadReady`]).
    Upload {
        path: PathBuf,
    },
    /// Put the text on the clipboard (OSC 52).
    Copy(String),
    /// Run the user's editor on a file (with the terminal handed over); the outcome comes
    /// back as [`AppEvent::Edited`].
    Edit(EditRequest),
    /// Write a file's content to a path (the user confirmed any overwrite).
    WriteFile {
        path: PathBuf,
        content: String,
    },
    /// Highlight a big text off the UI thread; the result comes back as [`AppEvent::Highlighted`].
    Highlight {
        key: u64,
        text: String,
        background: Background,
    },
}

/// A REST call; its answer comes back as an [`AppEvent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestCall {
    Login {
        email: String,
        /// Only once the server asked for one.
        password: Option<String>,
    },
    NewChat {
        user_id: String,
        workspace_id: String,
        name: String,
    },
    RenameChat {
        chat_id: String,
        name: String,
    },
    DeleteChat {
        chat_id: String,
    },
    NewWorkspace {
        owner_id: String,
        name: String,
    },
    RenameWorkspace {
        workspace_id: String,
        name: String,
    },
    DeleteWorkspace {
        workspace_id: String,
    },
    AddModel {
        user_id: String,
        name: String,
        base_url: String,
        api_key: String,
    },
}

/// What the driver posts on the bus besides terminal input.
#[derive(Debug, Clone)]
pub enum AppEvent {
    Rest(RestAnswer),
    /// A REST call or a local effect (reading an upload) failed.
    Failed(String),
    /// The login answered 401 (the server's `detail`): a password is needed, or was wrong.
    LoginRefused(String),
    /// A call after login answered 401: the session's token expired.
    SessionExpired,
    Frame {
        chat_id: String,
        frame: ServerFrame,
    },
    Connection {
        chat_id: String,
        state: Connection,
    },
    Highlighted {
        key: u64,
        lines: Vec<Line<'static>>,
    },
    /// An upload's bytes were read and can be sent on the chat's socket.
    UploadReady {
        chat_id: String,
        action: ClientAction,
    },
    /// The editor exited: the new content when it changed, `None` when not, or what failed.
    Edited {
        request: EditRequest,
        result: Result<Option<String>, String>,
    },
    /// A local effect finished ("Wrote 12 lines to …").
    Notice(String),
}

/// The answer to a [`RestCall`].
#[derive(Debug, Clone)]
pub enum RestAnswer {
    LoggedIn(LoginResponse),
    ChatCreated { workspace_id: String, chat: ChatResponse },
    ChatRenamed(ChatResponse),
    ChatDeleted { chat_id: String },
    WorkspaceCreated { workspace_id: String, name: String },
    WorkspaceRenamed { workspace_id: String, name: String },
    WorkspaceDeleted { workspace_id: String },
    ModelAdded(ModelInfo),
}

pub struct App {
    /// The server as the status bar names it ("embedded" or its URL).
    pub server_label: String,
    /// The keys in force (`keys.conf` can rebind them).
    pub keymap: Keymap,
    /// The terminal's background (`--theme`): the colours of code and diffs follow it.
    pub background: Background,
    pub screen: Screen,
    pub login: LoginForm,
    pub logging_in: bool,
    pub user: Option<LoginResponse>,
    pub browser: BrowserState,
    pub chat: Option<ChatState>,
    /// Opened on top of the screen; takes every key while open.
    pub popup: Option<Popup>,
    /// Model names the user can pick for `new_message`.
    pub models: Vec<String>,
    pub model: Option<String>,
    pub mode: Mode,
    pub connection: Connection,
    pub spinner: usize,
    pub last_error: Option<String>,
    /// A short confirmation of the last action ("Copied 12 lines").
    pub notice: Option<String>,
    pub highlights: HighlightCache,
    /// Texts being highlighted in the background.
    pending_highlights: HashSet<u64>,
    /// The chat to open right after login (`--chat`).
    open_after_login: Option<String>,
    /// What to restore after logging in again once the session expired.
    pub resume: Option<Resume>,
    pub should_quit: bool,
}

impl App {
    pub fn new(server_label: impl Into<String>) -> Self {
        App {
            server_label: server_label.into(),
            keymap: Keymap::default(),
            background: Background::default(),
            screen: Screen::Login,
            login: LoginForm::default(),
            logging_in: false,
            user: None,
            browser: BrowserState::default(),
            chat: None,
            popup: None,
            models: Vec::new(),
            model: None,
            mode: Mode::Composer,
            connection: Connection::Idle,
            spinner: 0,
            last_error: None,
            notice: None,
            highlights: HighlightCache::default(),
            pending_highlights: HashSet::new(),
            open_after_login: None,
            resume: None,
            should_quit: false,
        }
    }

    /// The app with colours for a `background` terminal.
    pub fn with_background(mut self, background: Background) -> Self {
        self.background = background;
        self
    }

    /// The app with `keymap` in force instead of the default keys.
    pub fn with_keymap(mut self, keymap: Keymap) -> Self {
        self.keymap = keymap;
        self
    }

    /// Logs in at once with `email` (and opens `chat_id` then), as `--email` / `--chat` ask.
    pub fn start(&mut self, email: Option<String>, chat_id: Option<String>) -> Vec<Command> {
        self.open_after_login = chat_id;
        match email {
            Some(email) => {
                self.login.email.set(&email);
                self.submit_login()
            }
            None => Vec::new(),
        }
    }

    /// The session's bearer token, when the server gave one (not in open mode).
    pub fn token(&self) -> Option<&str> {
        self.user.as_ref()?.token.as_deref()
    }

    /// Whether something animates (the spinner), so the driver keeps redrawing.
    pub fn is_busy(&self) -> bool {
        self.logging_in
            || self.chat.as_ref().is_some_and(|chat| chat.agent_busy)
            || matches!(self.connection, Connection::Connecting | Connection::Retrying { .. })
    }

    pub fn tick(&mut self) {
        self.spinner = (self.spinner + 1) % SPINNER.len();
    }

    pub fn handle_event(&mut self, event: AppEvent) -> Vec<Command> {
        let mut commands = match event {
            AppEvent::Rest(answer) => self.rest_answer(answer),
            AppEvent::Failed(error) => {
                self.logging_in = false;
                self.last_error = Some(error);
                Vec::new()
            }
            AppEvent::LoginRefused(detail) => {
                self.login_refused(detail);
                Vec::new()
            }
            AppEvent::SessionExpired => self.session_expired(),
            AppEvent::Frame { chat_id, frame } => self.handle_server(&chat_id, frame),
            AppEvent::Connection { chat_id, state } => {
                if self.chat.as_ref().is_some_and(|chat| chat.chat_id == chat_id) {
                    self.connection = state;
                }
                Vec::new()
            }
            AppEvent::UploadReady { chat_id, action } => {
                let still_open = self.chat.as_ref().is_some_and(|chat| chat.chat_id == chat_id);
                if still_open {
                    vec![Command::Send(action)]
                } else {
                    Vec::new()
                }
            }
            AppEvent::Highlighted { key, lines } => {
                self.pending_highlights.remove(&key);
                if let Some(chat) = self.chat.as_mut() {
                    chat.highlighted(key, &lines);
                }
                self.highlights.insert(key, lines);
                Vec::new()
            }
            AppEvent::Edited { request, result } => self.edited(request, result),
            AppEvent::Notice(notice) => {
                self.notice = Some(notice);
                Vec::new()
            }
        };
        commands.extend(self.highlight_commands());
        commands
    }

    fn rest_answer(&mut self, answer: RestAnswer) -> Vec<Command> {
        match answer {
            RestAnswer::LoggedIn(login) => return self.logged_in(login),
            RestAnswer::ChatCreated { workspace_id, chat } => return self.chat_created(&workspace_id, chat),
            RestAnswer::ModelAdded(model) => self.model_added(model),
            RestAnswer::ChatRenamed(chat) => self.browser_rename(&chat),
            RestAnswer::ChatDeleted { chat_id } => self.browser_remove(&chat_id),
            RestAnswer::WorkspaceCreated { workspace_id, name } => self.workspace_created(workspace_id, name),
            RestAnswer::WorkspaceRenamed { workspace_id, name } => self.workspace_renamed(&workspace_id, name),
            RestAnswer::WorkspaceDeleted { workspace_id } => self.workspace_deleted(&workspace_id),
        }
        Vec::new()
    }

    /// Applies a frame of the open chat's socket; frames of a chat left behind are dropped.
    pub fn handle_server(&mut self, chat_id: &str, frame: ServerFrame) -> Vec<Command> {
        let Some(chat) = self.chat.as_mut().filter(|chat| chat.chat_id == chat_id) else {
            return Vec::new();
        };
        let outcome = chat.apply_frame(frame);
        if let Some(models) = outcome.models {
            self.merge_models(models);
        }
        if let Some(error) = outcome.error {
            self.last_error = Some(error);
        }
        if let Some(notice) = outcome.notice {
            self.notice = Some(notice);
        }
        if let Some(request) = outcome.conflict {
            self.ask_save_anyway(request);
        }
        if outcome.chat_deleted {
            self.leave_chat();
            self.browser_remove(chat_id);
            self.last_error = Some("This chat was deleted.".into());
            return vec![Command::Disconnect];
        }
        outcome.commands
    }

    pub fn paste(&mut self, text: &str) {
        if let Some(input) = self.focused_input() {
            input.insert_str(text);
        }
    }

    /// Mouse wheel: scrolls `pane` (the one under the pointer), else the focused one.
    pub fn scroll(&mut self, pane: Option<Pane>, lines_down: isize) {
        let Some(chat) = self.chat.as_mut().filter(|_| self.screen == Screen::Chat) else {
            return;
        };
        match pane {
            Some(pane) => chat.scroll_pane(pane, lines_down),
            None => chat.scroll(lines_down),
        }
    }

    fn focused_input(&mut self) -> Option<&mut TextInput> {
        if let Some(popup) = self.popup.as_mut() {
            return popup.input_mut();
        }
        match self.screen {
            Screen::Login => Some(self.login.focused_input()),
            Screen::Chat => self.chat.as_mut().map(|chat| &mut chat.input),
            Screen::Browser => None,
        }
    }

    fn logged_in(&mut self, login: LoginResponse) -> Vec<Command> {
        self.logging_in = false;
        self.last_error = None;
        self.merge_models(login.models.iter().map(|m| m.name.clone()).collect());
        self.browser = BrowserState::default();
        // Not needed again this session; not kept in memory either.
        self.login.password.take();
        let reopen = self.chat_after_login(&login.email);
        self.user = Some(login);
        self.screen = Screen::Browser;
        let Some((chat_id, draft)) = reopen else {
            return Vec::new();
        };
        let commands = self.open_chat(&chat_id);
        if let Some(chat) = self.chat.as_mut() {
            chat.input.set(&draft);
        }
        commands
    }

    fn chat_created(&mut self, workspace_id: &str, chat: ChatResponse) -> Vec<Command> {
        let chat_id = chat.chat_id.clone();
        self.browser_add(workspace_id, chat);
        self.open_chat(&chat_id)
    }

    fn model_added(&mut self, model: ModelInfo) {
        self.notice = Some(format!("Model {} added and chosen.", model.name));
        self.merge_models(vec![model.name.clone()]);
        self.model = Some(model.name.clone());
        if let Some(user) = self.user.as_mut() {
            user.models.push(model);
        }
    }

    fn merge_models(&mut self, names: Vec<String>) {
        for name in names {
            if !self.models.contains(&name) {
                self.models.push(name);
            }
        }
        if self.model.is_none() {
            self.model = self.models.first().cloned();
        }
    }

    /// Opens a chat: the view appears at once, its content when the socket delivers it.
    pub fn open_chat(&mut self, chat_id: &str) -> Vec<Command> {
        let name = self.browser_chat_name(chat_id).unwrap_or_default();
        let mut chat = ChatState::new(chat_id, &name);
        chat.background = self.background;
        self.chat = Some(chat);
        self.screen = Screen::Chat;
        self.connection = Connection::Connecting;
        self.last_error = None;
        vec![Command::Connect {
            chat_id: chat_id.to_owned(),
        }]
    }

    fn leave_chat(&mut self) {
        self.chat = None;
        self.screen = Screen::Browser;
        self.connection = Connection::Idle;
    }

    /// Starts highlighting what the code pane shows, inline when small, in the background
    /// when big, and the shown diff in the background; nothing when the cache has it.
    fn highlight_commands(&mut self) -> Vec<Command> {
        let mut commands = self.highlight_diff();
        commands.extend(self.highlight_code());
        commands
    }

    /// The shown diff's highlighting: from the cache, or asked of a background task.
    fn highlight_diff(&mut self) -> Vec<Command> {
        let background = self.background;
        let Some(chat) = self.chat.as_mut() else {
            return Vec::new();
        };
        let Some((key, text)) = chat.diff_to_highlight() else {
            return Vec::new();
        };
        if let Some(lines) = self.highlights.get(key) {
            chat.highlighted(key, &lines);
            return Vec::new();
        }
        if !self.pending_highlights.insert(key) {
            return Vec::new();
        }
        let text = text.to_owned();
        vec![Command::Highlight { key, text, background }]
    }

    fn highlight_code(&mut self) -> Vec<Command> {
        let background = self.background;
        let Some((key, text, is_code)) = self.chat.as_ref().and_then(ChatState::shown_text) else {
            return Vec::new();
        };
        if self.highlights.contains(key) || self.pending_highlights.contains(&key) {
            return Vec::new();
        }
        if !is_code {
            self.highlights.insert(key, highlight::plain(text));
            return Vec::new();
        }
        if highlight::wants_background(text) {
            self.pending_highlights.insert(key);
            let text = text.to_owned();
            return vec![Command::Highlight { key, text, background }];
        }
        self.highlights.insert(key, highlight::highlight(text, background));
        Vec::new()
    }
}

/// `2026-11-25T22:10:05.123456` → `11-25 22:10:05`; anything else as it is.
pub fn short_time(timestamp: &str) -> String {
    match (timestamp.get(5..10), timestamp.get(11..19)) {
        (Some(day), Some(time)) => format!("{day} {time}"),
        _ => timestamp.to_owned(),
    }
}

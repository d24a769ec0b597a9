//! The driver: owns the app state and the network handles, feeds the state keys and bus
//! events, and carries out the commands the state returns. The terminal loop (`terminal.rs`)
//! and the end-to-end tests drive the same `Driver`.

use base64::Engine;
use crossterm::event::KeyEvent;
use kafka_protocol::ws::{ClientAction, UploadFile};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::app::{App, AppEvent, Command, RestAnswer, RestCall};
use crate::editor::{self, EditRequest};
use crate::highlight;
use crate::net::{ChatSocket, Rest, RestError};

pub struct Driver {
    pub app: App,
    rest: Rest,
    socket: Option<ChatSocket>,
    bus: UnboundedSender<AppEvent>,
    events: UnboundedReceiver<AppEvent>,
    /// Text put on the clipboard, for the terminal loop to emit as OSC 52.
    pub clipboard: Vec<String>,
    /// An edit waiting for the terminal loop to hand the terminal to the editor.
    pending_edit: Option<EditRequest>,
    /// The editor command, instead of `$VISUAL` / `$EDITOR` (tests).
    pub editor: Option<String>,
}

impl Driver {
    pub fn new(app: App, rest: Rest) -> Self {
        let (bus, events) = unbounded_channel();
        Driver {
            app,
            rest,
            socket: None,
            bus,
            events,
            clipboard: Vec::new(),
            pending_edit: None,
            editor: None,
        }
    }

    pub fn key(&mut self, key: KeyEvent) {
        let commands = self.app.handle_key(key);
        self.execute(commands);
    }

    pub fn event(&mut self, event: AppEvent) {
        let commands = self.app.handle_event(event);
        self.execute(commands);
    }

    /// The next bus event (never `None`: the driver holds a sender itself).
    pub async fn next_event(&mut self) -> Option<AppEvent> {
        self.events.recv().await
    }

    pub fn execute(&mut self, commands: Vec<Command>) {
        for command in commands {
            self.run(command);
        }
    }

    fn run(&mut self, command: Command) {
        match command {
            Command::Connect { chat_id } => {
                let url = self.session().ws_url(&chat_id);
                self.socket = Some(ChatSocket::open(url, chat_id, self.bus.clone()));
            }
            Command::Disconnect => self.socket = None,
            Command::Send(action) => self.send(&action),
            Command::Upload { path } => self.upload(path),
            Command::Copy(text) => self.clipboard.push(text),
            // The editor needs the terminal: the loop runs it (`run_edit`) once this key is done.
            Command::Edit(request) => self.pending_edit = Some(request),
            Command::WriteFile { path, content } => {
                let bus = self.bus.clone();
                tokio::spawn(async move {
                    let event = match tokio::fs::write(&path, &content).await {
                        Ok(()) => AppEvent::Notice(format!(
                            "Wrote {} lines to {}.",
                            content.lines().count(),
                            path.display()
                        )),
                        Err(error) => AppEvent::Failed(format!("Cannot write {}: {error}", path.display())),
                    };
                    let _ = bus.send(event);
                });
            }
            Command::Highlight { key, text, background } => {
                let bus = self.bus.clone();
                tokio::task::spawn_blocking(move || {
                    let lines = highlight::highlight(&text, background);
                    let _ = bus.send(AppEvent::Highlighted { key, lines });
                });
            }
            Command::Rest(call) => self.spawn_rest(call),
        }
    }

    fn send(&mut self, action: &ClientAction) {
        match (self.socket.as_ref(), serde_json::to_string(action)) {
            (Some(socket), Ok(text)) => socket.send(text),
            _ => self.app.last_error = Some("No chat is open.".into()),
        }
    }

    /// Reads the file off the UI loop; the app sends it once read.
    fn upload(&mut self, path: std::path::PathBuf) {
        let Some(chat_id) = self.app.chat.as_ref().map(|chat| chat.chat_id.clone()) else {
            self.app.last_error = Some("No chat is open.".into());
            return;
        };
        let bus = self.bus.clone();
        tokio::spawn(async move {
            let event = match tokio::fs::read(&path).await {
                Ok(bytes) => AppEvent::UploadReady {
                    chat_id,
                    action: ClientAction::UploadFile(UploadFile {
                        filename: path
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                        file_data: base64::engine::general_purpose::STANDARD.encode(bytes),
                    }),
                },
                Err(error) => AppEvent::Failed(format!("Cannot read {}: {error}", path.display())),
            };
            let _ = bus.send(event);
        });
    }

    /// The edit `e` asked for, if any; the caller hands the terminal over and calls
    /// [`Driver::run_edit`].
    pub fn take_pending_edit(&mut self) -> Option<EditRequest> {
        self.pending_edit.take()
    }

    /// Runs the editor on the request's content (off the async workers, waiting for it) and
    /// gives the app the outcome, which sends a changed file as the user's version.
    pub async fn run_edit(&mut self, request: EditRequest) {
        let editor = editor::command(self.editor.as_deref());
        let (filename, content) = (request.filename.clone(), request.content.clone());
        let result = tokio::task::spawn_blocking(move || editor::edit(&editor, &filename, &content))
            .await
            .map_err(|error| error.to_string())
            .and_then(|result| result.map_err(|error| error.to_string()));
        self.event(AppEvent::Edited { request, result });
    }

    /// The REST client acting with the app's current token.
    fn session(&self) -> Rest {
        self.rest.with_token(self.app.token())
    }

    fn spawn_rest(&self, call: RestCall) {
        let rest = self.session();
        let bus = self.bus.clone();
        tokio::spawn(async move {
            let is_login = matches!(call, RestCall::Login { .. });
            let event = match rest_answer(&rest, call).await {
                Ok(answer) => AppEvent::Rest(answer),
                Err(RestError::Unauthorized(detail)) if is_login => AppEvent::LoginRefused(detail),
                Err(RestError::Unauthorized(_)) => AppEvent::SessionExpired,
                Err(RestError::Failed(error)) => AppEvent::Failed(error),
            };
            let _ = bus.send(event);
        });
    }
}

async fn rest_answer(rest: &Rest, call: RestCall) -> Result<RestAnswer, RestError> {
    Ok(match call {
        RestCall::Login { email, password } => RestAnswer::LoggedIn(rest.login(&email, password.as_deref()).await?),
        RestCall::NewChat {
            user_id,
            workspace_id,
            name,
        } => RestAnswer::ChatCreated {
            chat: rest.new_chat(&user_id, &workspace_id, &name).await?,
            workspace_id,
        },
        RestCall::RenameChat { chat_id, name } => RestAnswer::ChatRenamed(rest.rename_chat(&chat_id, &name).await?),
        RestCall::DeleteChat { chat_id } => {
            rest.delete_chat(&chat_id).await?;
            RestAnswer::ChatDeleted { chat_id }
        }
        RestCall::NewWorkspace { owner_id, name } => RestAnswer::WorkspaceCreated {
            workspace_id: rest.new_workspace(&owner_id, &name).await?.workspace_id,
            name,
        },
        RestCall::RenameWorkspace { workspace_id, name } => {
            let renamed = rest.rename_workspace(&workspace_id, &name).await?;
            RestAnswer::WorkspaceRenamed {
                workspace_id: renamed.workspace_id,
                name: renamed.new_name,
            }
        }
        RestCall::DeleteWorkspace { workspace_id } => {
            rest.delete_workspace(&workspace_id).await?;
            RestAnswer::WorkspaceDeleted { workspace_id }
        }
        RestCall::AddModel {
            user_id,
            name,
            base_url,
            api_key,
        } => RestAnswer::ModelAdded(rest.add_model(&user_id, &name, &base_url, &api_key).await?),
    })
}

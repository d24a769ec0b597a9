//! WebSocket frames on `/ws/{chat_id}`, as in the brief's "Websocket Docs".
//!
//! Client → server: a JSON object whose `action` names a [`ClientAction`]; anything else
//! (plain text, broken JSON, JSON without `action`) is chat text that the server echoes.
//!
//! Server → client: the [`InitialPayload`] once, then for each client frame the brief's reply
//! ([`ServerAction`], [`ErrorFrame`], or a plain text frame). Clients that opt in to protocol
//! version 2 (`?v=2` or a `hello` action) also receive [`ChatEvent`]s for everything that
//! happens in the chat, from any client.
//!
//! Each of these is one WebSocket text message; one above 256 KiB (a long chat's initial
//! payload) comes as several frames (RFC 6455 fragmentation), which WebSocket clients join.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// The protocol version that adds live events; legacy clients speak version 1.
pub const PROTOCOL_V2: u32 = 2;

// ---------------------------------------------------------------------------------------
// Client → server
// ---------------------------------------------------------------------------------------

/// A client frame that carries an `action`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::VariantNames)]
#[serde(tag = "action", rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ClientAction {
    UploadFile(UploadFile),
    NewMessage(NewMessage),
    RevertVersion(RevertVersion),
    DeleteFile(DeleteFile),
    /// Opt in to a protocol version (2 adds live events).
    Hello(Hello),
    /// Stop the chat's running agent task, if any.
    Cancel,
    /// Ask for the unified diff between two versions of a `.based` file (addition).
    GetDiff(GetDiff),
    /// Ask for older conversation entries, for clients whose payload was paged (addition).
    GetMessages(GetMessages),
    /// Save the user's own content of a `.based` file as its new version (addition).
    SaveVersion(SaveVersion),
}

impl ClientAction {
    /// Every action name a server understands, spelled as serde spells it (derived by strum).
    pub const NAMES: &'static [&'static str] = <Self as strum::VariantNames>::VARIANTS;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadFile {
    pub filename: String,
    /// The file's bytes, base64 (standard alphabet, padding optional).
    pub file_data: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMessage {
    /// A model name from the initial payload's `models`.
    pub model: String,
    pub prompt: String,
    /// `true`: the agent writes a new file.
    #[serde(default)]
    pub is_first_prompt: bool,
    /// `false`: the agent answers in plain text, without touching files.
    #[serde(default = "default_true")]
    pub is_chat_or_composer: bool,
    /// The `.based` file a change applies to.
    #[serde(default)]
    pub selected_filename: Option<String>,
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevertVersion {
    pub version_id: String,
    pub filename: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteFile {
    pub file_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetDiff {
    pub file_id: String,
    pub from_version_id: String,
    /// Defaults to the file's newest version.
    #[serde(default)]
    pub to_version_id: Option<String>,
}

/// A page of the conversation: up to `limit` entries before `before_seq` (the newest when
/// absent), oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetMessages {
    #[serde(default)]
    pub before_seq: Option<i64>,
    /// Defaults to 50; at most 500.
    #[serde(default)]
    pub limit: Option<u32>,
}

/// The user's edit of a `.based` file of this chat. Saved as a new version unless
/// `base_version_id` is given and is no longer the file's latest (a conflict: nothing is saved).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SaveVersion {
    pub file_id: String,
    pub content: String,
    /// The version the edit started from; omit to save whatever the latest is.
    #[serde(default)]
    pub base_version_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub version: u32,
}

// ---------------------------------------------------------------------------------------
// Server → client
// ---------------------------------------------------------------------------------------

/// One conversation entry. `content` is a string for text; for file messages an object in
/// protocol 2 and its JSON text for legacy clients, as the original sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ConversationMessage {
    pub role: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub content: Value,
}

/// The first frame on every connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InitialPayload {
    pub chat_id: String,
    #[serde(default)]
    pub chat_name: String,
    pub conversation: Vec<ConversationMessage>,
    pub chat_files_text: Vec<TextFile>,
    pub chat_files_based: Vec<BasedFile>,
    pub workspace_files: Vec<WorkspaceFile>,
    pub workspace_id: String,
    /// Names of the chat owner's models, for `new_message.model`.
    pub models: Vec<String>,
    #[serde(default)]
    pub initial: bool,
}

/// An uploaded context file of the chat with its extracted text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextFile {
    pub file_id: String,
    pub name: String,
    /// Extracted text; for images, the stored path.
    pub content: String,
    /// `"text"` or `"image"`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// A `.based` file of the chat with its version history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BasedFile {
    pub file_id: String,
    pub name: String,
    pub latest_content: String,
    /// Oldest first; the last one is the latest.
    pub versions: Vec<VersionInfo>,
    /// Always `"based"`.
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    pub version_id: String,
    pub timestamp: String,
    /// Unified diff from this version to the newest; `""` for the newest. Absent from a lean
    /// payload (`?v=2&lean=1`), whose clients ask for diffs with `get_diff`.
    #[serde(default)]
    pub diff: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceFile {
    pub file_id: String,
    pub name: String,
}

/// `{"error": "..."}`: the answer to any frame that could not be carried out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorFrame {
    pub error: String,
    /// Set when a `save_version` was refused because the file changed since its base.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict: Option<SaveConflict>,
}

impl ErrorFrame {
    pub fn new(error: impl Into<String>) -> Self {
        ErrorFrame {
            error: error.into(),
            conflict: None,
        }
    }
}

/// Which file a refused `save_version` named and what its latest version is now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaveConflict {
    pub file_id: String,
    pub base_version_id: String,
    pub latest_version_id: String,
}

/// The answer to `save_version` (and the body of `POST /file/{file_id}/versions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct VersionSaved {
    pub file_id: String,
    /// The new version; `null` when the content equals the latest and nothing was saved.
    pub version_id: Option<String>,
    pub unchanged: bool,
    /// The local validator's findings on the content (as `/based/validate` lists them);
    /// invalid Based is saved all the same.
    pub diagnostics: Vec<crate::rest::DiagnosticInfo>,
}

/// A server reply that carries an `action`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ServerAction {
    FileUploaded {
        message: Message<Structured<UploadedContent>>,
    },
    RevertComplete {
        message: Message<BasedFileContent>,
    },
    FileDeleted {
        message: DeletedMessage,
    },
    AgentResponse(AgentResponse),
    /// The answer to `get_diff`: a unified diff from one version to another.
    Diff(VersionDiff),
    /// The answer to `get_messages`.
    Messages(MessagesPage),
    /// The answer to `save_version`.
    VersionSaved(VersionSaved),
}

/// Conversation entries with their `seq`, oldest first; `has_more` when older ones exist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagesPage {
    pub messages: Vec<SeqMessage>,
    pub has_more: bool,
}

/// A conversation entry and its number within the chat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeqMessage {
    pub seq: i64,
    #[serde(flatten)]
    pub message: ConversationMessage,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionDiff {
    pub file_id: String,
    pub from_version_id: String,
    pub to_version_id: String,
    /// `""` when the two versions are equal.
    pub diff: String,
}

/// `{role, type, content}` with a typed content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message<T> {
    pub role: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub content: T,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadedContent {
    pub file_id: String,
    pub filename: String,
    pub path: String,
}

/// A `.based` file's content as the agent or a revert left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BasedFileContent {
    pub based_filename: String,
    pub based_content: String,
    /// A human-readable note (the revert's "Reverted to version …").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The `file_deleted` message. The original's web frontend reads `deleted_file_id` at the
/// message level. Its `content` is the original's note (`"<name> was deleted."`) for legacy
/// clients and the brief's object for protocol 2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletedMessage {
    pub role: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub content: Structured<DeletedContent>,
    #[serde(default)]
    pub deleted_file_id: String,
}

impl DeletedContent {
    /// The original's words for a deletion, as legacy clients see it in the conversation.
    pub fn note(filename: &str) -> String {
        format!("{filename} was deleted.")
    }
}

/// The content of a file entry: an object for protocol-2 clients; for legacy clients a
/// string, as the original sends it (its conversation entries are `{role, type, content: str}`
/// and structured ones hold their JSON text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Structured<T> {
    Object(T),
    Text(String),
}

impl<T: Serialize + serde::de::DeserializeOwned + Clone> Structured<T> {
    /// The object, parsed from its JSON text where it came as a string.
    pub fn object(&self) -> Option<T> {
        match self {
            Structured::Object(object) => Some(object.clone()),
            Structured::Text(text) => serde_json::from_str(text).ok(),
        }
    }

    /// The same content as a legacy client gets it: the object's JSON text.
    pub fn into_text(self) -> Self {
        match self {
            Structured::Object(object) => {
                // Serializing a derived struct of strings cannot fail.
                Structured::Text(serde_json::to_string(&object).unwrap_or_default())
            }
            text => text,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletedContent {
    pub deleted_file_id: String,
    pub filename: String,
}

/// The agent wrote a new `.based` file or a new version of one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentResponse {
    /// Always `"file"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The `.based` file's ID.
    pub id: String,
    pub content: BasedFileContent,
    pub message: Message<BasedFileContent>,
    /// The conversation entry as the original's clients store it: `content` is the JSON text
    /// of `{based_filename, based_content}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block: Option<Message<String>>,
}

/// Live events for protocol-2 clients: what happened in the chat, from any client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ChatEvent {
    /// A conversation entry was saved (`seq` orders them within the chat).
    MessageAdded { seq: i64, message: ConversationMessage },
    /// A context file (text or image) was added to the chat.
    TextFileAdded { file: TextFile },
    /// A `.based` file was added to the chat (by upload or by the agent).
    BasedFileAdded { file: BasedFile },
    /// A `.based` file got a new version (agent edit, revert, or the user's own edit).
    VersionAdded {
        file_id: String,
        filename: String,
        version_id: String,
        timestamp: String,
        content: String,
    },
    /// A file was removed from the chat.
    FileDeleted { file_id: String, filename: String },
    /// The agent's progress on a `new_message` of this chat. The `done` event carries the
    /// run's token usage, when the model's provider reported it.
    AgentProgress {
        stage: String,
        label: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<TokenUsage>,
    },
    /// The text the model wrote since the previous frame of this run (its answer, or the file
    /// or diff in a fenced block under its name), as it streams. `attempt` starts at 1; a new
    /// attempt's text starts afresh. Frames are coalesced to a few per second.
    AgentOutput { stage: String, attempt: u32, delta: String },
    /// The chat was renamed over REST.
    ChatRenamed { name: String },
    /// The chat (or its workspace) was deleted; the server closes the socket next.
    ChatDeleted,
}

/// Tokens a run's model calls used, as the provider counted them (summed over its calls).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

/// Any frame a server sends, for clients that parse them (plain text frames are the echo
/// and the agent's plain answers).
#[derive(Debug, Clone, PartialEq)]
pub enum ServerFrame {
    Initial(Box<InitialPayload>),
    Action(ServerAction),
    Event(ChatEvent),
    Error(ErrorFrame),
    Text(String),
}

impl ServerFrame {
    /// Classifies a text frame. Anything that is not one of the known JSON shapes is text.
    pub fn parse(text: &str) -> ServerFrame {
        let Ok(value) = serde_json::from_str::<Value>(text) else {
            return ServerFrame::Text(text.to_owned());
        };
        let Some(object) = value.as_object() else {
            return ServerFrame::Text(text.to_owned());
        };
        let parsed = if object.contains_key("initial") || object.contains_key("conversation") {
            serde_json::from_value(value).map(|p| ServerFrame::Initial(Box::new(p)))
        } else if object.contains_key("action") {
            serde_json::from_value(value).map(ServerFrame::Action)
        } else if object.contains_key("event") {
            serde_json::from_value(value).map(ServerFrame::Event)
        } else if object.contains_key("error") {
            serde_json::from_value(value).map(ServerFrame::Error)
        } else {
            return ServerFrame::Text(text.to_owned());
        };
        parsed.unwrap_or_else(|_| ServerFrame::Text(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::ClientAction;

    #[test]
    fn every_action_name_is_one_serde_knows() {
        assert_eq!(ClientAction::NAMES.len(), 9);
        for name in ClientAction::NAMES {
            let parsed = serde_json::from_value::<ClientAction>(serde_json::json!({ "action": name }));
            if let Err(error) = parsed {
                assert!(!error.to_string().contains("unknown variant"), "{name}: {error}");
            }
        }
    }
}

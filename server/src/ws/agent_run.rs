//! `new_message`: the user's prompt is saved at once, then the agent runs in its own task so
//! the session keeps reading frames (a `cancel` can arrive) and other chats are never held
//! up. Its result is saved with the assistant's message in one transaction before the reply.
//!
//! One run per chat at a time: a second `new_message` meanwhile is refused with an error.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use kafka_protocol::ws::{AgentResponse, BasedFileContent, ChatEvent, ErrorFrame, Message, NewMessage, ServerAction};
use serde_json::json;

use super::Session;
use super::actions::store_error;
use super::payload::{based_file, message_added, version_added};
use crate::agent::{
    self, AgentError, AgentInput, AgentOutcome, BasedFile, ContextFile, ConversationLine, ModelEndpoint, Progress,
};
use crate::hub::Outgoing;
use crate::state::SharedState;
use crate::store::{ChatFileRecord, FileKind, MessageRecord, StoreResult};

/// Everything the spawned run needs; the session may end while it works.
struct Run {
    state: SharedState,
    chat_id: String,
    reply_to: tokio::sync::mpsc::Sender<Outgoing>,
    /// Whether the chat's agent slot was given back (it must be, exactly once).
    released: AtomicBool,
}

pub async fn new_message(session: &Session, request: NewMessage) {
    let state = &session.state;
    if request.prompt.trim().is_empty() {
        return session.send_error("The prompt is empty.").await;
    }
    if let Err(too_long) = session.check_message_size("A prompt", &request.prompt) {
        return session.send_error(too_long).await;
    }
    if !session.admit(request.prompt.len()).await {
        return;
    }
    let chat = match state.store.chat(&session.chat_id).await {
        Ok(chat) => chat,
        Err(error) => return store_error(session, error).await,
    };
    let model = match state.store.model_by_name(&chat.user_id, &request.model).await {
        Ok(model) => model,
        Err(crate::store::StoreError::NotFound(_)) => {
            return session
                .send_error(format!(
                    "Model {:?} not found. Add it with POST /models/new, then pick it by name.",
                    request.model
                ))
                .await;
        }
        Err(error) => return store_error(session, error).await,
    };
    let cancel = match state.hub.start_agent_run(&chat.id).await {
        Ok(Some(cancel)) => cancel,
        Ok(None) => return refuse_busy(session).await,
        Err(error) => return store_error(session, error).await,
    };
    let run = Run {
        state: state.clone(),
        chat_id: chat.id.clone(),
        reply_to: session.queue.clone(),
        released: AtomicBool::new(false),
    };
    // The prompt is kept whatever happens next.
    let input = match run.save_prompt_and_gather(&request).await {
        Ok(input) => input,
        Err(error) => {
            run.release().await;
            return store_error(session, error).await;
        }
    };
    let endpoint = ModelEndpoint {
        name: model.name,
        base_url: model.base_url,
        api_key: model.api_key,
    };
    tokio::spawn(async move {
        let progress_state = run.state.clone();
        let progress_chat = run.chat_id.clone();
        let progress = move |step: Progress| {
            progress_state.hub.publish(
                &progress_chat,
                ChatEvent::AgentProgress {
                    stage: stage(&step).into(),
                    label: step.label(),
                },
            );
        };
        let outcome = agent::run(&run.state.llm, &endpoint, input, &progress, cancel).await;
        run.finish(outcome).await;
        run.release().await;
    });
}

async fn refuse_busy(session: &Session) {
    session
        .send_error("The agent is already working on this chat. Wait for its answer, or send {\"action\":\"cancel\"}.")
        .await;
}

fn stage(progress: &Progress) -> &'static str {
    match progress {
        Progress::Triage => "triage",
        Progress::Generating { .. } => "generating",
        Progress::Validating { .. } => "validating",
        Progress::Applying => "applying",
        Progress::Done => "done",
    }
}

impl Run {
    /// Saves the user's prompt and collects the agent's context from the chat.
    async fn save_prompt_and_gather(&self, request: &NewMessage) -> StoreResult<AgentInput> {
        let store = &self.state.store;
        let saved = store
            .append_messages(&self.chat_id, &[MessageRecord::text("user", &request.prompt)])
            .await?;
        for message in &saved {
            self.state.hub.publish(&self.chat_id, message_added(message));
        }
        // Three independent reads, side by side on the read pool; the newest version of every
        // file in one query (a query per file made this grow with the chat's files).
        let (conversation, files, latest) = tokio::try_join!(
            store.conversation(&self.chat_id),
            store.chat_files(&self.chat_id),
            store.latest_chat_versions(&self.chat_id),
        )?;
        let mut latest: HashMap<String, String> = latest.into_iter().map(|v| (v.file_id, v.content)).collect();
        let based: Vec<BasedFile> = files
            .iter()
            .filter(|f| f.kind == FileKind::Based)
            .filter_map(|file| {
                Some(BasedFile {
                    name: file.filename.clone(),
                    content: latest.remove(&file.id)?,
                })
            })
            .collect();
        let selected_name = request.selected_filename.as_deref().filter(|n| !n.is_empty());
        let (selected, other_based): (Vec<BasedFile>, Vec<BasedFile>) =
            based.into_iter().partition(|f| Some(f.name.as_str()) == selected_name);
        Ok(AgentInput {
            prompt: request.prompt.clone(),
            is_first_prompt: request.is_first_prompt,
            is_chat_or_composer: request.is_chat_or_composer,
            selected: selected.into_iter().next(),
            other_based,
            context_files: files.iter().filter_map(context_file).collect(),
            // The prompt itself is the last entry; the agent receives it separately.
            conversation: conversation[..conversation.len().saturating_sub(1)]
                .iter()
                .map(|m| ConversationLine {
                    role: m.role.clone(),
                    kind: m.kind.clone(),
                    content: m
                        .content
                        .as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| m.content.to_string()),
                })
                .collect(),
        })
    }

    /// Gives the chat's agent slot back, once. The final reply calls it first: a client may
    /// send its next prompt the moment it sees the answer, and must not be refused then.
    async fn release(&self) {
        if !self.released.swap(true, Ordering::SeqCst) {
            self.state.hub.finish_agent_run(&self.chat_id).await;
        }
    }

    /// Sends the run's reply (its last word), freeing the slot first.
    async fn send(&self, text: String) {
        self.release().await;
        let _ = self.reply_to.send(Outgoing::Text(text.into())).await;
    }

    async fn send_json<T: serde::Serialize>(&self, value: &T) {
        if let Ok(text) = serde_json::to_string(value) {
            self.send(text).await;
        }
    }

    /// Saves the outcome with the assistant's message, replies, and publishes the events.
    async fn finish(&self, outcome: Result<AgentOutcome, AgentError>) {
        let result = match outcome {
            Ok(AgentOutcome::Response { text }) => self.save_answer(text).await,
            Ok(AgentOutcome::NewFile { filename, content }) => self.save_new_file(filename, content).await,
            Ok(AgentOutcome::Edit { filename, content }) => self.save_edit(filename, content).await,
            Err(error) => self.save_failure(&error).await,
        };
        if let Err(error) = result {
            tracing::error!(chat_id = %self.chat_id, %error, "saving the agent's result failed");
            self.send_json(&ErrorFrame::new(
                "The agent's result could not be saved; nothing was changed.",
            ))
            .await;
        }
    }

    async fn save_answer(&self, text: String) -> StoreResult<()> {
        let saved = self
            .state
            .store
            .append_messages(&self.chat_id, &[MessageRecord::text("assistant", &text)])
            .await?;
        self.send(text).await;
        self.publish_messages(&saved);
        Ok(())
    }

    async fn save_failure(&self, error: &AgentError) -> StoreResult<()> {
        let text = format!("The agent stopped: {error}");
        let saved = self
            .state
            .store
            .append_messages(&self.chat_id, &[MessageRecord::text("system", &text)])
            .await?;
        self.send_json(&ErrorFrame::new(text)).await;
        self.publish_messages(&saved);
        Ok(())
    }

    async fn save_new_file(&self, filename: String, content: String) -> StoreResult<()> {
        let files = self.state.store.chat_files(&self.chat_id).await?;
        let filename = unique_name(&filename, &files);
        let body = BasedFileContent {
            based_filename: filename.clone(),
            based_content: content.clone(),
            message: None,
        };
        let message = MessageRecord::file("assistant", json!(body));
        let (version, saved) = self
            .state
            .store
            .create_based_file(&self.chat_id, &filename, &content, &message)
            .await?;
        self.send_json(&agent_response(&version.file_id, body)).await;
        self.state.hub.publish(
            &self.chat_id,
            ChatEvent::BasedFileAdded {
                file: based_file(&version.file_id, &filename, &[&version]),
            },
        );
        self.publish_messages(&[saved]);
        Ok(())
    }

    async fn save_edit(&self, filename: String, content: String) -> StoreResult<()> {
        let files = self.state.store.chat_files(&self.chat_id).await?;
        let Some(file) = files
            .iter()
            .find(|f| f.kind == FileKind::Based && f.filename == filename)
        else {
            // The selected file was deleted while the agent worked: keep the work as a new file.
            return self.save_new_file(filename, content).await;
        };
        let body = BasedFileContent {
            based_filename: filename.clone(),
            based_content: content.clone(),
            message: None,
        };
        let message = MessageRecord::file("assistant", json!(body));
        let (version, saved) = self
            .state
            .store
            .add_version(&self.chat_id, &file.id, &content, |_| message)
            .await?;
        self.send_json(&agent_response(&file.id, body)).await;
        self.state
            .hub
            .publish(&self.chat_id, version_added(&filename, &version));
        self.publish_messages(&[saved]);
        Ok(())
    }

    fn publish_messages(&self, messages: &[MessageRecord]) {
        for message in messages {
            self.state.hub.publish(&self.chat_id, message_added(message));
        }
    }
}

fn agent_response(file_id: &str, body: BasedFileContent) -> ServerAction {
    fn file_message<T>(content: T) -> Message<T> {
        Message {
            role: "assistant".into(),
            kind: "file".into(),
            content,
        }
    }
    ServerAction::AgentResponse(AgentResponse {
        kind: "file".into(),
        id: file_id.to_owned(),
        content: body.clone(),
        // Serializing a derived struct of strings cannot fail.
        block: Some(file_message(serde_json::to_string(&body).unwrap_or_default())),
        message: file_message(body),
    })
}

fn context_file(file: &ChatFileRecord) -> Option<ContextFile> {
    match (file.kind, &file.extracted_text) {
        (FileKind::Text, Some(text)) => Some(ContextFile {
            name: file.filename.clone(),
            text: text.clone(),
        }),
        _ => None,
    }
}

/// `name`, or `stem-2.ext`, `stem-3.ext`, … when the chat already has a file by that name.
fn unique_name(name: &str, files: &[ChatFileRecord]) -> String {
    let taken = |candidate: &str| files.iter().any(|f| f.filename == candidate);
    if !taken(name) {
        return name.to_owned();
    }
    let (stem, extension) = name.rsplit_once('.').map_or((name, ""), |(s, e)| (s, e));
    (2..)
        .map(|n| {
            if extension.is_empty() {
                format!("{stem}-{n}")
            } else {
                format!("{stem}-{n}.{extension}")
            }
        })
        .find(|candidate| !taken(candidate))
        .unwrap_or_else(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str) -> ChatFileRecord {
        ChatFileRecord {
            id: name.into(),
            filename: name.into(),
            path: String::new(),
            kind: FileKind::Based,
            extracted_text: None,
        }
    }

    #[test]
    fn unique_names_get_a_number() {
        assert_eq!(unique_name("a.based", &[]), "a.based");
        assert_eq!(unique_name("a.based", &[file("a.based")]), "a-2.based");
        assert_eq!(
            unique_name("a.based", &[file("a.based"), file("a-2.based")]),
            "a-3.based"
        );
        assert_eq!(unique_name("a", &[file("a")]), "a-2");
    }
}

//! `new_message`: the user's prompt is saved at once, then the agent runs in its own task so
//! the session keeps reading frames (a `cancel` can arrive) and other chats are never held
//! up. Its result is saved with the assistant's message in one transaction before the reply.
//!
//! One run per chat at a time: a second `new_message` meanwhile is refused with an error.
//!
//! The answer's text streams to the chat's protocol-2 clients as `agent_output` frames,
//! gathered so that a chat gets at most one every [`OUTPUT_INTERVAL`].

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kafka_protocol::ws::{
    AgentResponse, BasedFileContent, ChatEvent, ErrorFrame, Message, NewMessage, ServerAction, TokenUsage,
};
use parking_lot::Mutex;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::Session;
use super::actions::{service_error, store_error};
use crate::agent::{
    self, AgentError, AgentInput, AgentOutcome, BasedFile, ContextFile, ConversationLine, ModelEndpoint, Observer,
    Progress, Usage,
};
use crate::hub::Outgoing;
use crate::service::agent::SavedFile;
use crate::service::{self, Done, ServiceError, conversation};
use crate::state::SharedState;
use crate::store::{AgentRunRecord, ChatFileRecord, FileKind, MessageRecord, now_iso};

/// Streamed text goes out at most this often per chat (about 20 frames a second): each frame
/// crosses the event bus and every client's socket, and a model writes far more pieces.
const OUTPUT_INTERVAL: Duration = Duration::from_millis(50);

/// Everything the spawned run needs; the session may end while it works.
struct Run {
    state: SharedState,
    chat_id: String,
    reply_to: tokio::sync::mpsc::Sender<Outgoing>,
    /// Whether the chat's agent slot was given back (it must be, exactly once).
    released: AtomicBool,
    /// The run's record, saved (once) just before its reply so that a client who has the
    /// reply finds it.
    record: Mutex<Option<AgentRunRecord>>,
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
        record: Mutex::default(),
    };
    // The prompt is kept whatever happens next.
    let input = match run.save_prompt_and_gather(&request).await {
        Ok(input) => input,
        Err(error) => {
            run.release().await;
            return service_error(session, error).await;
        }
    };
    let endpoint = ModelEndpoint {
        name: model.name,
        base_url: model.base_url,
        api_key: model.api_key,
    };
    tokio::spawn(async move {
        let started_at = now_iso();
        let observer = Arc::new(RunObserver::new(run.state.clone(), run.chat_id.clone()));
        let ticker = observer.clone().start_ticker();
        let outcome = agent::run(&run.state.llm, &endpoint, input, observer.as_ref(), cancel).await;
        // Text still gathered belongs to an answer that failed or was cancelled: dropped.
        drop(ticker);
        *run.record.lock() = Some(AgentRunRecord {
            chat_id: run.chat_id.clone(),
            model: endpoint.name.clone(),
            outcome: outcome_kind(&outcome).to_string(),
            message_seq: None,
            tokens: observer.total_usage().map(stored_tokens),
            started_at,
            finished_at: String::new(),
        });
        run.finish(outcome).await;
        run.release().await;
    });
}

fn outcome_kind(outcome: &Result<AgentOutcome, AgentError>) -> &'static str {
    match outcome {
        Ok(AgentOutcome::Response { .. }) => "answer",
        Ok(AgentOutcome::NewFile { .. }) => "file",
        Ok(AgentOutcome::Edit { .. }) => "edit",
        Err(AgentError::Cancelled) => "cancelled",
        Err(_) => "failed",
    }
}

/// Publishes a run's progress and streamed text to the chat, and adds up its token usage.
struct RunObserver {
    state: SharedState,
    chat_id: String,
    usage: Mutex<Option<Usage>>,
    pending: Mutex<PendingOutput>,
}

/// Streamed text not yet sent.
#[derive(Default)]
struct PendingOutput {
    attempt: u32,
    text: String,
    last_sent: Option<Instant>,
}

impl RunObserver {
    fn new(state: SharedState, chat_id: String) -> Self {
        Self {
            state,
            chat_id,
            usage: Mutex::default(),
            pending: Mutex::default(),
        }
    }

    fn total_usage(&self) -> Option<Usage> {
        *self.usage.lock()
    }

    /// Sends gathered text every interval, so the end of a burst does not wait for the next
    /// piece (a model may pause for seconds). Stops when the returned guard is dropped.
    fn start_ticker(self: Arc<Self>) -> DropGuard {
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(OUTPUT_INTERVAL);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while stopped.run_until_cancelled(interval.tick()).await.is_some() {
                self.flush(false);
            }
        });
        stop.drop_guard()
    }

    /// Sends the gathered text: always when `now`, else once the interval has passed.
    fn flush(&self, now: bool) {
        let mut pending = self.pending.lock();
        let due = now || pending.last_sent.is_none_or(|at| at.elapsed() >= OUTPUT_INTERVAL);
        if due && !pending.text.is_empty() {
            self.send_output(&mut pending);
        }
    }

    fn send_output(&self, pending: &mut PendingOutput) {
        let delta = std::mem::take(&mut pending.text);
        pending.last_sent = Some(Instant::now());
        self.state.hub.publish(
            &self.chat_id,
            ChatEvent::AgentOutput {
                stage: "generating".into(),
                attempt: pending.attempt,
                delta,
            },
        );
    }
}

impl Observer for RunObserver {
    fn progress(&self, step: Progress) {
        // What the model wrote goes out before the step that follows it (validating, done).
        self.flush(true);
        let usage = match step {
            Progress::Done => self.total_usage().map(token_usage),
            _ => None,
        };
        self.state.hub.publish(
            &self.chat_id,
            ChatEvent::AgentProgress {
                stage: stage(&step).into(),
                label: step.label(),
                usage,
            },
        );
    }

    fn output(&self, attempt: u32, delta: &str) {
        let mut pending = self.pending.lock();
        if pending.attempt != attempt && !pending.text.is_empty() {
            self.send_output(&mut pending);
        }
        pending.attempt = attempt;
        pending.text.push_str(delta);
        if pending.last_sent.is_none_or(|at| at.elapsed() >= OUTPUT_INTERVAL) {
            self.send_output(&mut pending);
        }
    }

    fn usage(&self, usage: Usage) {
        *self.usage.lock().get_or_insert_default() += usage;
    }
}

fn stored_tokens(usage: Usage) -> (i64, i64, i64) {
    let column = |count: u64| i64::try_from(count).unwrap_or(i64::MAX);
    (
        column(usage.prompt_tokens),
        column(usage.completion_tokens),
        column(usage.total_tokens),
    )
}

fn token_usage(usage: Usage) -> TokenUsage {
    TokenUsage {
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
        total_tokens: usage.total_tokens,
    }
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
    async fn save_prompt_and_gather(&self, request: &NewMessage) -> Result<AgentInput, ServiceError> {
        let store = &self.state.store;
        let prompt = MessageRecord::text("user", &request.prompt);
        conversation::append(&self.state, &self.chat_id, &[prompt])
            .await?
            .publish(&self.state.hub);
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

    /// Saves the run's record with the `seq` of the entry it produced, once.
    async fn record_run(&self, message_seq: Option<i64>) {
        let record = self.record.lock().take();
        let Some(mut record) = record else { return };
        record.message_seq = message_seq;
        record.finished_at = now_iso();
        if let Err(error) = self.state.store.record_agent_run(record).await {
            tracing::error!(chat_id = %self.chat_id, %error, "recording the agent run failed");
        }
    }

    /// Saves the outcome with the assistant's message, records the run, replies, and
    /// publishes the events.
    async fn finish(&self, outcome: Result<AgentOutcome, AgentError>) {
        let result = match outcome {
            Ok(AgentOutcome::Response { text }) => self.save_answer(text).await,
            Ok(AgentOutcome::NewFile { filename, content }) => {
                let saved = service::agent::save_new_file(&self.state, &self.chat_id, &filename, &content);
                self.reply_with_file(saved.await).await
            }
            Ok(AgentOutcome::Edit { filename, content }) => {
                let saved = service::agent::save_edit(&self.state, &self.chat_id, &filename, &content);
                self.reply_with_file(saved.await).await
            }
            Err(error) => self.save_failure(&error).await,
        };
        if let Err(error) = result {
            tracing::error!(chat_id = %self.chat_id, %error, "saving the agent's result failed");
            self.record_run(None).await;
            self.send_json(&ErrorFrame::new(
                "The agent's result could not be saved; nothing was changed.",
            ))
            .await;
        }
    }

    async fn save_answer(&self, text: String) -> Result<(), ServiceError> {
        let done = conversation::append(&self.state, &self.chat_id, &[MessageRecord::text("assistant", &text)]).await?;
        self.record_run(last_seq(&done.value)).await;
        self.send(text).await;
        done.publish(&self.state.hub);
        Ok(())
    }

    async fn save_failure(&self, error: &AgentError) -> Result<(), ServiceError> {
        let text = format!("The agent stopped: {error}");
        let done = conversation::append(&self.state, &self.chat_id, &[MessageRecord::text("system", &text)]).await?;
        self.record_run(last_seq(&done.value)).await;
        self.send_json(&ErrorFrame::new(text)).await;
        done.publish(&self.state.hub);
        Ok(())
    }

    /// Records the run with the file's entry, replies with the file, then publishes.
    async fn reply_with_file(&self, saved: Result<Done<SavedFile>, ServiceError>) -> Result<(), ServiceError> {
        let done = saved?;
        self.record_run(Some(done.value.message.seq)).await;
        self.send_json(&agent_response(&done.value.file_id, done.value.content.clone()))
            .await;
        done.publish(&self.state.hub);
        Ok(())
    }
}

fn last_seq(saved: &[MessageRecord]) -> Option<i64> {
    saved.last().map(|m| m.seq)
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

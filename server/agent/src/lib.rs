//! The coding agent: given a chat's request and context, it answers in plain text, writes a
//! new `.based` file, or edits the selected one, checking its own code with the local
//! validator and retrying with the diagnostics until the code is valid.
//!
//! `run` is the whole public face; the model is any OpenAI-compatible endpoint.

pub mod hosts;
mod llm;
mod pipeline;
mod prompts;
mod reply;
mod sse;
mod tools;

use tokio_util::sync::CancellationToken;

pub use hosts::{HostLookup, HostRefusal};
pub use llm::{LlmClient, LlmError, LlmSettings, ModelEndpoint, Usage};

#[derive(Debug, Clone)]
pub struct BasedFile {
    pub name: String,
    pub content: String,
}

/// A document attached to the chat, as extracted text.
#[derive(Debug, Clone)]
pub struct ContextFile {
    pub name: String,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct ConversationLine {
    pub role: String,
    pub kind: String,
    pub content: String,
}

#[derive(Debug, Clone)]
pub struct AgentInput {
    pub prompt: String,
    /// The chat's first prompt: always writes a new file.
    pub is_first_prompt: bool,
    /// False outside chat/composer mode: always a plain answer.
    pub is_chat_or_composer: bool,
    /// The file an edit applies to, at its latest version.
    pub selected: Option<BasedFile>,
    pub other_based: Vec<BasedFile>,
    pub context_files: Vec<ContextFile>,
    pub conversation: Vec<ConversationLine>,
}

/// A finished result; code in it has passed the validator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentOutcome {
    Response {
        text: String,
    },
    NewFile {
        filename: String,
        content: String,
    },
    /// The new whole content of the selected file.
    Edit {
        filename: String,
        content: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Triage,
    Generating { attempt: u32 },
    Validating { attempt: u32, max: u32 },
    Applying,
    Done,
}

impl Progress {
    /// Short text for a status line.
    pub fn label(&self) -> String {
        match self {
            Self::Triage => "triage".to_string(),
            Self::Generating { attempt: 1 } => "generating".to_string(),
            Self::Generating { attempt } => format!("generating attempt {attempt}"),
            Self::Validating { attempt, max } => format!("validating attempt {attempt}/{max}"),
            Self::Applying => "applying".to_string(),
            Self::Done => "done".to_string(),
        }
    }
}

/// What a run reports as it goes. A plain `Fn(Progress)` closure is an observer that wants
/// only the progress.
pub trait Observer: Send + Sync {
    fn progress(&self, step: Progress);

    /// New text of the answer being written on attempt `attempt` (triage's answers are not
    /// shown), in order; an attempt's pieces joined are its whole answer.
    fn output(&self, _attempt: u32, _delta: &str) {}

    /// The provider's token count for one model call, when it gives one.
    fn usage(&self, _usage: Usage) {}
}

impl<F: Fn(Progress) + Send + Sync> Observer for F {
    fn progress(&self, step: Progress) {
        self(step)
    }
}

/// Display is the message shown to the user.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("the request was cancelled")]
    Cancelled,
    #[error(transparent)]
    Model(#[from] LlmError),
    #[error("the model's answer was still not usable after {attempts} attempts. Last problem: {last_problem}")]
    GaveUp { attempts: u32, last_problem: String },
}

/// Runs the agent once. Nothing is half-done on error: the outcome is returned only when
/// complete and valid. Cancelling `cancel` aborts the model call in flight (closing its
/// connection).
pub async fn run(
    llm: &LlmClient,
    model: &ModelEndpoint,
    input: AgentInput,
    observer: &dyn Observer,
    cancel: CancellationToken,
) -> Result<AgentOutcome, AgentError> {
    pipeline::Driver {
        llm,
        model,
        observer,
        cancel,
    }
    .run(&input)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_labels() {
        assert_eq!(Progress::Triage.label(), "triage");
        assert_eq!(Progress::Generating { attempt: 1 }.label(), "generating");
        assert_eq!(Progress::Generating { attempt: 3 }.label(), "generating attempt 3");
        assert_eq!(
            Progress::Validating { attempt: 2, max: 5 }.label(),
            "validating attempt 2/5"
        );
        assert_eq!(Progress::Applying.label(), "applying");
        assert_eq!(Progress::Done.label(), "done");
    }
}

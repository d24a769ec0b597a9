//! One agent run: choose a route (by the request's flags or by a triage call), then ask the
//! model until its answer passes the checks, feeding each problem back. Routing, checks and
//! the attempt bookkeeping are pure; `Driver` performs the effects (model calls, progress).

use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::llm::{ChatMessage, LlmClient, ModelEndpoint, Role};
use super::prompts::{self, PromptContext, Task};
use super::reply::{self, TriageReply};
use super::{AgentError, AgentInput, AgentOutcome, BasedFile, Observer, Progress};
use kafka_based as based;
use kafka_diff as diff;

const MAX_ATTEMPTS: u32 = 5;
/// More diagnostics than this only bury the first ones, which the model should fix first.
const MAX_DIAGNOSTICS_SHOWN: usize = 20;
const MAX_FILENAME_CHARS: usize = 100;

/// What the run will produce, and from what.
#[derive(Debug, Clone, Copy)]
enum Plan<'a> {
    Generate,
    Diff(&'a BasedFile),
    Respond,
}

impl Plan<'_> {
    fn task(self) -> Task {
        match self {
            Self::Generate => Task::Generate,
            Self::Diff(_) => Task::Diff,
            Self::Respond => Task::Respond,
        }
    }
}

/// The brief's flags decide without triage: a chat's first prompt always writes a new file,
/// and a message sent outside chat/composer mode always gets a plain answer.
fn plan_from_flags(input: &AgentInput) -> Option<Plan<'_>> {
    if input.is_first_prompt {
        Some(Plan::Generate)
    } else if !input.is_chat_or_composer {
        Some(Plan::Respond)
    } else {
        None
    }
}

/// A diff needs a file to apply to; without a selected file it becomes a new file.
fn plan_from_triage<'a>(triage: &TriageReply, selected: Option<&'a BasedFile>) -> Plan<'a> {
    match selected {
        _ if triage.plain_response => Plan::Respond,
        Some(file) if !triage.gen_new_file => Plan::Diff(file),
        _ => Plan::Generate,
    }
}

/// The transcript of one task across its attempts: each rejected answer stays in it as an
/// assistant turn, followed by a user turn saying what was wrong.
#[derive(Debug)]
struct FixLoop {
    messages: Vec<ChatMessage>,
    attempt: u32,
    last_problem: String,
}

impl FixLoop {
    fn new(messages: Vec<ChatMessage>) -> Self {
        Self {
            messages,
            attempt: 0,
            last_problem: String::new(),
        }
    }

    /// The number of the attempt to make now, or `None` once all are spent.
    fn next_attempt(&mut self) -> Option<u32> {
        (self.attempt < MAX_ATTEMPTS).then(|| {
            self.attempt += 1;
            self.attempt
        })
    }

    fn messages(&self) -> &[ChatMessage] {
        &self.messages
    }

    fn reject(&mut self, answer: String, problem: String) {
        self.messages.push(ChatMessage::new(Role::Assistant, answer));
        self.messages
            .push(ChatMessage::new(Role::User, prompts::feedback(&problem)));
        self.last_problem = problem;
    }

    fn give_up(self) -> AgentError {
        AgentError::GaveUp {
            attempts: self.attempt,
            last_problem: self.last_problem,
        }
    }
}

fn check_generate(raw: &str) -> Result<AgentOutcome, String> {
    let reply = reply::parse_code(raw, "based")?;
    check_based(&reply.text)?;
    Ok(AgentOutcome::NewFile {
        filename: sanitize_filename(&reply.filename),
        content: reply.text,
    })
}

fn check_diff(raw: &str, selected: &BasedFile) -> Result<AgentOutcome, String> {
    let reply = reply::parse_code(raw, "diff")?;
    let content = diff::apply_tolerant(&selected.content, &reply.text).map_err(|e| {
        format!(
            "Your diff did not apply to {}: {e}. Write the diff against the selected file exactly \
             as shown, copying its context and removed lines verbatim.",
            selected.name
        )
    })?;
    if content == selected.content {
        return Err("Your diff leaves the file unchanged; it must make the requested change.".to_string());
    }
    check_based(&content).map_err(|problem| {
        // Every attempt's diff applies to the original file, never to a rejected result.
        format!(
            "{problem}\nThese line numbers are those of the file after your diff. Send a new diff \
             against the selected file as shown above, not against your previous result."
        )
    })?;
    Ok(AgentOutcome::Edit {
        filename: selected.name.clone(),
        content,
    })
}

fn check_respond(raw: &str) -> Result<AgentOutcome, String> {
    let text = reply::parse_text(raw);
    if text.trim().is_empty() {
        return Err("your answer was empty; it must hold your reply".to_string());
    }
    Ok(AgentOutcome::Response { text })
}

/// Errors only: warnings do not block a file, so they are not worth another attempt.
fn check_based(source: &str) -> Result<(), String> {
    let diagnostics = based::validate(source);
    if !based::has_errors(&diagnostics) {
        return Ok(());
    }
    let errors: Vec<String> = diagnostics
        .iter()
        .filter(|d| d.severity == based::Severity::Error)
        .take(MAX_DIAGNOSTICS_SHOWN)
        .map(|d| based::describe_for_model(source, d))
        .collect();
    Err(format!(
        "The Based validator found errors in the resulting file:\n{}",
        errors.join("\n")
    ))
}

/// A bare file name ending in `.based`: the model's name may carry a path, `..` or control
/// characters, and the name is used as is in the workspace.
fn sanitize_filename(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut name: String = last
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_FILENAME_CHARS)
        .collect();
    while name.contains("..") {
        name = name.replace("..", ".");
    }
    let name = name.trim().trim_start_matches('.');
    let stem = name.strip_suffix(".based").unwrap_or(name).trim();
    let stem = if stem.is_empty() { "agent" } else { stem };
    format!("{stem}.based")
}

/// Performs a run's effects: model calls under the cancellation token, reports to the
/// observer.
pub(crate) struct Driver<'a> {
    pub llm: &'a LlmClient,
    pub model: &'a ModelEndpoint,
    pub observer: &'a dyn Observer,
    pub cancel: CancellationToken,
}

impl Driver<'_> {
    pub async fn run(&self, input: &AgentInput) -> Result<AgentOutcome, AgentError> {
        let (plan, context) = match plan_from_flags(input) {
            Some(plan) => (plan, PromptContext::everything(input)),
            None => {
                let triage = self.triage(input).await?;
                (
                    plan_from_triage(&triage, input.selected.as_ref()),
                    PromptContext::chosen(input, &triage),
                )
            }
        };
        let outcome = self.produce(plan, &context).await?;
        if !matches!(plan, Plan::Respond) {
            self.observer.progress(Progress::Applying);
        }
        self.observer.progress(Progress::Done);
        Ok(outcome)
    }

    async fn triage(&self, input: &AgentInput) -> Result<TriageReply, AgentError> {
        self.observer.progress(Progress::Triage);
        self.ask_until_valid(Task::Triage, prompts::triage_messages(input), reply::parse)
            .await
    }

    async fn produce(&self, plan: Plan<'_>, context: &PromptContext<'_>) -> Result<AgentOutcome, AgentError> {
        let task = plan.task();
        let messages = prompts::task_messages(task, context);
        match plan {
            Plan::Generate => self.ask_until_valid(task, messages, check_generate).await,
            Plan::Diff(selected) => {
                let check = |raw: &str| check_diff(raw, selected);
                self.ask_until_valid(task, messages, check).await
            }
            Plan::Respond => self.ask_until_valid(task, messages, check_respond).await,
        }
    }

    async fn ask_until_valid<T>(
        &self,
        task: Task,
        messages: Vec<ChatMessage>,
        check: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, AgentError> {
        let mut fix = FixLoop::new(messages);
        while let Some(attempt) = fix.next_attempt() {
            if task != Task::Triage {
                self.observer.progress(Progress::Generating { attempt });
            }
            let answer = self.call(task, attempt, fix.messages()).await?;
            if matches!(task, Task::Generate | Task::Diff) {
                self.observer.progress(Progress::Validating {
                    attempt,
                    max: MAX_ATTEMPTS,
                });
            }
            match check(&answer) {
                Ok(value) => return Ok(value),
                Err(problem) => {
                    let task = task.as_str();
                    tracing::info!(task, attempt, problem = %problem, "model answer rejected");
                    fix.reject(answer, problem);
                }
            }
        }
        Err(fix.give_up())
    }

    /// Cancelling drops the in-flight request, which closes its connection at once.
    /// The span puts the fix-loop attempt on the client's per-call log line.
    async fn call(&self, task: Task, attempt: u32, messages: &[ChatMessage]) -> Result<String, AgentError> {
        let span = tracing::info_span!("agent_attempt", attempt);
        let on_delta = |delta: &str| {
            if task != Task::Triage {
                self.observer.output(attempt, delta);
            }
        };
        let request = self
            .llm
            .complete(self.model, task.as_str(), messages, task.answers_in_json(), &on_delta);
        let answer = self
            .cancel
            .run_until_cancelled(request.instrument(span))
            .await
            .ok_or(AgentError::Cancelled)?
            .map_err(AgentError::Model)?;
        if let Some(usage) = answer.usage {
            self.observer.usage(usage);
        }
        Ok(answer.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "loop:\n    r = talk(\"Ask the time.\", True)\nuntil \"user gave the time\":\n    return\n";

    fn code(kind: &str, filename: &str, text: &str) -> String {
        serde_json::json!({ "type": kind, "filename": filename, "text": text }).to_string()
    }

    fn input(first: bool, chat: bool) -> AgentInput {
        AgentInput {
            prompt: "p".into(),
            is_first_prompt: first,
            is_chat_or_composer: chat,
            selected: None,
            other_based: vec![],
            context_files: vec![],
            conversation: vec![],
        }
    }

    fn triage(plain: bool, new_file: bool) -> TriageReply {
        TriageReply {
            summary: String::new(),
            extraction_indices: vec![],
            gen_new_file: new_file,
            files_list: vec![],
            plain_response: plain,
            tools: vec![],
        }
    }

    #[test]
    fn flags_skip_triage() {
        assert!(matches!(plan_from_flags(&input(true, true)), Some(Plan::Generate)));
        assert!(matches!(plan_from_flags(&input(true, false)), Some(Plan::Generate)));
        assert!(matches!(plan_from_flags(&input(false, false)), Some(Plan::Respond)));
        assert!(plan_from_flags(&input(false, true)).is_none());
    }

    #[test]
    fn triage_picks_the_plan() {
        let file = BasedFile {
            name: "a.based".into(),
            content: VALID.into(),
        };
        assert!(matches!(
            plan_from_triage(&triage(true, false), Some(&file)),
            Plan::Respond
        ));
        assert!(
            matches!(plan_from_triage(&triage(false, false), Some(&file)), Plan::Diff(f)
                if f.name == "a.based")
        );
        assert!(matches!(
            plan_from_triage(&triage(false, true), Some(&file)),
            Plan::Generate
        ));
        assert!(matches!(plan_from_triage(&triage(false, false), None), Plan::Generate));
    }

    #[test]
    fn fix_loop_keeps_answers_and_feedback_and_stops_at_five() {
        let mut fix = FixLoop::new(vec![ChatMessage::new(Role::User, "go")]);
        for expected in 1..=MAX_ATTEMPTS {
            assert_eq!(fix.next_attempt(), Some(expected));
            fix.reject(format!("answer {expected}"), format!("problem {expected}"));
        }
        assert_eq!(fix.next_attempt(), None);
        assert_eq!(fix.messages().len(), 1 + 2 * MAX_ATTEMPTS as usize);
        assert_eq!(fix.messages()[1], ChatMessage::new(Role::Assistant, "answer 1"));
        assert!(fix.messages()[2].content.contains("problem 1"));
        match fix.give_up() {
            AgentError::GaveUp { attempts, last_problem } => {
                assert_eq!(attempts, 5);
                assert_eq!(last_problem, "problem 5");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn generate_accepts_valid_code_and_names_it() {
        let outcome = check_generate(&code("based", "../x/booking", VALID)).unwrap();
        assert_eq!(
            outcome,
            AgentOutcome::NewFile {
                filename: "booking.based".into(),
                content: VALID.into()
            }
        );
    }

    #[test]
    fn generate_reports_diagnostics() {
        let problem = check_generate(&code("based", "a.based", "while True:\n    say(1)\n")).unwrap_err();
        assert!(problem.contains("line 1, column 1"), "{problem}");
    }

    #[test]
    fn diff_applies_and_is_validated() {
        let file = BasedFile {
            name: "a.based".into(),
            content: VALID.into(),
        };
        let patch = "@@ -4,1 +4,2 @@\n until \"user gave the time\":\n+    say(\"ok\")\n     return\n";
        let Ok(AgentOutcome::Edit { filename, content }) = check_diff(&code("diff", "zzz", patch), &file) else {
            panic!("diff should apply");
        };
        assert_eq!(filename, "a.based");
        assert!(content.contains("    say(\"ok\")\n    return"));
        let unchanged = check_diff(&code("diff", "a.based", "@@ -1 +1 @@\n loop:\n"), &file).unwrap_err();
        assert!(unchanged.contains("unchanged"));
        let missing = check_diff(&code("diff", "a.based", "@@ -1 +1 @@\n-nothing like this\n+x\n"), &file).unwrap_err();
        assert!(missing.contains("did not apply to a.based: hunk 1"), "{missing}");
    }

    #[test]
    fn respond_needs_text() {
        assert_eq!(
            check_respond(r#"{"text": "hi"}"#),
            Ok(AgentOutcome::Response { text: "hi".into() })
        );
        assert_eq!(
            check_respond("Use `talk`.\n"),
            Ok(AgentOutcome::Response {
                text: "Use `talk`.".into()
            })
        );
        assert!(check_respond(r#"{"text": ""}"#).is_err());
        assert!(check_respond(" \n").is_err());
    }

    #[test]
    fn filenames_are_sanitized() {
        assert_eq!(sanitize_filename("booking"), "booking.based");
        assert_eq!(sanitize_filename("booking.based"), "booking.based");
        assert_eq!(sanitize_filename("../../etc/passwd"), "passwd.based");
        assert_eq!(sanitize_filename("a\\b\u{0}c..d.based"), "bc.d.based");
        assert_eq!(sanitize_filename(".."), "agent.based");
        assert_eq!(sanitize_filename(""), "agent.based");
    }
}

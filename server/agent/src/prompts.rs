//! What the model is told: one system message per task (naming the task on its first line,
//! then the rules, the Based guide and the tool catalogue) and one user message carrying the
//! chat's context and the request.

use std::fmt::Write;

use super::llm::{ChatMessage, Role};
use super::reply::TriageReply;
use super::tools::{self, TOOLS, Tool};
use super::{AgentInput, BasedFile, ContextFile, ConversationLine};

/// Our own guide to Based for the model, written from the project's language reference.
const BASED_GUIDE: &str = include_str!("text/guide.md");
const TOOLS_INTRO: &str = include_str!("text/tools.md");

/// Bounds on what one message carries, so a large upload cannot blow the model's context.
const MAX_FILE_CHARS: usize = 30_000;
const MAX_LINE_CHARS: usize = 4_000;
/// Triage only needs a glimpse of each item to choose among them.
const TRIAGE_PREVIEW_CHARS: usize = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Task {
    Triage,
    Generate,
    Diff,
    Respond,
}

impl Task {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Triage => "triage",
            Self::Generate => "generate",
            Self::Diff => "diff",
            Self::Respond => "respond",
        }
    }

    /// Whether the answer is JSON, asked for with the provider's JSON mode. The others are
    /// Markdown, which reads well while it streams.
    pub fn answers_in_json(self) -> bool {
        self == Self::Triage
    }

    /// What the model is asked to do, and the shape of its answer.
    fn rules(self) -> &'static str {
        match self {
            Self::Triage => include_str!("text/triage.md"),
            Self::Generate => include_str!("text/generate.md"),
            Self::Diff => include_str!("text/diff.md"),
            Self::Respond => include_str!("text/respond.md"),
        }
    }
}

/// The part of the chat that one generate / diff / respond call gets to see.
#[derive(Debug, Clone)]
pub(crate) struct PromptContext<'a> {
    pub prompt: &'a str,
    /// Conversation lines with their index in the whole conversation.
    pub conversation: Vec<(usize, &'a ConversationLine)>,
    pub context_files: Vec<&'a ContextFile>,
    pub selected: Option<&'a BasedFile>,
    pub other_based: Vec<&'a BasedFile>,
    pub tools: Vec<&'static Tool>,
}

impl<'a> PromptContext<'a> {
    /// Everything the chat has: used when triage is skipped.
    pub fn everything(input: &'a AgentInput) -> Self {
        Self {
            prompt: &input.prompt,
            conversation: input.conversation.iter().enumerate().collect(),
            context_files: input.context_files.iter().collect(),
            selected: input.selected.as_ref(),
            other_based: input.other_based.iter().collect(),
            tools: TOOLS.iter().collect(),
        }
    }

    /// What triage picked. The selected file always goes along, since edits apply to it;
    /// unknown indices and names are ignored rather than failing the run.
    pub fn chosen(input: &'a AgentInput, triage: &TriageReply) -> Self {
        let picked = |name: &str| triage.files_list.iter().any(|f| f.trim() == name);
        Self {
            prompt: &input.prompt,
            conversation: input
                .conversation
                .iter()
                .enumerate()
                .filter(|(i, _)| triage.extraction_indices.contains(i))
                .collect(),
            context_files: input.context_files.iter().filter(|f| picked(&f.name)).collect(),
            selected: input.selected.as_ref(),
            other_based: input.other_based.iter().filter(|f| picked(&f.name)).collect(),
            tools: tools::by_function(&triage.tools),
        }
    }
}

pub(crate) fn triage_messages(input: &AgentInput) -> Vec<ChatMessage> {
    vec![
        ChatMessage::new(Role::System, system_header(Task::Triage)),
        ChatMessage::new(Role::User, triage_context(input)),
    ]
}

pub(crate) fn task_messages(task: Task, context: &PromptContext) -> Vec<ChatMessage> {
    vec![
        ChatMessage::new(Role::System, task_system(task, context)),
        ChatMessage::new(Role::User, task_context(context)),
    ]
}

/// The user turn that follows a rejected answer.
pub(crate) fn feedback(problem: &str) -> String {
    format!(
        "Your previous answer could not be used.\n\n{problem}\n\n\
         Answer again in the required shape, fixing exactly these problems."
    )
}

fn triage_context(input: &AgentInput) -> String {
    let mut out = String::from("## Conversation\n");
    for (index, line) in input.conversation.iter().enumerate() {
        let _ = writeln!(
            out,
            "[{index}] {}: {}",
            speaker(line),
            clip(&line.content, TRIAGE_PREVIEW_CHARS)
        );
    }
    out.push_str("\n## Chat files\n");
    for file in &input.context_files {
        let _ = writeln!(
            out,
            "- {}: {}",
            file.name,
            clip(&file.text, TRIAGE_PREVIEW_CHARS).replace('\n', " ")
        );
    }
    out.push_str("\n## Selected .based file\n");
    let _ = writeln!(out, "{}", input.selected.as_ref().map_or("(none)", |f| f.name.as_str()));
    out.push_str("\n## Other .based files\n");
    for file in &input.other_based {
        let _ = writeln!(out, "- {}", file.name);
    }
    out.push_str("\n## Integration tools\n");
    for tool in TOOLS {
        let _ = writeln!(out, "- {} ({})", tool.function, tool.name);
    }
    let _ = write!(out, "\n## Request\n{}", input.prompt);
    out
}

/// The first line names the task, so that logs and fake models can tell calls apart.
fn system_header(task: Task) -> String {
    format!("kafka-task: {}\n{}", task.as_str(), task.rules())
}

fn task_system(task: Task, context: &PromptContext) -> String {
    let mut out = format!("{}\n\n{BASED_GUIDE}", system_header(task));
    if task != Task::Respond && !context.tools.is_empty() {
        let _ = write!(out, "\n{TOOLS_INTRO}");
        for tool in &context.tools {
            let _ = writeln!(out, "{}", tool.describe());
        }
    }
    out
}

fn task_context(context: &PromptContext) -> String {
    let mut out = String::new();
    if !context.conversation.is_empty() {
        out.push_str("## Conversation so far\n");
        for (index, line) in &context.conversation {
            let _ = writeln!(
                out,
                "[{index}] {}: {}",
                speaker(line),
                clip(&line.content, MAX_LINE_CHARS)
            );
        }
        out.push('\n');
    }
    for file in &context.context_files {
        let _ = writeln!(out, "## Chat file: {}\n{}\n", file.name, fenced(&file.text, ""));
    }
    for file in &context.other_based {
        let _ = writeln!(
            out,
            "## Other .based file: {}\n{}\n",
            file.name,
            fenced(&file.content, "based")
        );
    }
    if let Some(file) = context.selected {
        let _ = writeln!(
            out,
            "## Selected file: {} (latest version)\n{}\n",
            file.name,
            fenced(&file.content, "based")
        );
        out.push_str(&current_diagnostics(file));
    }
    let _ = write!(out, "## Request\n{}", context.prompt);
    out
}

/// Diagnostics shown for the selected file as it stands.
const MAX_SHOWN_DIAGNOSTICS: usize = 20;

/// What the validator says about the selected file now, when anything: the user may have
/// saved it with errors (their own edits are saved as they are), and the result of an edit
/// must validate, so the model learns of them before writing its change. Empty when clean.
fn current_diagnostics(file: &BasedFile) -> String {
    let diagnostics = kafka_based::validate(&file.content);
    if diagnostics.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "## Validator diagnostics of {} as it stands ({}); your result must fix the errors\n",
        file.name,
        diagnostics.len()
    );
    for d in diagnostics.iter().take(MAX_SHOWN_DIAGNOSTICS) {
        let severity = match d.severity {
            kafka_based::Severity::Error => "error",
            kafka_based::Severity::Warning => "warning",
        };
        let _ = writeln!(
            out,
            "- line {}, column {}: {severity}[{}]: {}",
            d.line, d.column, d.code, d.message
        );
    }
    out.push('\n');
    out
}

fn speaker(line: &ConversationLine) -> String {
    format!("{} ({})", line.role, line.kind)
}

/// Four backticks, so that code fences inside the text do not close ours.
fn fenced(text: &str, lang: &str) -> String {
    let text = text.strip_suffix('\n').unwrap_or(text);
    format!("````{lang}\n{}\n````", clip(text, MAX_FILE_CHARS))
}

fn clip(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}\n[… cut at {max_chars} characters]", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> AgentInput {
        AgentInput {
            prompt: "add a goodbye".into(),
            is_first_prompt: false,
            is_chat_or_composer: true,
            selected: Some(BasedFile {
                name: "main.based".into(),
                content: "say(\"hi\")\n".into(),
            }),
            other_based: vec![BasedFile {
                name: "other.based".into(),
                content: "say(1)".into(),
            }],
            context_files: vec![
                ContextFile {
                    name: "menu.pdf".into(),
                    text: "Pasta 12".into(),
                },
                ContextFile {
                    name: "junk.txt".into(),
                    text: "noise".into(),
                },
            ],
            conversation: vec![
                ConversationLine {
                    role: "user".into(),
                    kind: "text".into(),
                    content: "first".into(),
                },
                ConversationLine {
                    role: "assistant".into(),
                    kind: "text".into(),
                    content: "second".into(),
                },
            ],
        }
    }

    fn triage(indices: Vec<usize>, files: &[&str], tools: &[&str]) -> TriageReply {
        TriageReply {
            summary: String::new(),
            extraction_indices: indices,
            gen_new_file: false,
            files_list: files.iter().map(|s| s.to_string()).collect(),
            plain_response: false,
            tools: tools.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn system_messages_start_with_the_task_line() {
        let input = input();
        let context = PromptContext::everything(&input);
        assert!(triage_messages(&input)[0].content.starts_with("kafka-task: triage\n"));
        for task in [Task::Generate, Task::Diff, Task::Respond] {
            let first = task_messages(task, &context)[0]
                .content
                .lines()
                .next()
                .unwrap()
                .to_string();
            assert_eq!(first, format!("kafka-task: {}", task.as_str()));
        }
    }

    #[test]
    fn chosen_context_keeps_only_what_triage_picked() {
        let input = input();
        let context = PromptContext::chosen(
            &input,
            &triage(vec![1, 99], &["menu.pdf"], &["slack.send_channel_message"]),
        );
        assert_eq!(context.conversation.len(), 1);
        assert_eq!(context.conversation[0].0, 1);
        assert_eq!(context.context_files.len(), 1);
        assert!(context.other_based.is_empty());
        assert!(context.selected.is_some());
        assert_eq!(context.tools.len(), 1);
        let user = task_context(&context);
        assert!(user.contains("Pasta 12") && !user.contains("noise"));
        assert!(user.contains("[1] assistant (text): second") && !user.contains("first"));
    }

    #[test]
    fn generate_prompt_carries_guide_tools_and_files() {
        let input = input();
        let messages = task_messages(Task::Generate, &PromptContext::everything(&input));
        assert!(messages[0].content.contains("# Writing Based"));
        assert!(messages[0].content.contains("gmail.send_email"));
        assert!(messages[1].content.contains("## Selected file: main.based"));
        assert!(messages[1].content.ends_with("## Request\nadd a goodbye"));
    }

    #[test]
    fn long_text_is_clipped() {
        assert!(clip(&"é".repeat(50), 10).starts_with(&"é".repeat(10)));
        assert!(clip(&"é".repeat(50), 10).contains("cut at 10"));
        assert_eq!(clip("short", 10), "short");
    }
}

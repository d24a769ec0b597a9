//! Reading the model's answers. Code comes as Markdown, so that what streams to the user
//! reads as code: the file's name as a heading, then the file (or diff) in a fenced block.
//! Plain answers are Markdown. Models asked for JSON (triage, and older prompts) wrap it in
//! fences or prose despite being told not to, so we look for the first complete JSON object in
//! the text. A missing or ill-typed field becomes an error message for the model to correct.

use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Parser, Tag, TagEnd};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Deserializer, Value};

/// Triage's choice of route and of the context the next call needs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct TriageReply {
    pub summary: String,
    /// Indices into the conversation of the lines worth sending on.
    pub extraction_indices: Vec<usize>,
    #[serde(rename = "genNewFile")]
    pub gen_new_file: bool,
    /// Names of the chat's files (documents and .based) worth sending on.
    pub files_list: Vec<String>,
    pub plain_response: bool,
    /// Function identifiers of the integration tools the code may use.
    pub tools: Vec<String>,
}

/// A generate (`type: "based"`) or diff (`type: "diff"`) answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct CodeReply {
    #[serde(rename = "type")]
    pub kind: String,
    pub filename: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct RespondReply {
    pub text: String,
}

/// Parses `raw` as the reply type `T`; the error is a sentence for the model. The first
/// JSON object that has `T`'s shape wins, so an example object echoed in the prose before the
/// answer does not hide it; if none fits, the first object's problem is reported.
pub(crate) fn parse<T: DeserializeOwned>(raw: &str) -> Result<T, String> {
    let mut first_problem = None;
    for object in json_objects(raw) {
        match serde_json::from_value(object) {
            Ok(reply) => return Ok(reply),
            Err(e) => {
                first_problem.get_or_insert_with(|| format!("your JSON answer is not in the required shape: {e}"));
            }
        }
    }
    Err(first_problem.unwrap_or_else(|| "your answer contained no JSON object".to_string()))
}

/// Parses a code reply: a fenced block tagged `expected_kind` (or untagged) under a heading
/// naming the file, or else the JSON shape `{type, filename, text}`. The text must not be
/// blank.
pub(crate) fn parse_code(raw: &str, expected_kind: &str) -> Result<CodeReply, String> {
    let reply = match fenced_code(raw, expected_kind) {
        Some(reply) => reply,
        None => parse(raw).map_err(|problem| {
            if raw.contains("```") || !raw.contains('{') {
                format!("your answer had no ```{expected_kind} fenced block")
            } else {
                problem
            }
        })?,
    };
    if reply.kind != expected_kind {
        return Err(format!("`type` must be \"{expected_kind}\", not \"{}\"", reply.kind));
    }
    if reply.text.trim().is_empty() {
        return Err("`text` is empty; it must hold the code".to_string());
    }
    Ok(reply)
}

/// A plain answer: the Markdown text itself, or the `text` of a JSON answer `{"text": …}`.
pub(crate) fn parse_text(raw: &str) -> String {
    let trimmed = raw.trim();
    let looks_like_json = trimmed.starts_with('{') || trimmed.starts_with("```json");
    match looks_like_json.then(|| parse::<RespondReply>(trimmed)) {
        Some(Ok(reply)) => reply.text,
        _ => trimmed.to_string(),
    }
}

/// The first fenced block tagged `kind` (or, failing that, the first untagged one) and the
/// text of the last heading before it, as the file name.
fn fenced_code(raw: &str, kind: &str) -> Option<CodeReply> {
    let mut heading: Option<String> = None;
    let mut in_heading = false;
    let mut block: Option<(String, String)> = None;
    let mut untagged: Option<CodeReply> = None;
    for event in Parser::new(raw) {
        match event {
            Event::Start(Tag::Heading { level, .. }) if level <= HeadingLevel::H4 => {
                in_heading = true;
                heading = Some(String::new());
            }
            Event::End(TagEnd::Heading(_)) => in_heading = false,
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info))) => {
                let tag = info.split_whitespace().next().unwrap_or_default().to_ascii_lowercase();
                block = Some((tag, String::new()));
            }
            Event::Text(text) | Event::Code(text) if in_heading => {
                heading.get_or_insert_default().push_str(&text);
            }
            Event::Text(text) => {
                if let Some((_, body)) = block.as_mut() {
                    body.push_str(&text);
                }
            }
            Event::End(TagEnd::CodeBlock) => {
                let Some((tag, text)) = block.take() else { continue };
                let reply = CodeReply {
                    kind: kind.to_string(),
                    filename: heading.clone().unwrap_or_default().trim().to_string(),
                    text,
                };
                if tag == kind {
                    return Some(reply);
                }
                if tag.is_empty() && untagged.is_none() {
                    untagged = Some(reply);
                }
            }
            _ => {}
        }
    }
    untagged
}

/// Every JSON object that starts at some `{` of the text, in order.
fn json_objects(raw: &str) -> impl Iterator<Item = Value> + '_ {
    raw.match_indices('{').filter_map(|(start, _)| {
        match Deserializer::from_str(&raw[start..]).into_iter::<Value>().next() {
            Some(Ok(value)) if value.is_object() => Some(value),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_json_parses() {
        let reply: RespondReply = parse(r#"{"text": "hello"}"#).unwrap();
        assert_eq!(reply.text, "hello");
    }

    #[test]
    fn fences_and_prose_are_ignored() {
        let raw = "Sure {not json} here:\n```json\n{\"text\": \"a } brace\"}\n```\nHope it helps {";
        let reply: RespondReply = parse(raw).unwrap();
        assert_eq!(reply.text, "a } brace");
    }

    #[test]
    fn an_echoed_example_before_the_answer_is_skipped() {
        let raw = r#"You asked for {"size": 2}. Answer: {"text": "done"}"#;
        assert_eq!(parse::<RespondReply>(raw).unwrap().text, "done");
        let err = parse::<RespondReply>(r#"{"size": 2} then {"other": 1}"#).unwrap_err();
        assert!(err.contains("missing field `text`"), "{err}");
    }

    #[test]
    fn missing_field_is_named() {
        let err = parse::<CodeReply>(r#"{"type": "based", "filename": "a.based"}"#).unwrap_err();
        assert!(err.contains("missing field `text`"), "{err}");
    }

    #[test]
    fn ill_typed_field_is_reported() {
        let err = parse::<CodeReply>(r#"{"type": "based", "filename": "a", "text": 3}"#).unwrap_err();
        assert!(err.contains("invalid type"), "{err}");
    }

    #[test]
    fn no_object_is_reported() {
        assert_eq!(
            parse::<RespondReply>("just words").unwrap_err(),
            "your answer contained no JSON object"
        );
    }

    #[test]
    fn code_reply_checks_kind_and_text() {
        assert!(
            parse_code(r#"{"type": "diff", "filename": "a", "text": "x"}"#, "based")
                .unwrap_err()
                .contains("\"based\"")
        );
        assert!(
            parse_code(r#"{"type": "based", "filename": "a", "text": "  "}"#, "based")
                .unwrap_err()
                .contains("empty")
        );
        assert!(parse_code(r#"{"type": "based", "filename": "a", "text": "say(1)"}"#, "based").is_ok());
    }

    #[test]
    fn a_fenced_block_under_its_name_is_the_code() {
        let raw = "Here it is.\n\n## `booking.based`\n\n```based\nloop:\n    x = talk(\"a\", True)\n```\n\nDone.";
        let reply = parse_code(raw, "based").unwrap();
        assert_eq!(reply.filename, "booking.based");
        assert_eq!(reply.text, "loop:\n    x = talk(\"a\", True)\n");
        // A block of another language before it is skipped; an untagged one is accepted.
        let raw = "```json\n{}\n```\n### a.based\n```diff\n@@ -1 +1 @@\n-a\n+b\n```";
        assert_eq!(parse_code(raw, "diff").unwrap().text, "@@ -1 +1 @@\n-a\n+b\n");
        let untagged = parse_code("# x.based\n```\nsay(1)\n```", "based").unwrap();
        assert_eq!(
            (untagged.filename.as_str(), untagged.text.as_str()),
            ("x.based", "say(1)\n")
        );
        // Code that itself holds a fence needs a longer one, as Markdown has it.
        let nested = parse_code("````based\nx = \"```\"\n````", "based").unwrap();
        assert_eq!(nested.text, "x = \"```\"\n");
    }

    #[test]
    fn code_falls_back_to_json_and_names_a_missing_block() {
        let json = r#"{"type": "based", "filename": "a", "text": "say(1)"}"#;
        assert_eq!(parse_code(json, "based").unwrap().text, "say(1)");
        assert_eq!(
            parse_code("no code here", "based").unwrap_err(),
            "your answer had no ```based fenced block"
        );
        assert!(parse_code("```based\n  \n```", "based").unwrap_err().contains("empty"));
    }

    #[test]
    fn plain_text_is_the_answer_unless_it_is_json() {
        assert_eq!(parse_text("  **Hi** {there}\n"), "**Hi** {there}");
        assert_eq!(parse_text(r#"{"text": "from json"}"#), "from json");
        assert_eq!(parse_text("```json\n{\"text\": \"fenced\"}\n```"), "fenced");
        assert_eq!(parse_text("{not json"), "{not json");
    }

    #[test]
    fn triage_reads_camel_case_flag() {
        let raw = r#"{"summary": "s", "extraction_indices": [0, 2], "genNewFile": true,
                      "files_list": ["a.pdf"], "plain_response": false, "tools": ["gmail.send_email"]}"#;
        let reply: TriageReply = parse(raw).unwrap();
        assert!(reply.gen_new_file);
        assert_eq!(reply.extraction_indices, vec![0, 2]);
    }
}

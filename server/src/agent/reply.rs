//! Reading the model's JSON answers. Models wrap JSON in code fences or prose despite being
//! told not to, so we look for the first complete JSON object in the text; a missing or
//! ill-typed field becomes an error message written for the model to correct.

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

/// Parses a code reply and checks its `type` tag and that its text is not blank.
pub(crate) fn parse_code(raw: &str, expected_kind: &str) -> Result<CodeReply, String> {
    let reply: CodeReply = parse(raw)?;
    if reply.kind != expected_kind {
        return Err(format!("`type` must be \"{expected_kind}\", not \"{}\"", reply.kind));
    }
    if reply.text.trim().is_empty() {
        return Err("`text` is empty; it must hold the code".to_string());
    }
    Ok(reply)
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
    fn triage_reads_camel_case_flag() {
        let raw = r#"{"summary": "s", "extraction_indices": [0, 2], "genNewFile": true,
                      "files_list": ["a.pdf"], "plain_response": false, "tools": ["gmail.send_email"]}"#;
        let reply: TriageReply = parse(raw).unwrap();
        assert!(reply.gen_new_file);
        assert_eq!(reply.extraction_indices, vec![0, 2]);
    }
}

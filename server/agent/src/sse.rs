//! Reading a streamed chat completion: OpenAI-compatible servers send server-sent events whose
//! JSON carries a piece of the answer in `choices[0].delta.content`, `usage` in a last chunk
//! when asked (`stream_options.include_usage`), and `data: [DONE]` at the end. The event
//! framing is `eventsource-stream`'s; this module only interprets the events.

use std::time::Duration;

use bytes::Bytes;
use eventsource_stream::{EventStreamError, Eventsource};
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::Value;

use super::llm::{Answer, LlmError, Usage};

/// The data of the event that ends an OpenAI stream.
const DONE: &str = "[DONE]";

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
}

/// The answer as its events arrive.
#[derive(Debug, Default)]
pub(crate) struct Assembler {
    text: String,
    usage: Option<Usage>,
    /// A choice said why it stopped (`finish_reason`).
    finished: bool,
    /// `[DONE]` arrived.
    done: bool,
}

impl Assembler {
    /// Takes one event's data; returns the new text it carries (empty for none). An error the
    /// provider reports inside the stream comes back as its (unsanitized) message.
    pub fn take(&mut self, data: &str) -> Result<String, StreamProblem> {
        if data.trim() == DONE {
            self.done = true;
            return Ok(String::new());
        }
        let chunk: Chunk = serde_json::from_str(data).map_err(|e| StreamProblem::Unreadable(e.to_string()))?;
        if let Some(error) = chunk.error {
            return Err(StreamProblem::Reported(error));
        }
        if chunk.usage.is_some() {
            self.usage = chunk.usage;
        }
        let Some(choice) = chunk.choices.into_iter().next() else {
            return Ok(String::new());
        };
        self.finished |= choice.finish_reason.is_some();
        let piece = choice.delta.and_then(|d| d.content).unwrap_or_default();
        self.text.push_str(&piece);
        Ok(piece)
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The whole answer, if the stream said it was complete: `[DONE]`, or (for providers
    /// that close without it) a finish reason before the end.
    pub fn finish(self) -> Result<Answer, LlmError> {
        if !(self.done || self.finished) {
            return Err(LlmError::Interrupted(
                "the stream ended before the model said it was done".to_string(),
            ));
        }
        Ok(Answer {
            text: self.text,
            usage: self.usage,
        })
    }
}

/// Why one event could not be used.
#[derive(Debug)]
pub(crate) enum StreamProblem {
    Unreadable(String),
    /// The provider's `error` object (its message is shown only once sanitized).
    Reported(Value),
}

/// Reads the events of `bytes` to the end, handing each new piece of text to `on_delta`.
/// Waiting longer than `idle` for the next event fails the call; so does a source error
/// (`bytes` applies the size cap and the whole-call timeout).
pub(crate) async fn read<S>(
    bytes: S,
    idle: Duration,
    on_delta: &(dyn Fn(&str) + Send + Sync),
    api_key: &str,
) -> Result<Answer, LlmError>
where
    S: Stream<Item = Result<Bytes, LlmError>> + Unpin,
{
    let mut events = bytes.eventsource();
    let mut answer = Assembler::default();
    while !answer.is_done() {
        let next = tokio::time::timeout(idle, events.next())
            .await
            .map_err(|_| LlmError::Stalled { idle })?;
        let event = match next {
            None => break,
            Some(Ok(event)) => event,
            Some(Err(EventStreamError::Transport(error))) => return Err(error),
            Some(Err(error)) => return Err(LlmError::Interrupted(error.to_string())),
        };
        match answer.take(&event.data) {
            Ok(piece) if piece.is_empty() => {}
            Ok(piece) => on_delta(&piece),
            Err(StreamProblem::Unreadable(reason)) => {
                return Err(LlmError::BadReply(format!("a streamed chunk was not JSON: {reason}")));
            }
            Err(StreamProblem::Reported(error)) => {
                let message = super::llm::error_message(&error, api_key);
                return Err(LlmError::Interrupted(if message.is_empty() {
                    "the model reported an error in its stream".to_string()
                } else {
                    format!("the model reported an error in its stream: {message}")
                }));
            }
        }
    }
    answer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(content: &str) -> String {
        serde_json::json!({"choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]}).to_string()
    }

    #[test]
    fn pieces_add_up_and_usage_is_kept() {
        let mut answer = Assembler::default();
        assert_eq!(answer.take(&chunk("Hel")).unwrap(), "Hel");
        assert_eq!(answer.take(&chunk("lo")).unwrap(), "lo");
        let last = r#"{"choices": [{"delta": {}, "finish_reason": "stop"}]}"#;
        assert_eq!(answer.take(last).unwrap(), "");
        let usage = r#"{"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}}"#;
        answer.take(usage).unwrap();
        answer.take("[DONE]").unwrap();
        assert!(answer.is_done());
        let answer = answer.finish().unwrap();
        assert_eq!(answer.text, "Hello");
        assert_eq!(
            answer.usage,
            Some(Usage {
                prompt_tokens: 7,
                completion_tokens: 2,
                total_tokens: 9
            })
        );
    }

    #[test]
    fn an_unfinished_stream_is_an_error() {
        let mut answer = Assembler::default();
        answer.take(&chunk("half")).unwrap();
        let error = answer.finish().unwrap_err();
        assert!(error.to_string().contains("ended before"), "{error}");
    }

    #[test]
    fn a_finish_reason_without_done_is_complete() {
        let mut answer = Assembler::default();
        answer
            .take(r#"{"choices": [{"delta": {"content": "all"}, "finish_reason": "stop"}]}"#)
            .unwrap();
        assert_eq!(answer.finish().unwrap().text, "all");
    }

    #[test]
    fn errors_and_garbage_are_reported() {
        let mut answer = Assembler::default();
        assert!(matches!(answer.take("not json"), Err(StreamProblem::Unreadable(_))));
        assert!(matches!(
            answer.take(r#"{"error": {"message": "overloaded"}}"#),
            Err(StreamProblem::Reported(_))
        ));
    }
}

//! Client for OpenAI-compatible `/chat/completions` endpoints (OpenAI, OpenRouter, Ollama,
//! vLLM): one call per request, retries with backoff, errors that never carry the API key.
//! Answers are asked for as a stream (`"stream": true`), so the text can be shown as it is
//! written; a provider that answers in one piece is read that way instead.
//!
//! The endpoint is named by a user, so the client treats it as hostile: its host is checked
//! (see `hosts`), redirects are not followed, the reply is read up to a size cap, and a failed
//! call's error shows only the status and the provider's short, sanitized error message.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::hosts::{self, GuardedResolver, HostLookup, HostRefusal};
use super::sse;

/// Longest wait we accept from a `Retry-After` header: a provider asking for minutes
/// would leave the user staring at a spinner, so we give up sooner instead.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// The provider's error message is shown to the user; keep it short.
const MAX_DETAIL_CHARS: usize = 200;
/// An error body is read this far for its message; a longer one yields the status only.
const MAX_ERROR_BODY: u64 = 64 * 1024;
const MIB: u64 = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct LlmSettings {
    /// Limit for one HTTP call, connection to last byte.
    pub timeout: Duration,
    /// Longest wait for the next piece of a streamed answer.
    pub idle_timeout: Duration,
    /// Tries per call, the first included.
    pub max_tries: u32,
    /// Largest reply body of one call, in bytes; a longer one fails the call unread.
    pub max_reply_bytes: u64,
    /// Whether a model may live on a loopback, private, link-local or cloud-metadata address.
    /// The server allows it in open mode or with `--allow-private-model-hosts`.
    pub allow_private_hosts: bool,
    /// How model host names are resolved (the system's resolver but in tests).
    pub lookup: HostLookup,
}

impl Default for LlmSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(120),
            idle_timeout: Duration::from_secs(60),
            max_tries: 3,
            max_reply_bytes: 8 * MIB,
            allow_private_hosts: true,
            lookup: HostLookup::system(),
        }
    }
}

/// Cheap to clone: it wraps a pooled `reqwest::Client`.
#[derive(Debug, Clone)]
pub struct LlmClient {
    http: reqwest::Client,
    settings: LlmSettings,
}

#[derive(Clone)]
pub struct ModelEndpoint {
    pub name: String,
    pub base_url: String,
    pub api_key: String,
}

impl fmt::Debug for ModelEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelEndpoint")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("api_key", &"[redacted]")
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Role {
    System,
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ChatMessage {
    pub role: Role,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

/// Each variant's Display is shown to the user as is.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("the model rejected the API key ({status})")]
    Unauthorized { status: u16 },
    /// `detail`, here and below, is the provider's sanitized error message, or empty.
    #[error("the model endpoint or model name was not found (404){}", said(.detail))]
    NotFound { detail: String },
    #[error("the model rejected the request ({status}){}", said(.detail))]
    Rejected {
        status: u16,
        detail: String,
        /// The optional request field the body named (a provider refusing JSON mode or
        /// `stream_options`).
        names_field: Option<&'static str>,
    },
    #[error("the model service failed ({status}){}", said(.detail))]
    Unavailable {
        status: u16,
        detail: String,
        retry_after: Option<Duration>,
    },
    #[error(
        "the model's provider redirected the request ({status}); redirects are not followed, \
         so give the final URL as the model's base_url"
    )]
    Redirected { status: u16 },
    #[error("the model's URL was refused: {0}")]
    HostRefused(HostRefusal),
    #[error("the model's reply exceeded the {} limit", size_label(*.limit))]
    TooLarge { limit: u64 },
    #[error("could not reach the model at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the model did not answer within {} s", .timeout.as_secs_f32())]
    Timeout { timeout: Duration },
    #[error("the model sent nothing for {} s in the middle of its answer", .idle.as_secs_f32())]
    Stalled { idle: Duration },
    #[error("the model's reply was not a usable chat completion: {0}")]
    BadReply(String),
    /// A streamed answer that broke off. Not retried: part of it was shown already.
    #[error("the model's answer broke off: {0}")]
    Interrupted(String),
}

impl LlmError {
    /// Worth another try: rate limits, server errors and network failures. Timeouts are not
    /// retried, since a model that needed the whole timeout once will likely need it again.
    fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Unreachable { .. })
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The optional field a provider refused outright: some (older vLLM, some Ollama builds)
    /// reject the JSON-mode field or `stream_options`.
    fn refused_field(&self) -> Option<&'static str> {
        match self {
            Self::Rejected {
                status: 400 | 422,
                names_field,
                ..
            } => *names_field,
            _ => None,
        }
    }

    fn status_label(&self) -> String {
        match self {
            Self::Unauthorized { status }
            | Self::Rejected { status, .. }
            | Self::Unavailable { status, .. }
            | Self::Redirected { status } => status.to_string(),
            Self::HostRefused(_) => "refused host".to_string(),
            Self::TooLarge { .. } => "too large".to_string(),
            Self::NotFound { .. } => "404".to_string(),
            Self::Unreachable { .. } => "unreachable".to_string(),
            Self::Timeout { .. } => "timeout".to_string(),
            Self::Stalled { .. } => "stalled".to_string(),
            Self::BadReply(_) => "bad reply".to_string(),
            Self::Interrupted(_) => "broken stream".to_string(),
        }
    }
}

/// The provider's token count for one call (or, added up, for a run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, other: Self) {
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.total_tokens += other.total_tokens;
    }
}

/// One call's answer: the assistant's text and, when the provider said, its token count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    pub text: String,
    pub usage: Option<Usage>,
}

/// The optional fields of a request, dropped one by one when a provider refuses them.
#[derive(Debug, Clone, Copy)]
struct Request {
    json_mode: bool,
    include_usage: bool,
}

impl Request {
    const JSON_MODE: &'static str = "response_format";
    const INCLUDE_USAGE: &'static str = "stream_options";

    /// Turns `field` off; false when it was not on (asking again would change nothing).
    fn drop_field(&mut self, field: &str) -> bool {
        let flag = match field {
            Self::JSON_MODE => &mut self.json_mode,
            Self::INCLUDE_USAGE => &mut self.include_usage,
            _ => return false,
        };
        std::mem::replace(flag, false)
    }

    fn body(self, model: &ModelEndpoint, messages: &[ChatMessage]) -> Value {
        let mut body = json!({ "model": model.name, "messages": messages, "stream": true });
        if self.json_mode {
            body["response_format"] = json!({ "type": "json_object" });
        }
        if self.include_usage {
            body["stream_options"] = json!({ "include_usage": true });
        }
        body
    }
}

/// What a delta callback is: called with each new piece of the answer's text, in order.
pub(crate) type OnDelta<'a> = &'a (dyn Fn(&str) + Send + Sync);

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: AssistantMessage,
}

#[derive(Deserialize)]
struct AssistantMessage {
    content: Option<String>,
}

impl LlmClient {
    pub fn new(settings: LlmSettings) -> Self {
        let resolver = GuardedResolver {
            lookup: settings.lookup.clone(),
            allow_private: settings.allow_private_hosts,
        };
        let mut builder = reqwest::Client::builder()
            .timeout(settings.timeout)
            // A redirect could turn the call into a GET to any URL, past the host check.
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(resolver));
        if !settings.allow_private_hosts {
            // Through a proxy the proxy would resolve the model's host, out of our resolver's
            // sight (and a proxy on the private network would itself be refused).
            builder = builder.no_proxy();
        }
        // Fails only when the TLS backend cannot start, which no request could survive.
        #[expect(clippy::expect_used, reason = "without TLS no model can be called")]
        let http = builder
            .build()
            .expect("the HTTP client's TLS backend failed to initialise");
        Self { http, settings }
    }

    /// Whether a model may be registered with `base_url`: an http(s) URL whose host is allowed
    /// (a name must resolve, to allowed addresses only). Calls are checked again.
    pub async fn check_base_url(&self, base_url: &str) -> Result<(), HostRefusal> {
        let url = hosts::parse_base_url(base_url)?;
        hosts::check_registration(&url, self.settings.allow_private_hosts, &self.settings.lookup).await
    }

    /// Sends the conversation and returns the assistant's answer, handing its text to
    /// `on_delta` as it arrives. Asks for JSON mode when `json_mode` (for answers that are
    /// JSON) and for the token usage; a provider that refuses either field is asked again
    /// without it.
    pub(crate) async fn complete(
        &self,
        model: &ModelEndpoint,
        task: &str,
        messages: &[ChatMessage],
        json_mode: bool,
        on_delta: OnDelta<'_>,
    ) -> Result<Answer, LlmError> {
        let mut request = Request {
            json_mode,
            include_usage: true,
        };
        loop {
            let body = request.body(model, messages);
            match self.send_with_retries(model, task, &body, on_delta).await {
                Err(e) if e.refused_field().is_some_and(|field| request.drop_field(field)) => {
                    let field = e.refused_field().unwrap_or_default();
                    tracing::info!(task, field, "the model refused an optional field; retrying without it");
                }
                other => return other,
            }
        }
    }

    async fn send_with_retries(
        &self,
        model: &ModelEndpoint,
        task: &str,
        body: &Value,
        on_delta: OnDelta<'_>,
    ) -> Result<Answer, LlmError> {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(FIRST_BACKOFF)
            .with_max_delay(MAX_BACKOFF)
            .with_max_times(self.settings.max_tries.saturating_sub(1) as usize)
            .with_jitter();
        let mut http_try = 0;
        let send = || {
            http_try += 1;
            self.send_once(model, task, body, http_try, on_delta)
        };
        send.retry(backoff)
            .when(LlmError::is_retryable)
            .adjust(wait_before_retry)
            .notify(|e, wait| {
                let wait_ms = wait.as_millis() as u64;
                tracing::warn!(task, error = %e, wait_ms, "model call failed; retrying");
            })
            .await
    }

    async fn send_once(
        &self,
        model: &ModelEndpoint,
        task: &str,
        body: &Value,
        http_try: u32,
        on_delta: OnDelta<'_>,
    ) -> Result<Answer, LlmError> {
        let started = Instant::now();
        let result = match self.checked_url(model) {
            Ok(url) => match self.http.post(url).bearer_auth(&model.api_key).json(body).send().await {
                Ok(response) => self.read_response(response, &model.api_key, on_delta).await,
                Err(e) => Err(transport_error(e, &model.base_url, self.settings.timeout)),
            },
            Err(refusal) => Err(LlmError::HostRefused(refusal)),
        };
        let status = result
            .as_ref()
            .map_or_else(LlmError::status_label, |_| "200".to_string());
        let duration_ms = started.elapsed().as_millis() as u64;
        let tokens = result.as_ref().ok().and_then(|a| a.usage).map(|u| u.total_tokens);
        tracing::info!(task, http_try, status, duration_ms, tokens, model = %model.name, "model call");
        result
    }
}

impl LlmClient {
    /// The completions URL, refused when its scheme is not http(s) or its host is a forbidden
    /// IP address (the resolver checks names, but the client never resolves an IP literal).
    fn checked_url(&self, model: &ModelEndpoint) -> Result<reqwest::Url, HostRefusal> {
        let url = hosts::parse_base_url(&completions_url(&model.base_url))?;
        hosts::check_url(&url, self.settings.allow_private_hosts)?;
        Ok(url)
    }

    async fn read_response(
        &self,
        response: reqwest::Response,
        api_key: &str,
        on_delta: OnDelta<'_>,
    ) -> Result<Answer, LlmError> {
        let status = response.status();
        if status.is_redirection() {
            return Err(LlmError::Redirected {
                status: status.as_u16(),
            });
        }
        let retry_after = retry_after(response.headers());
        if !status.is_success() {
            // Only the message is wanted: an unreadable or oversized body leaves the status.
            let body = self.read_body(response, MAX_ERROR_BODY).await.unwrap_or_default();
            return Err(status_error(status, &body, api_key, retry_after));
        }
        if is_event_stream(response.headers()) {
            let chunks = self.stream_chunks(response);
            return sse::read(Box::pin(chunks), self.settings.idle_timeout, on_delta, api_key).await;
        }
        // A provider that ignores `stream` answers in one piece: shown whole once read.
        let body = self.read_body(response, self.settings.max_reply_bytes).await?;
        let answer = parse_completion(&body)?;
        on_delta(&answer.text);
        Ok(answer)
    }

    /// The body of a streamed answer as it arrives, failing once it passes the reply cap.
    /// Dropping the stream drops the response, which closes the connection.
    fn stream_chunks(
        &self,
        response: reqwest::Response,
    ) -> impl futures_util::Stream<Item = Result<bytes::Bytes, LlmError>> {
        let limit = self.settings.max_reply_bytes;
        let timeout = self.settings.timeout;
        let announced_too_large = response.content_length().is_some_and(|length| length > limit);
        futures_util::stream::try_unfold((response, 0u64), move |(mut response, read)| async move {
            if announced_too_large {
                return Err(LlmError::TooLarge { limit });
            }
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let read = read + chunk.len() as u64;
                    if read > limit {
                        return Err(LlmError::TooLarge { limit });
                    }
                    Ok(Some((chunk, (response, read))))
                }
                Ok(None) => Ok(None),
                Err(e) if e.is_timeout() => Err(LlmError::Timeout { timeout }),
                Err(e) => Err(LlmError::Interrupted(error_chain(&e))),
            }
        })
    }

    /// The body, chunk by chunk, never holding more than `limit` bytes: past it the response
    /// is dropped, which closes the connection.
    async fn read_body(&self, mut response: reqwest::Response, limit: u64) -> Result<Vec<u8>, LlmError> {
        if response.content_length().is_some_and(|length| length > limit) {
            return Err(LlmError::TooLarge { limit });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.body_error(&e))? {
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(LlmError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn body_error(&self, e: &reqwest::Error) -> LlmError {
        if e.is_timeout() {
            LlmError::Timeout {
                timeout: self.settings.timeout,
            }
        } else {
            LlmError::BadReply(error_chain(e))
        }
    }
}

/// The provider's Retry-After (capped) replaces the planned backoff, but only while the
/// backoff still allows another try (`planned` is `None` once the tries are spent).
fn wait_before_retry(e: &LlmError, planned: Option<Duration>) -> Option<Duration> {
    planned.map(|d| e.retry_after().map_or(d, |after| after.min(MAX_RETRY_AFTER)))
}

fn completions_url(base_url: &str) -> String {
    format!("{}/chat/completions", base_url.trim_end_matches('/'))
}

fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/event-stream"))
}

/// A whole (unstreamed) chat completion's first message and usage.
fn parse_completion(body: &[u8]) -> Result<Answer, LlmError> {
    let completion: Completion = serde_json::from_slice(body).map_err(|e| LlmError::BadReply(e.to_string()))?;
    let text = completion
        .choices
        .into_iter()
        .next()
        .and_then(|choice| choice.message.content)
        .ok_or_else(|| LlmError::BadReply("no message content in the first choice".to_string()))?;
    Ok(Answer {
        text,
        usage: completion.usage,
    })
}

/// The optional request field an error body names, if any.
fn named_field(body: &[u8]) -> Option<&'static str> {
    let body = String::from_utf8_lossy(body);
    [Request::JSON_MODE, Request::INCLUDE_USAGE]
        .into_iter()
        .find(|field| body.contains(field))
}

/// The error for a failed status; `body` is only searched for the provider's message.
fn status_error(status: StatusCode, body: &[u8], api_key: &str, retry_after: Option<Duration>) -> LlmError {
    let code = status.as_u16();
    let detail = provider_message(body, api_key);
    match code {
        401 => LlmError::Unauthorized { status: code },
        404 => LlmError::NotFound { detail },
        429 | 500..=599 => LlmError::Unavailable {
            status: code,
            detail,
            retry_after,
        },
        _ => LlmError::Rejected {
            status: code,
            detail,
            names_field: named_field(body),
        },
    }
}

/// The message of a JSON error body (`{"error": {"message": …}}` as OpenAI sends it,
/// `{"error": "…"}` or `{"message": …}`), sanitized; empty for anything else. The rest of the
/// body is never shown: an endpoint that is not a model (an internal service) would have it
/// relayed to the user.
fn provider_message(body: &[u8], api_key: &str) -> String {
    serde_json::from_slice::<Value>(body).map_or_else(|_| String::new(), |json| error_message(&json, api_key))
}

/// The message of a JSON error (a body, or the `error` of a streamed chunk), sanitized.
pub(crate) fn error_message(json: &Value, api_key: &str) -> String {
    if let Some(message) = json.as_str() {
        return sanitize(message, api_key);
    }
    let message = json
        .pointer("/error/message")
        .and_then(Value::as_str)
        .or_else(|| json.get("error").and_then(Value::as_str))
        .or_else(|| json.get("message").and_then(Value::as_str));
    message.map_or_else(String::new, |message| sanitize(message, api_key))
}

/// One line of at most [`MAX_DETAIL_CHARS`] printable characters, without the key.
fn sanitize(message: &str, api_key: &str) -> String {
    // Line breaks and tabs become spaces; other control and invisible characters go.
    let printable: String = redact(message, api_key)
        .chars()
        .filter_map(|c| match c {
            c if c.is_whitespace() => Some(' '),
            c if c.is_control() || is_invisible(c) => None,
            c => Some(c),
        })
        .collect();
    let line = redact(&printable.split_whitespace().collect::<Vec<_>>().join(" "), api_key);
    match line.char_indices().nth(MAX_DETAIL_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

/// Zero-width and bidirectional-override characters, which can make text read other than it is.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// ": detail", or nothing when there is none.
fn said(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

fn size_label(bytes: u64) -> String {
    if bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes}-byte")
    }
}

/// `Retry-After` in seconds; the HTTP-date form is rare from model APIs and ignored.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: f64 = headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
}

fn transport_error(e: reqwest::Error, base_url: &str, timeout: Duration) -> LlmError {
    if let Some(refusal) = find_cause::<HostRefusal>(&e) {
        LlmError::HostRefused(refusal.clone())
    } else if e.is_timeout() {
        LlmError::Timeout { timeout }
    } else if e.is_decode() || e.is_body() {
        LlmError::BadReply(error_chain(&e))
    } else {
        LlmError::Unreachable {
            url: base_url.to_string(),
            reason: error_chain(&e),
        }
    }
}

/// The first error of type `T` in `e`'s chain (the resolver's refusal arrives wrapped in the
/// connector's and the client's errors).
fn find_cause<'a, T: std::error::Error + 'static>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a T> {
    let mut next = Some(e);
    while let Some(error) = next {
        if let Some(found) = error.downcast_ref::<T>() {
            return Some(found);
        }
        next = error.source();
    }
    None
}

/// reqwest's own message is generic ("error sending request"); the cause is further down.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(cause) = source {
        parts.push(cause.to_string());
        source = cause.source();
    }
    parts.join(": ")
}

/// Error messages may echo the key back (some providers do); never let it through.
fn redact(text: &str, api_key: &str) -> String {
    if api_key.is_empty() {
        text.to_string()
    } else {
        text.replace(api_key, "[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> ModelEndpoint {
        ModelEndpoint {
            name: "m".into(),
            base_url: "http://h/v1/".into(),
            api_key: "sk-secret".into(),
        }
    }

    #[test]
    fn url_trims_trailing_slash() {
        assert_eq!(completions_url("http://h:1/v1/"), "http://h:1/v1/chat/completions");
        assert_eq!(completions_url("http://h:1/v1"), "http://h:1/v1/chat/completions");
    }

    #[test]
    fn debug_hides_the_key() {
        let shown = format!("{:?}", endpoint());
        assert!(!shown.contains("sk-secret"));
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn redact_removes_the_key() {
        assert_eq!(redact("bad key sk-secret", "sk-secret"), "bad key [redacted]");
        assert_eq!(redact("bad key", ""), "bad key");
    }

    #[test]
    fn only_the_providers_message_is_shown_sanitized() {
        let message = |body: &str| provider_message(body.as_bytes(), "sk-secret");
        assert_eq!(
            message(r#"{"error": {"message": "Bad model.\nTry\tanother\u001b[31m one.", "debug": "db_password=x"}}"#),
            "Bad model. Try another[31m one."
        );
        assert_eq!(
            message(r#"{"error": "model not loaded", "trace": "secret"}"#),
            "model not loaded"
        );
        assert_eq!(message(r#"{"object": "error", "message": "bad field"}"#), "bad field");
        assert_eq!(
            message(r#"{"error": {"message": "key sk-secret is wrong"}}"#),
            "key [redacted] is wrong"
        );
        // A key split by a control character is joined, then redacted.
        assert_eq!(message(r#"{"error": "key sk-sec\u0000ret"}"#), "key [redacted]");
        assert_eq!(message(r#"{"error": "a\u202eb\u200bc\r\n"}"#), "abc");
        // Anything that is not such a JSON message shows nothing.
        assert_eq!(message("db_password=hunter2"), "");
        assert_eq!(message(r#"{"error": {"code": 5}, "db_password": "hunter2"}"#), "");
        assert_eq!(message(r#"["db_password"]"#), "");
        let long = message(&format!(r#"{{"error": {{"message": "{}"}}}}"#, "x".repeat(2000)));
        assert_eq!(long.chars().count(), MAX_DETAIL_CHARS + 1);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn errors_show_the_status_and_the_message_only() {
        let err = |code, body: &str| status_error(StatusCode::from_u16(code).unwrap(), body.as_bytes(), "k", None);
        assert_eq!(
            err(400, r#"{"error": {"message": "bad"}}"#).to_string(),
            "the model rejected the request (400): bad"
        );
        assert_eq!(
            err(400, "db_password=1").to_string(),
            "the model rejected the request (400)"
        );
        assert_eq!(err(502, "<html>").to_string(), "the model service failed (502)");
        assert_eq!(
            err(404, "").to_string(),
            "the model endpoint or model name was not found (404)"
        );
        assert_eq!(
            LlmError::TooLarge { limit: 8 * MIB }.to_string(),
            "the model's reply exceeded the 8 MiB limit"
        );
        assert!(
            LlmError::Redirected { status: 302 }
                .to_string()
                .contains("redirects are not followed")
        );
    }

    #[test]
    fn statuses_map_to_retryable_or_not() {
        let err = |code| status_error(StatusCode::from_u16(code).unwrap(), b"", "", None);
        assert!(err(429).is_retryable());
        assert!(err(503).is_retryable());
        for code in [400, 401, 403, 404] {
            assert!(!err(code).is_retryable(), "{code}");
        }
        assert_eq!(err(401).to_string(), "the model rejected the API key (401)");
    }

    #[test]
    fn retry_after_replaces_the_backoff_but_is_capped() {
        let limited = |secs| LlmError::Unavailable {
            status: 429,
            detail: String::new(),
            retry_after: Some(Duration::from_secs(secs)),
        };
        let planned = Some(Duration::from_millis(500));
        assert_eq!(wait_before_retry(&limited(2), planned), Some(Duration::from_secs(2)));
        assert_eq!(wait_before_retry(&limited(600), planned), Some(MAX_RETRY_AFTER));
        assert_eq!(wait_before_retry(&limited(2), None), None);
        let failed = status_error(StatusCode::BAD_GATEWAY, b"", "", None);
        assert_eq!(wait_before_retry(&failed, planned), planned);
    }

    #[test]
    fn refused_optional_fields_are_recognised() {
        let refusal = status_error(StatusCode::BAD_REQUEST, b"unknown field response_format", "", None);
        assert_eq!(refusal.refused_field(), Some("response_format"));
        let refusal = status_error(StatusCode::UNPROCESSABLE_ENTITY, b"stream_options: extra", "", None);
        assert_eq!(refusal.refused_field(), Some("stream_options"));
        let other = status_error(StatusCode::BAD_REQUEST, b"bad messages", "", None);
        assert_eq!(other.refused_field(), None);
        let server = status_error(StatusCode::BAD_GATEWAY, b"response_format", "", None);
        assert_eq!(server.refused_field(), None);
    }

    #[test]
    fn body_streams_and_drops_refused_fields_once() {
        let messages = [ChatMessage::new(Role::User, "hi")];
        let mut request = Request {
            json_mode: true,
            include_usage: true,
        };
        let body = request.body(&endpoint(), &messages);
        assert_eq!(body["stream"], true);
        assert_eq!(body["response_format"]["type"], "json_object");
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert_eq!(body["messages"][0]["role"], "user");
        assert!(request.drop_field("response_format"));
        assert!(!request.drop_field("response_format"), "a second refusal is final");
        assert!(request.drop_field("stream_options"));
        let body = request.body(&endpoint(), &messages);
        assert!(body.get("response_format").is_none());
        assert!(body.get("stream_options").is_none());
        assert_eq!(body["stream"], true);
    }

    #[test]
    fn a_whole_completion_keeps_its_usage() {
        let body = br#"{"choices": [{"message": {"content": "hi"}}], "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}"#;
        let answer = parse_completion(body).unwrap();
        assert_eq!(answer.text, "hi");
        assert_eq!(answer.usage.map(|u| u.total_tokens), Some(4));
        assert!(parse_completion(br#"{"choices": []}"#).is_err());
    }

    #[test]
    fn event_streams_are_told_by_their_content_type() {
        let mut headers = HeaderMap::new();
        assert!(!is_event_stream(&headers));
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            "Text/Event-Stream; charset=utf-8".parse().unwrap(),
        );
        assert!(is_event_stream(&headers));
        headers.insert(reqwest::header::CONTENT_TYPE, "application/json".parse().unwrap());
        assert!(!is_event_stream(&headers));
    }
}

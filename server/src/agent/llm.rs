//! Client for OpenAI-compatible `/chat/completions` endpoints (OpenAI, OpenRouter, Ollama,
//! vLLM): one call per request, retries with backoff, errors that never carry the API key.

use std::fmt;
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Longest wait we accept from a `Retry-After` header: a provider asking for minutes
/// would leave the user staring at a spinner, so we give up sooner instead.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// Error bodies are shown to the user; keep them short.
const MAX_DETAIL_CHARS: usize = 500;

#[derive(Debug, Clone)]
pub struct LlmSettings {
    /// Limit for one HTTP call, connection to last byte.
    pub timeout: Duration,
    /// Tries per call, the first included.
    pub max_tries: u32,
}

impl Default for LlmSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(120),
            max_tries: 3,
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
    #[error("the model endpoint or model name was not found (404): {detail}")]
    NotFound { detail: String },
    #[error("the model rejected the request ({status}): {detail}")]
    Rejected { status: u16, detail: String },
    #[error("the model service failed ({status}): {detail}")]
    Unavailable {
        status: u16,
        detail: String,
        retry_after: Option<Duration>,
    },
    #[error("could not reach the model at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the model did not answer within {} s", .timeout.as_secs_f32())]
    Timeout { timeout: Duration },
    #[error("the model's reply was not a usable chat completion: {0}")]
    BadReply(String),
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

    /// Some providers (older vLLM, some Ollama builds) reject the JSON-mode field outright.
    fn refuses_response_format(&self) -> bool {
        matches!(self, Self::Rejected { status: 400 | 422, detail }
            if detail.contains("response_format"))
    }

    fn status_label(&self) -> String {
        match self {
            Self::Unauthorized { status } | Self::Rejected { status, .. } | Self::Unavailable { status, .. } => {
                status.to_string()
            }
            Self::NotFound { .. } => "404".to_string(),
            Self::Unreachable { .. } => "unreachable".to_string(),
            Self::Timeout { .. } => "timeout".to_string(),
            Self::BadReply(_) => "bad reply".to_string(),
        }
    }
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
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
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()
            // Fails only when the TLS backend cannot start, which no request could survive.
            .expect("the HTTP client's TLS backend failed to initialise");
        Self { http, settings }
    }

    /// Sends the conversation and returns the assistant's text. Asks for JSON mode and, if
    /// the provider refuses the field, asks once more without it.
    pub(crate) async fn complete(
        &self,
        model: &ModelEndpoint,
        task: &str,
        messages: &[ChatMessage],
    ) -> Result<String, LlmError> {
        let with_json_mode = request_body(model, messages, true);
        match self.send_with_retries(model, task, &with_json_mode).await {
            Err(e) if e.refuses_response_format() => {
                tracing::info!(task, "the model refused response_format; retrying without it");
                self.send_with_retries(model, task, &request_body(model, messages, false))
                    .await
            }
            other => other,
        }
    }

    async fn send_with_retries(&self, model: &ModelEndpoint, task: &str, body: &Value) -> Result<String, LlmError> {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(FIRST_BACKOFF)
            .with_max_delay(MAX_BACKOFF)
            .with_max_times(self.settings.max_tries.saturating_sub(1) as usize)
            .with_jitter();
        let mut http_try = 0;
        let send = || {
            http_try += 1;
            self.send_once(model, task, body, http_try)
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
    ) -> Result<String, LlmError> {
        let started = Instant::now();
        let url = completions_url(&model.base_url);
        let result = match self.http.post(&url).bearer_auth(&model.api_key).json(body).send().await {
            Ok(response) => read_response(response, &model.api_key).await,
            Err(e) => Err(transport_error(e, &model.base_url, self.settings.timeout)),
        };
        let status = result
            .as_ref()
            .map_or_else(LlmError::status_label, |_| "200".to_string());
        let duration_ms = started.elapsed().as_millis() as u64;
        tracing::info!(task, http_try, status, duration_ms, model = %model.name, "model call");
        result
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

fn request_body(model: &ModelEndpoint, messages: &[ChatMessage], json_mode: bool) -> Value {
    let mut body = json!({ "model": model.name, "messages": messages });
    if json_mode {
        body["response_format"] = json!({ "type": "json_object" });
    }
    body
}

async fn read_response(response: reqwest::Response, api_key: &str) -> Result<String, LlmError> {
    let status = response.status();
    let retry_after = retry_after(response.headers());
    let text = response.text().await.map_err(|e| LlmError::BadReply(error_chain(&e)))?;
    if !status.is_success() {
        return Err(status_error(status, redact(&text, api_key), retry_after));
    }
    let completion: Completion = serde_json::from_str(&text).map_err(|e| LlmError::BadReply(e.to_string()))?;
    completion
        .choices
        .into_iter()
        .next()
        .and_then(|choice| choice.message.content)
        .ok_or_else(|| LlmError::BadReply("no message content in the first choice".to_string()))
}

fn status_error(status: StatusCode, detail: String, retry_after: Option<Duration>) -> LlmError {
    let code = status.as_u16();
    match code {
        401 => LlmError::Unauthorized { status: code },
        404 => LlmError::NotFound { detail },
        429 | 500..=599 => LlmError::Unavailable {
            status: code,
            detail,
            retry_after,
        },
        _ => LlmError::Rejected { status: code, detail },
    }
}

/// `Retry-After` in seconds; the HTTP-date form is rare from model APIs and ignored.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: f64 = headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
}

fn transport_error(e: reqwest::Error, base_url: &str, timeout: Duration) -> LlmError {
    if e.is_timeout() {
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

/// Error bodies may echo the key back (some providers do); never let it through.
fn redact(body: &str, api_key: &str) -> String {
    let body = body.trim();
    let body = if api_key.is_empty() {
        body.to_string()
    } else {
        body.replace(api_key, "[redacted]")
    };
    match body.char_indices().nth(MAX_DETAIL_CHARS) {
        Some((cut, _)) => format!("{}…", &body[..cut]),
        None => body,
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
    fn redact_removes_key_and_bounds_length() {
        assert_eq!(redact("bad key sk-secret", "sk-secret"), "bad key [redacted]");
        assert!(redact(&"x".repeat(2000), "k").chars().count() <= MAX_DETAIL_CHARS + 1);
    }

    #[test]
    fn statuses_map_to_retryable_or_not() {
        let err = |code| status_error(StatusCode::from_u16(code).unwrap(), String::new(), None);
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
        let failed = status_error(StatusCode::BAD_GATEWAY, String::new(), None);
        assert_eq!(wait_before_retry(&failed, planned), planned);
    }

    #[test]
    fn response_format_refusal_is_recognised() {
        let refusal = status_error(StatusCode::BAD_REQUEST, "unknown field response_format".into(), None);
        assert!(refusal.refuses_response_format());
        let other = status_error(StatusCode::BAD_REQUEST, "bad messages".into(), None);
        assert!(!other.refuses_response_format());
    }

    #[test]
    fn body_asks_for_json_mode_only_when_told() {
        let messages = [ChatMessage::new(Role::User, "hi")];
        assert_eq!(
            request_body(&endpoint(), &messages, true)["response_format"]["type"],
            "json_object"
        );
        assert!(
            request_body(&endpoint(), &messages, false)
                .get("response_format")
                .is_none()
        );
        assert_eq!(
            request_body(&endpoint(), &messages, false)["messages"][0]["role"],
            "user"
        );
    }
}

//! The load tool's fake model and validator: one HTTP server on loopback that answers an
//! OpenAI-compatible `…/chat/completions` by the task it recognises in the request, and the
//! original's validation endpoint (`POST …/validate` → `{"status":"success","converted_code"}`).
//!
//! Unlike the test suite's scripted `FakeModel`, it answers any number of calls, in any
//! order, from any server: Kafka names its task on the system message's first line
//! (`kafka-task: triage|generate|diff|respond`); the original's prompts open with their own
//! words (the context filter, the "Tool Context Agent", "Based on the following context,
//! generate a complete…" / "…generate a diff…", and a plain answer's "Context summary:").
//! What a run should produce (a new file, a diff, a plain answer) is set with [`Fake::expect`].
//!
//! One request per connection, answered with `Connection: close`; every request is recorded
//! (path and body) so that a scenario can replay a run's calls to time the fake alone.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// The original's default validation endpoint is `http://127.0.0.1:8802/validate`.
pub const ORIGINAL_VALIDATOR_PORT: u16 = 8802;

/// How long the fake waits for a request's bytes before dropping the connection.
const READ_WAIT: Duration = Duration::from_secs(30);
/// Requests remembered for replay; older ones are dropped.
const KEPT_REQUESTS: usize = 1024;

/// What the next `new_message` runs should produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// A new `.based` file (generate; the original's triage says `genNewFile`).
    NewFile { filename: String, text: String },
    /// A diff of the selected file.
    Diff { filename: String, patch: String },
    /// A plain text answer.
    Answer { text: String },
}

/// The task a request asks of the model, as recognised from its system message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    Triage,
    Tools,
    Generate,
    Diff,
    Respond,
    Validate,
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub body: Vec<u8>,
    pub task: Task,
}

#[derive(Debug)]
struct State {
    intent: Intent,
    requests: Vec<Recorded>,
}

/// A running fake; it serves until the process ends.
#[derive(Debug, Clone)]
pub struct Fake {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl Fake {
    /// A fake on an ephemeral loopback port.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_on(0).await
    }

    /// A fake on `127.0.0.1:port` (0: any free port), e.g. the original's validator port.
    pub async fn start_on(port: u16) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .with_context(|| format!("bind the fake model on 127.0.0.1:{port}"))?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State {
            intent: Intent::Answer {
                text: "Nothing to do.".into(),
            },
            requests: Vec::new(),
        }));
        tokio::spawn(accept_loop(listener, state.clone()));
        Ok(Self { addr, state })
    }

    /// "http://127.0.0.1:PORT/v1", an OpenAI-compatible base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// "http://127.0.0.1:PORT/validate", for the original's `VALIDATION_ENDPOINT`.
    pub fn validation_url(&self) -> String {
        format!("http://{}/validate", self.addr)
    }

    pub fn expect(&self, intent: Intent) {
        self.lock().intent = intent;
    }

    /// How many requests have been received so far (a mark for [`Fake::requests_since`]).
    pub fn mark(&self) -> usize {
        self.lock().requests.len()
    }

    /// The requests received after `mark`.
    pub fn requests_since(&self, mark: usize) -> Vec<Recorded> {
        let state = self.lock();
        state.requests.get(mark..).map(<[_]>::to_vec).unwrap_or_default()
    }

    /// Sends `requests` again, one after another, each over a new connection as the servers
    /// make them; returns the time they took.
    pub async fn replay(&self, requests: &[Recorded]) -> anyhow::Result<Duration> {
        let http = reqwest::Client::builder().pool_max_idle_per_host(0).build()?;
        let started = Instant::now();
        for request in requests {
            http.post(format!("http://{}{}", self.addr, request.path))
                .header("content-type", "application/json")
                .body(request.body.clone())
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await?;
        }
        Ok(started.elapsed())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The task of a request to `path` with this JSON body.
pub fn recognise(path: &str, body: &Value) -> Task {
    if path.ends_with("/validate") {
        return Task::Validate;
    }
    let system = body["messages"][0]["content"].as_str().unwrap_or_default();
    let opening = system.trim_start();
    if let Some(task) = system.lines().next().and_then(|l| l.strip_prefix("kafka-task: ")) {
        return match task.trim() {
            "triage" => Task::Triage,
            "generate" => Task::Generate,
            "diff" => Task::Diff,
            _ => Task::Respond,
        };
    }
    if opening.starts_with("You are the context filter") {
        Task::Triage
    } else if opening.starts_with("You are a \"Tool Context Agent\"") {
        Task::Tools
    } else if opening.starts_with("Based on the following context, generate a complete") {
        Task::Generate
    } else if opening.starts_with("Based on the following context, generate a diff") {
        Task::Diff
    } else {
        Task::Respond
    }
}

/// The JSON the fake answers `task` with, given what the run should produce.
pub fn answer(task: Task, intent: &Intent, body: &Value) -> Value {
    let (gen_new_file, plain_response) = match intent {
        Intent::NewFile { .. } => (true, false),
        Intent::Diff { .. } => (false, false),
        Intent::Answer { .. } => (false, true),
    };
    let content = match (task, intent) {
        (Task::Validate, _) => {
            return json!({"status": "success", "converted_code": body["code"].as_str().unwrap_or_default()});
        }
        (Task::Triage, _) => json!({"summary": "load test", "extraction_indices": [], "genNewFile": gen_new_file,
                                    "files_list": [], "plain_response": plain_response, "tools": []}),
        (Task::Tools, _) => json!({"tools": []}),
        (Task::Generate, Intent::NewFile { filename, text }) => {
            json!({"type": "based", "filename": filename, "text": text})
        }
        (Task::Diff, Intent::Diff { filename, patch }) => json!({"type": "diff", "filename": filename, "text": patch}),
        (Task::Respond, Intent::Answer { text }) => json!({"text": text}),
        // A task the intent did not plan for: an answer of the right shape that checks fail.
        (Task::Generate | Task::Diff, _) => json!({"type": "none", "filename": "", "text": ""}),
        (Task::Respond, _) => json!({"text": "(unplanned answer)"}),
    };
    json!({
        "id": "chatcmpl-load",
        "object": "chat.completion",
        "created": 0,
        "model": body["model"].as_str().unwrap_or("load-fake"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content.to_string()},
                     "finish_reason": "stop"}],
    })
}

async fn accept_loop(listener: TcpListener, state: Arc<Mutex<State>>) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(serve_one(stream, state.clone()));
    }
}

async fn serve_one(mut stream: TcpStream, state: Arc<Mutex<State>>) {
    let Ok(Some((path, body))) = tokio::time::timeout(READ_WAIT, read_request(&mut stream)).await else {
        return;
    };
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let task = recognise(&path, &json);
    let reply = {
        let mut state = state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if state.requests.len() >= KEPT_REQUESTS {
            state.requests.drain(..KEPT_REQUESTS / 2);
        }
        state.requests.push(Recorded {
            path: path.clone(),
            body,
            task,
        });
        answer(task, &state.intent, &json).to_string()
    };
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
        reply.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The request's path and body (by `content-length`), or `None` if the client went away.
async fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let read = stream.read(&mut chunk).await.ok().filter(|&n| n > 0)?;
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_owned();
    let length: usize = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0);
    let mut body = buffer.split_off(head_end + 4);
    while body.len() < length {
        let read = stream.read(&mut chunk).await.ok().filter(|&n| n > 0)?;
        body.extend_from_slice(&chunk[..read]);
    }
    Some((path, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system(text: &str) -> Value {
        json!({"messages": [{"role": "system", "content": text}, {"role": "user", "content": "go"}]})
    }

    #[test]
    fn tasks_are_recognised_for_both_servers() {
        let cases = [
            ("kafka-task: triage\nrules", Task::Triage),
            ("kafka-task: generate\nrules", Task::Generate),
            ("kafka-task: diff\nrules", Task::Diff),
            ("kafka-task: respond\nrules", Task::Respond),
            ("You are the context filter for an agent", Task::Triage),
            ("\nYou are a \"Tool Context Agent\". The user prompt is:", Task::Tools),
            (
                "Based on the following context, generate a complete and valid Based file.",
                Task::Generate,
            ),
            ("Based on the following context, generate a diff to update", Task::Diff),
            ("Context summary:\nload test", Task::Respond),
        ];
        for (text, task) in cases {
            assert_eq!(recognise("/v1/chat/completions", &system(text)), task, "{text}");
        }
        assert_eq!(recognise("/validate", &json!({"code": "x"})), Task::Validate);
    }

    #[test]
    fn answers_follow_the_intent() {
        let new_file = Intent::NewFile {
            filename: "a.based".into(),
            text: "loop:".into(),
        };
        let content = |reply: Value| -> Value {
            serde_json::from_str(reply["choices"][0]["message"]["content"].as_str().unwrap()).unwrap()
        };
        let triage = content(answer(Task::Triage, &new_file, &Value::Null));
        assert_eq!(
            (triage["genNewFile"].as_bool(), triage["plain_response"].as_bool()),
            (Some(true), Some(false))
        );
        let generated = content(answer(Task::Generate, &new_file, &Value::Null));
        assert_eq!(generated["filename"], "a.based");
        let validated = answer(Task::Validate, &new_file, &json!({"code": "loop:"}));
        assert_eq!(validated, json!({"status": "success", "converted_code": "loop:"}));
    }
}

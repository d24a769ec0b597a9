//! A fake OpenAI-compatible model for tests, served over real HTTP on 127.0.0.1.
//!
//! Responses are scripted per test and served in order, one per request, whatever the path;
//! every request is recorded (path, headers, JSON body) for assertions. When the script runs
//! out the fake answers 500, so a test that makes more calls than it planned fails loudly.
//!
//! ```ignore
//! let model = FakeModel::start().await;
//! model.push_json(json!({"text": "hi"}));          // the assistant's content, as JSON
//! model.push_status(429, "slow down");             // an HTTP error
//! model.push_hang();                               // never answers (until the client hangs up)
//! model.push_stream(64 << 20, true);                // a 64 MiB reply, streamed (chunked)
//! model.push_sse(&["Hel", "lo"]);                   // a streamed answer (server-sent events)
//! model.push_sse_steps(vec![SseStep::Delta("a".into()), SseStep::Pause(ms(500)), …]);
//! let base_url = model.base_url();                 // "http://127.0.0.1:PORT/v1"
//! let seen = model.requests();
//! let sent = model.streams();                       // how far each streamed reply got
//! ```
//!
//! Self-contained: needs only tokio (net, io-util, sync, time) and serde_json.

// Each test binary that includes this module uses a different part of it.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: HashMap<String, String>,
    /// The JSON body (`Value::Null` if the body was not JSON).
    pub body: Value,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    pub fn messages(&self) -> &[Value] {
        self.body["messages"].as_array().map_or(&[], Vec::as_slice)
    }

    /// The content of message `index` (negative counts from the end).
    pub fn message(&self, index: isize) -> &str {
        let messages = self.messages();
        let at = if index < 0 {
            messages.len() as isize + index
        } else {
            index
        };
        messages
            .get(at as usize)
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default()
    }

    /// The task named on the system message's first line (`kafka-task: <task>`).
    pub fn task(&self) -> Option<&str> {
        self.message(0).lines().next()?.strip_prefix("kafka-task: ")
    }
}

#[derive(Debug, Clone)]
enum Scripted {
    Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    Hang,
    /// A 200 whose body of `total` bytes is written in pieces as the client reads it.
    Stream {
        total: u64,
        chunked: bool,
    },
    /// A 200 `text/event-stream` written step by step.
    Sse(Vec<SseStep>),
}

/// One step of a streamed (server-sent events) answer, in the OpenAI chunk format.
#[derive(Debug, Clone)]
pub enum SseStep {
    /// A chunk whose `choices[0].delta.content` is this text.
    Delta(String),
    /// Waits this long before the next step.
    Pause(Duration),
    /// Waits until the gate is opened (`Notify::notify_one`) before the next step.
    Gate(Arc<tokio::sync::Notify>),
    /// A chunk with `finish_reason: "stop"`.
    Finish,
    /// A chunk carrying only `usage` (prompt, completion tokens).
    Usage(u64, u64),
    /// `data: [DONE]`.
    Done,
    /// An event with this data verbatim.
    Data(String),
    /// Drops the connection in the middle of the body (no final chunk).
    Break,
}

/// How far a streamed reply got before the fake stopped writing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamReport {
    /// Body bytes the fake managed to write (into the socket's buffers, at least).
    pub written: u64,
    /// Whether the whole body was written; false when the client closed the connection first.
    pub finished: bool,
}

#[derive(Default)]
struct State {
    script: VecDeque<Scripted>,
    requests: Vec<RecordedRequest>,
    streams: Vec<StreamReport>,
}

#[derive(Clone)]
pub struct FakeModel {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    connections: Arc<AtomicUsize>,
}

impl FakeModel {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the fake model");
        let addr = listener.local_addr().expect("fake model address");
        let state = Arc::new(Mutex::new(State::default()));
        let connections = Arc::new(AtomicUsize::new(0));
        tokio::spawn(accept_loop(listener, state.clone(), connections.clone()));
        Self {
            addr,
            state,
            connections,
        }
    }

    /// "http://127.0.0.1:PORT", the fake's origin.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// "http://127.0.0.1:PORT/v1", the form of an OpenAI-compatible base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Answers with a chat completion whose assistant content is `answer` serialised.
    pub fn push_json(&self, answer: Value) -> &Self {
        self.push_content(&answer.to_string())
    }

    /// Answers with a chat completion whose assistant content is `content` verbatim.
    pub fn push_content(&self, content: &str) -> &Self {
        let completion = json!({
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "choices": [{ "index": 0, "message": { "role": "assistant", "content": content }, "finish_reason": "stop" }],
        });
        self.push_status_with_headers(200, &[("content-type", "application/json")], &completion.to_string())
    }

    pub fn push_status(&self, status: u16, body: &str) -> &Self {
        self.push_status_with_headers(status, &[], body)
    }

    pub fn push_status_with_headers(&self, status: u16, headers: &[(&str, &str)], body: &str) -> &Self {
        let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.push(Scripted::Reply {
            status,
            headers,
            body: body.to_string(),
        })
    }

    /// Never answers; the connection stays open until the client gives up.
    pub fn push_hang(&self) -> &Self {
        self.push(Scripted::Hang)
    }

    /// Answers 200 with a body of `total` bytes (the start of a chat completion that never
    /// ends), written 64 KiB at a time, with `Transfer-Encoding: chunked` or, when `chunked` is
    /// false, a `Content-Length` announcing the whole size. [`FakeModel::streams`] then says how
    /// much was written.
    pub fn push_stream(&self, total: u64, chunked: bool) -> &Self {
        self.push(Scripted::Stream { total, chunked })
    }

    /// Streams `pieces` as server-sent events, then a finish reason, usage (11 prompt tokens,
    /// one completion token per piece) and `[DONE]`.
    pub fn push_sse(&self, pieces: &[&str]) -> &Self {
        let mut steps: Vec<SseStep> = pieces.iter().map(|p| SseStep::Delta(p.to_string())).collect();
        steps.extend([SseStep::Finish, SseStep::Usage(11, pieces.len() as u64), SseStep::Done]);
        self.push_sse_steps(steps)
    }

    /// Streams the steps as server-sent events; [`FakeModel::streams`] then says whether the
    /// client stayed to the end.
    pub fn push_sse_steps(&self, steps: Vec<SseStep>) -> &Self {
        self.push(Scripted::Sse(steps))
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.lock().unwrap().requests.clone()
    }

    /// One report per streamed reply, once its writing has stopped.
    pub fn streams(&self) -> Vec<StreamReport> {
        self.state.lock().unwrap().streams.clone()
    }

    /// TCP connections accepted, whether or not a request followed.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn push(&self, scripted: Scripted) -> &Self {
        self.state.lock().unwrap().script.push_back(scripted);
        self
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<Mutex<State>>, connections: Arc<AtomicUsize>) {
    while let Ok((stream, _)) = listener.accept().await {
        connections.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(serve_one(stream, state.clone()));
    }
}

/// One request per connection, answered with `Connection: close`: simple, and clients
/// then never reuse a connection the fake is about to drop.
async fn serve_one(mut stream: TcpStream, state: Arc<Mutex<State>>) {
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    let scripted = {
        let mut state = state.lock().unwrap();
        state.requests.push(request);
        state.script.pop_front()
    };
    match scripted {
        Some(Scripted::Reply { status, headers, body }) => write_response(&mut stream, status, &headers, &body).await,
        Some(Scripted::Hang) => wait_for_hang_up(&mut stream).await,
        Some(Scripted::Stream { total, chunked }) => {
            let report = write_stream(&mut stream, total, chunked).await;
            state.lock().unwrap().streams.push(report);
        }
        Some(Scripted::Sse(steps)) => {
            let report = write_sse(&mut stream, steps).await;
            state.lock().unwrap().streams.push(report);
        }
        None => write_response(&mut stream, 500, &[], "fake model: no scripted response left").await,
    }
}

async fn read_request(stream: &mut TcpStream) -> Option<RecordedRequest> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = find(&buffer, b"\r\n\r\n") {
            break at;
        }
        let read = stream.read(&mut chunk).await.ok().filter(|&n| n > 0)?;
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let (method, path) = (request_line.next()?.to_string(), request_line.next()?.to_string());
    let headers: HashMap<String, String> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    let length: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let read = stream.read(&mut chunk).await.ok().filter(|&n| n > 0)?;
        body.extend_from_slice(&chunk[..read]);
    }
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Some(RecordedRequest {
        method,
        path,
        headers,
        body,
    })
}

async fn write_response(stream: &mut TcpStream, status: u16, headers: &[(String, String)], body: &str) {
    let mut response = format!(
        "HTTP/1.1 {status} Fake\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        response.push_str(&format!("{name}: {value}\r\n"));
    }
    response.push_str("\r\n");
    response.push_str(body);
    // The client may already have gone (cancelled, timed out); nothing to do then.
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

async fn write_stream(stream: &mut TcpStream, total: u64, chunked: bool) -> StreamReport {
    const PIECE: usize = 64 * 1024;
    let framing = if chunked {
        "transfer-encoding: chunked".to_string()
    } else {
        format!("content-length: {total}")
    };
    let head = format!("HTTP/1.1 200 Fake\r\ncontent-type: application/json\r\n{framing}\r\nconnection: close\r\n\r\n");
    let mut report = StreamReport {
        written: 0,
        finished: false,
    };
    if stream.write_all(head.as_bytes()).await.is_err() {
        return report;
    }
    let opening = br#"{"choices":[{"message":{"role":"assistant","content":""#;
    while report.written < total {
        let size = (total - report.written).min(PIECE as u64) as usize;
        let mut piece = vec![b'a'; size];
        if report.written == 0 {
            let n = opening.len().min(size);
            piece[..n].copy_from_slice(&opening[..n]);
        }
        let written = if chunked {
            let mut framed = format!("{size:x}\r\n").into_bytes();
            framed.extend_from_slice(&piece);
            framed.extend_from_slice(b"\r\n");
            stream.write_all(&framed).await
        } else {
            stream.write_all(&piece).await
        };
        if written.is_err() {
            return report;
        }
        report.written += size as u64;
    }
    if chunked && stream.write_all(b"0\r\n\r\n").await.is_err() {
        return report;
    }
    report.finished = true;
    let _ = stream.shutdown().await;
    report
}

async fn write_sse(stream: &mut TcpStream, steps: Vec<SseStep>) -> StreamReport {
    let head = "HTTP/1.1 200 Fake\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\
                transfer-encoding: chunked\r\nconnection: close\r\n\r\n";
    let mut report = StreamReport {
        written: 0,
        finished: false,
    };
    if stream.write_all(head.as_bytes()).await.is_err() {
        return report;
    }
    for step in steps {
        let data = match step {
            SseStep::Delta(text) => chunk_json(json!({ "content": text }), None),
            SseStep::Finish => chunk_json(json!({}), Some("stop")),
            SseStep::Usage(prompt, completion) => json!({
                "id": "chatcmpl-fake", "object": "chat.completion.chunk", "choices": [],
                "usage": { "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion },
            })
            .to_string(),
            SseStep::Done => "[DONE]".to_string(),
            SseStep::Data(data) => data,
            SseStep::Pause(wait) => {
                if !wait_unless_hung_up(stream, tokio::time::sleep(wait)).await {
                    return report;
                }
                continue;
            }
            SseStep::Gate(gate) => {
                if !wait_unless_hung_up(stream, gate.notified()).await {
                    return report;
                }
                continue;
            }
            SseStep::Break => return report,
        };
        let event = format!("data: {data}\n\n");
        let framed = format!("{:x}\r\n{event}\r\n", event.len());
        if stream.write_all(framed.as_bytes()).await.is_err() || stream.flush().await.is_err() {
            return report;
        }
        report.written += event.len() as u64;
    }
    if stream.write_all(b"0\r\n\r\n").await.is_err() {
        return report;
    }
    report.finished = true;
    let _ = stream.shutdown().await;
    report
}

fn chunk_json(delta: Value, finish_reason: Option<&str>) -> String {
    json!({
        "id": "chatcmpl-fake", "object": "chat.completion.chunk",
        "choices": [{ "index": 0, "delta": delta, "finish_reason": finish_reason }],
    })
    .to_string()
}

/// Waits for `until`; false if the client closed the connection first.
async fn wait_unless_hung_up(stream: &mut TcpStream, until: impl std::future::Future<Output = ()>) -> bool {
    let mut sink = [0u8; 1024];
    tokio::pin!(until);
    loop {
        tokio::select! {
            () = &mut until => return true,
            read = stream.read(&mut sink) => {
                if !matches!(read, Ok(n) if n > 0) {
                    return false;
                }
            }
        }
    }
}

async fn wait_for_hang_up(stream: &mut TcpStream) {
    let mut sink = [0u8; 1024];
    while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

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
//! let base_url = model.base_url();                 // "http://127.0.0.1:PORT/v1"
//! let seen = model.requests();
//! let sent = model.streams();                       // how far each streamed reply got
//! ```
//!
//! Self-contained: needs only tokio (net, io-util, sync) and serde_json.

// Each test binary that includes this module uses a different part of it.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

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

async fn wait_for_hang_up(stream: &mut TcpStream) {
    let mut sink = [0u8; 1024];
    while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

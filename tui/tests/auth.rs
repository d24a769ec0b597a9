//! Tokens and passwords, against a tiny HTTP server that answers in a fixed order and records
//! every request: the client sends `Authorization: Bearer …` once it has a token (and nothing
//! in open mode), puts the token on the WebSocket URL, tells a 401 apart, and the app asks
//! for a password or goes back to the login screen when the server says 401.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a panic is the failure report"
)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent};
use kafka_tui::app::{App, AppEvent, Connection, LoginField, Screen};
use kafka_tui::driver::Driver;
use kafka_tui::net::{ChatSocket, Rest, RestError};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::unbounded_channel;

const WAIT: Duration = Duration::from_secs(10);

/// Answers the requests it gets, one connection each, with `answers` in order.
struct Recorder {
    base: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    async fn start(answers: Vec<(u16, serde_json::Value)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        tokio::spawn(async move {
            for (status, body) in answers {
                let (mut stream, _) = listener.accept().await.unwrap();
                let request = read_request(&mut stream).await;
                recorded.lock().unwrap().push(request);
                let body = if body.is_null() {
                    String::new()
                } else {
                    body.to_string()
                };
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                stream.write_all(format!("{head}{body}").as_bytes()).await.unwrap();
                stream.shutdown().await.ok();
            }
        });
        Recorder { base, requests }
    }

    fn request(&self, index: usize) -> String {
        self.requests.lock().unwrap().get(index).cloned().unwrap_or_default()
    }
}

/// The head and the body (by `content-length`) of one request, as text.
async fn read_request(stream: &mut TcpStream) -> String {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let read = stream.read(&mut chunk).await.unwrap();
        bytes.extend_from_slice(&chunk[..read]);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let Some(head_end) = text.find("\r\n\r\n") else {
            if read == 0 {
                return text;
            }
            continue;
        };
        let length = text[..head_end]
            .lines()
            .find_map(|line| {
                line.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|n| n.trim().to_owned())
            })
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(0);
        if bytes.len() >= head_end + 4 + length || read == 0 {
            return text;
        }
    }
}

fn header<'a>(request: &'a str, name: &str) -> Option<&'a str> {
    request.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

fn login_json(token: Option<&str>) -> serde_json::Value {
    json!({"user_id": "user-1", "email": "ada@example.com", "models": [], "token": token,
           "token_expires_at": token.map(|_| "2026-11-27T00:00:00Z"),
           "workspaces": [{"id": "ws-1", "name": "Default Workspace", "files": [], "chats": []}]})
}

#[tokio::test]
async fn rest_calls_carry_the_bearer_token_and_nothing_in_open_mode() {
    let ok = json!({"detail": "Chat deleted."});
    let server = Recorder::start(vec![(200, ok.clone()), (200, ok)]).await;
    let rest = Rest::new(&server.base);
    rest.with_token(Some("tok-1")).delete_chat("c1").await.unwrap();
    rest.delete_chat("c1").await.unwrap();
    let with_token = server.request(0);
    assert!(with_token.starts_with("DELETE /chat/c1 "), "{with_token}");
    assert_eq!(header(&with_token, "authorization"), Some("Bearer tok-1"));
    assert_eq!(header(&server.request(1), "authorization"), None, "open mode");
}

#[tokio::test]
async fn login_sends_the_password_only_when_given_and_a_401_is_told_apart() {
    let refused = json!({"detail": "Invalid credentials."});
    let server = Recorder::start(vec![(401, refused), (200, login_json(None)), (500, json!(null))]).await;
    let rest = Rest::new(&server.base);
    let answer = rest.login("ada@example.com", Some("pa ss")).await;
    assert_eq!(answer, Err(RestError::Unauthorized("Invalid credentials.".into())));
    assert!(
        server
            .request(0)
            .ends_with(r#"{"email":"ada@example.com","password":"pa ss"}"#)
    );

    let login = rest.login("ada@example.com", None).await.unwrap();
    assert_eq!(login.token, None, "open mode: no token");
    assert!(server.request(1).ends_with(r#"{"email":"ada@example.com"}"#));

    let failed = rest.login("ada@example.com", None).await;
    assert!(
        matches!(failed, Err(RestError::Failed(ref e)) if e.contains("500")),
        "{failed:?}"
    );
}

#[tokio::test]
async fn a_websocket_refused_with_401_ends_the_session_instead_of_retrying() {
    let server = Recorder::start(vec![(401, json!(null))]).await;
    let url = Rest::new(&server.base).with_token(Some("tok-1")).ws_url("c1");
    let (bus, mut events) = unbounded_channel();
    let _socket = ChatSocket::open(url, "c1".into(), bus);
    let mut seen = Vec::new();
    while !seen.iter().any(|event| matches!(event, AppEvent::SessionExpired)) {
        let event = tokio::time::timeout(WAIT, events.recv())
            .await
            .expect("an event")
            .unwrap();
        let retrying = matches!(
            event,
            AppEvent::Connection {
                state: Connection::Retrying { .. },
                ..
            }
        );
        assert!(!retrying, "a 401 is not retried");
        seen.push(event);
    }
    let upgrade = server.request(0);
    assert!(upgrade.starts_with("GET /ws/c1?v=2&token=tok-1 "), "{upgrade}");
}

async fn settle(driver: &mut Driver, what: &str, done: impl Fn(&App) -> bool) {
    while !done(&driver.app) {
        match tokio::time::timeout(WAIT, driver.next_event()).await {
            Ok(Some(event)) => driver.event(event),
            _ => panic!("timed out waiting for {what}; last error {:?}", driver.app.last_error),
        }
    }
}

fn type_text(driver: &mut Driver, text: &str) {
    for c in text.chars() {
        driver.key(KeyEvent::from(KeyCode::Char(c)));
    }
}

#[tokio::test]
async fn a_protected_account_is_asked_its_password_then_every_call_carries_the_token() {
    let refused = json!({"detail": "Invalid credentials."});
    let created = json!({"workspace_id": "ws-2", "files": []});
    let expired = json!({"detail": "Not authenticated."});
    let answers = vec![
        (401, refused),
        (200, login_json(Some("tok-9"))),
        (200, created),
        (401, expired),
    ];
    let server = Recorder::start(answers).await;
    let mut driver = Driver::new(App::new("test"), Rest::new(&server.base));

    // `--email`: the login goes out at once, is refused, and the password field appears.
    let first = driver.app.start(Some("ada@example.com".into()), None);
    driver.execute(first);
    settle(&mut driver, "the password field", |app| app.login.asks_password).await;
    assert_eq!(driver.app.login.focus, LoginField::Password);
    assert!(!server.request(0).contains("password"), "{}", server.request(0));

    type_text(&mut driver, "s3cret");
    driver.key(KeyEvent::from(KeyCode::Enter));
    settle(&mut driver, "the browser", |app| app.screen == Screen::Browser).await;
    assert!(
        server
            .request(1)
            .ends_with(r#"{"email":"ada@example.com","password":"s3cret"}"#)
    );
    assert_eq!(driver.app.token(), Some("tok-9"));
    assert!(driver.app.login.password.text().is_empty(), "not kept once logged in");

    // A new workspace (Esc: the workspace list): the call carries the token.
    driver.key(KeyEvent::from(KeyCode::Esc));
    driver.key(KeyEvent::from(KeyCode::Char('n')));
    driver.key(KeyEvent::from(KeyCode::Enter));
    settle(&mut driver, "the new workspace", |app| app.workspaces().len() == 2).await;
    assert_eq!(header(&server.request(2), "authorization"), Some("Bearer tok-9"));

    // The token expired: back to the login screen, the email kept, the password asked again.
    driver.key(KeyEvent::from(KeyCode::Char('n')));
    driver.key(KeyEvent::from(KeyCode::Enter));
    settle(&mut driver, "the login screen", |app| app.screen == Screen::Login).await;
    let app = &driver.app;
    assert!(
        app.last_error.as_deref().unwrap().contains("session expired"),
        "{:?}",
        app.last_error
    );
    assert_eq!(app.login.email.text(), "ada@example.com");
    assert_eq!((app.login.asks_password, app.login.focus), (true, LoginField::Password));
    assert_eq!(app.token(), None);
}

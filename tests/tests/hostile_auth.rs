//! Hostile input against authentication (issue 17, items 2, 3 and 5), each attack run against
//! the real server on loopback, bounded in count and time:
//!
//! - protected mode has no password-less accounts: nobody takes an account over by its email,
//!   probing does not create accounts, and known and unknown emails are answered alike;
//! - concurrent guesses cannot race the login throttle, and password hashing is bounded (the
//!   server runs in this process, so its memory is this process's `VmRSS`);
//! - a request without a valid token is answered `401` before its body is read.
//!
//! The tests of this file take turns (`TURN`), so that one's hashing does not show in
//! another's memory measurement.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a panic is the failure report"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kafka_server::auth::AuthMode;
use kafka_tests::TestServer;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

static TURN: Mutex<()> = Mutex::const_new(());

const PASSWORD: &str = "correct horse battery staple";
const MIB: u64 = 1024 * 1024;

async fn protected() -> TestServer {
    TestServer::start_with(|s| s.auth = AuthMode::Token).await
}

async fn login(server: &TestServer, body: Value) -> (StatusCode, Value) {
    let response = server
        .http
        .post(server.url("/auth/login"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn invalid() -> Value {
    json!({"detail": "Invalid credentials."})
}

/// The password hash stored for `email`: `None` without an account, `Some(None)` for an
/// account without a password.
async fn stored_password(server: &TestServer, email: &str) -> Option<Option<String>> {
    let account = server.state.store.credentials(email).await.unwrap()?;
    Some(account.password_hash)
}

#[tokio::test]
async fn protected_mode_has_no_password_less_accounts() {
    let _turn = TURN.lock().await;
    let server = protected().await;

    // Probing an unknown email without a password is refused and creates nothing.
    let (status, body) = login(&server, json!({"email": "probe@example.com"})).await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, invalid()));
    assert_eq!(
        stored_password(&server, "probe@example.com").await,
        None,
        "no account made"
    );
    // A password that could never have been set is a clear 422, for known and unknown alike.
    let (status, _) = login(&server, json!({"email": "probe@example.com", "password": "short"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(stored_password(&server, "probe@example.com").await, None);

    // A new email with a password creates the account, with that password.
    let (status, body) = login(&server, json!({"email": "new@example.com", "password": PASSWORD})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["token"].is_string() && body["workspaces"][0]["name"] == "Default Workspace");
    assert!(matches!(
        stored_password(&server, "new@example.com").await,
        Some(Some(_))
    ));
    let (status, _) = login(&server, json!({"email": "NEW@example.com ", "password": PASSWORD})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = login(&server, json!({"email": "new@example.com", "password": "not the one"})).await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, invalid()));

    // The owner's account from open mode, without a password: the attacker's takeover (log
    // in by email, or with a password of their choosing) is refused, and nothing changes.
    let victim = server.state.store.login("victim@example.com").await.unwrap();
    for attempt in [
        json!({"email": "victim@example.com"}),
        json!({"email": "victim@example.com", "password": ""}),
        json!({"email": "victim@example.com", "password": "attacker's choice"}),
    ] {
        let (status, body) = login(&server, attempt.clone()).await;
        assert_eq!((status, body), (StatusCode::UNAUTHORIZED, invalid()), "{attempt}");
    }
    assert_eq!(stored_password(&server, "victim@example.com").await, Some(None));

    // Refusals cost the same whether the account has a password or not (a dummy check): no
    // enumeration by timing. Each case once to warm up, then the fastest of three.
    let (status, _) = login(&server, json!({"email": "timed@example.com", "password": PASSWORD})).await;
    assert_eq!(status, StatusCode::OK);
    server.state.store.login("timed-bare@example.com").await.unwrap();
    let time = |email: &'static str| {
        let server = &server;
        async move {
            let mut fastest = Duration::MAX;
            for _ in 0..3 {
                let started = Instant::now();
                let (status, body) = login(server, json!({"email": email, "password": "wrong guess"})).await;
                fastest = fastest.min(started.elapsed());
                assert_eq!((status, body), (StatusCode::UNAUTHORIZED, invalid()), "{email}");
            }
            fastest
        }
    };
    let with_password = time("timed@example.com").await;
    let without_password = time("timed-bare@example.com").await;
    eprintln!("refusals: with a password {with_password:?}, without {without_password:?}");
    assert!(
        without_password * 2 > with_password && with_password * 2 > without_password,
        "with a password {with_password:?}, without {without_password:?}"
    );

    // The operator gives the owner a password with the CLI; then the owner logs in with it.
    let cli = set_password_cli(&server, "Victim@example.com", "owner's new passphrase\n").await;
    assert!(cli.status.success(), "{cli:?}");
    assert!(String::from_utf8_lossy(&cli.stdout).contains("Password set for victim@example.com"));
    let (status, body) = login(
        &server,
        json!({"email": "victim@example.com", "password": "owner's new passphrase"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["user_id"],
        victim.as_str(),
        "the same account, with everything in it"
    );
    // Too short a password is refused; an unknown email is created with the password.
    let short = set_password_cli(&server, "victim@example.com", "short\n").await;
    assert!(!short.status.success());
    assert!(
        String::from_utf8_lossy(&short.stderr).contains("at least 8"),
        "{short:?}"
    );
    let created = set_password_cli(&server, "fresh@example.com", "made by the operator\n").await;
    assert!(created.status.success(), "{created:?}");
    let (status, _) = login(
        &server,
        json!({"email": "fresh@example.com", "password": "made by the operator"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

/// Runs `kafka-server … user set-password EMAIL` on the server's database, `stdin` piped in.
async fn set_password_cli(server: &TestServer, email: &str, stdin: &str) -> std::process::Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_kafka-test-server"));
    command.arg("--data-dir").arg(server.data_dir.path());
    if let Some(database) = &server.database {
        command.args(["--database-url", &database.url]);
    }
    let mut child = command
        .args(["user", "set-password", email])
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn kafka-test-server");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the CLI finishes")
        .unwrap()
}

#[tokio::test]
async fn changing_a_password_needs_the_current_one() {
    let _turn = TURN.lock().await;
    let server = protected().await;
    let (_, body) = login(&server, json!({"email": "owner@example.com", "password": PASSWORD})).await;
    let token = body["token"].as_str().unwrap().to_owned();
    let change = |body: Value| {
        server
            .http
            .post(server.url("/auth/password"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    // A stolen token alone cannot lock the owner out.
    for body in [
        json!({"password": "the thief's passphrase"}),
        json!({"password": "the thief's passphrase", "current_password": "a wrong guess"}),
    ] {
        let response = change(body).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.json::<Value>().await.unwrap(), invalid());
    }
    let (status, _) = login(&server, json!({"email": "owner@example.com", "password": PASSWORD})).await;
    assert_eq!(status, StatusCode::OK, "the password did not change");

    let response = change(json!({"password": "the owner's next one", "current_password": PASSWORD}))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (status, _) = login(
        &server,
        json!({"email": "owner@example.com", "password": "the owner's next one"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

/// The highest `VmRSS` of this process while it runs, sampled every few milliseconds.
struct RssPeak {
    baseline: u64,
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    sampler: Option<std::thread::JoinHandle<()>>,
}

impl RssPeak {
    fn start() -> Self {
        let baseline = vm_rss();
        let peak = Arc::new(AtomicU64::new(baseline));
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (peak, stop) = (peak.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(vm_rss(), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        };
        Self {
            baseline,
            peak,
            stop,
            sampler: Some(sampler),
        }
    }

    /// How far above the start the process went, in bytes.
    fn growth(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.sampler.take().unwrap().join().unwrap();
        self.peak.load(Ordering::Relaxed).saturating_sub(self.baseline)
    }
}

/// This process's resident memory, in bytes.
fn vm_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap();
    kib * 1024
}

/// Sends `count` logins at once (on as many connections); their statuses and details.
async fn logins_at_once(
    server: &TestServer,
    count: usize,
    body: impl Fn(usize) -> (Value, String),
) -> Vec<(u16, String)> {
    let requests = (0..count).map(|i| {
        let (json, forwarded) = body(i);
        let request = server
            .http
            .post(server.url("/auth/login"))
            .header("X-Forwarded-For", forwarded)
            .json(&json);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (status, body["detail"].as_str().unwrap_or_default().to_owned())
        }
    });
    tokio::time::timeout(Duration::from_secs(120), futures_util::future::join_all(requests))
        .await
        .expect("every login is answered")
}

fn count(answers: &[(u16, String)], status: u16) -> usize {
    answers.iter().filter(|(s, _)| *s == status).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_guesses_cannot_race_the_throttle_and_hashing_is_bounded() {
    let _turn = TURN.lock().await;
    // Behind a trusted proxy (loopback), so that the second attack can come from many addresses.
    let server = TestServer::start_with(|s| {
        s.auth = AuthMode::Token;
        s.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let (status, body) = login(&server, json!({"email": "target@example.com", "password": PASSWORD})).await;
    assert_eq!(status, StatusCode::OK);
    // Set again through `/auth/password`, so that the account has a password on any server.
    let set = server
        .http
        .post(server.url("/auth/password"))
        .bearer_auth(body["token"].as_str().unwrap())
        .json(&json!({"password": PASSWORD, "current_password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), StatusCode::OK);

    // 60 wrong guesses for one account at once, from one address: at most the account's
    // limit (5) are checked, the others are 429 without being hashed.
    let rss = RssPeak::start();
    let answers = logins_at_once(&server, 60, |i| {
        let guess = format!("wrong guess {i}");
        (
            json!({"email": "target@example.com", "password": guess}),
            "203.0.113.1".into(),
        )
    })
    .await;
    let growth = rss.growth();
    eprintln!(
        "60 guesses: {} checked (401), {} refused (429), memory +{} MiB",
        count(&answers, 401),
        count(&answers, 429),
        growth / MIB
    );
    assert_eq!(count(&answers, 401) + count(&answers, 429), 60, "{answers:?}");
    assert!(
        count(&answers, 401) <= 5,
        "{} guesses were checked",
        count(&answers, 401)
    );
    assert!(growth < 200 * MIB, "memory grew by {} MiB", growth / MIB);
    // The right password waits too: the account is blocked.
    let (status, _) = login(&server, json!({"email": "target@example.com", "password": PASSWORD})).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);

    // 100 logins at once for 100 accounts from 100 addresses (no throttle applies): the
    // hashing pool takes a few, the rest are told to come back, and memory stays bounded.
    let rss = RssPeak::start();
    let answers = logins_at_once(&server, 100, |i| {
        let email = format!("crowd{i}@example.com");
        (json!({"email": email, "password": PASSWORD}), format!("198.51.100.{i}"))
    })
    .await;
    let growth = rss.growth();
    let busy = answers
        .iter()
        .filter(|(s, detail)| *s == 429 && detail == "Too many logins at once; try again shortly.")
        .count();
    eprintln!(
        "100 logins: {} hashed (200), {busy} busy (429), memory +{} MiB",
        count(&answers, 200),
        growth / MIB
    );
    assert_eq!(count(&answers, 200) + busy, 100, "{answers:?}");
    assert!(busy > 0, "the pool never filled up");
    assert!(growth < 200 * MIB, "memory grew by {} MiB", growth / MIB);
    // Those turned away may come back: the pool is free again.
    let (status, body) = login(
        &server,
        json!({"email": "crowd-late@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Sends only the head of a request (and `start` of its body) and waits up to two seconds for
/// the answer's status line and body, without ever sending the rest of the body.
async fn answer_to_a_head(server: &TestServer, head: &str, start: &[u8]) -> (u16, Value) {
    let address = server.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(start).await.unwrap();
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        let read = tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await;
        let Ok(Ok(read)) = read else {
            panic!(
                "no complete answer within 2 s (got {:?}) to {head}",
                String::from_utf8_lossy(&received)
            );
        };
        received.extend_from_slice(&chunk[..read]);
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n")
            && let Ok(value) = serde_json::from_str::<Value>(body)
        {
            let status = head.split(' ').nth(1).unwrap().parse().unwrap();
            return (status, value);
        }
        assert!(read > 0, "closed without an answer: {text}");
    }
}

#[tokio::test]
async fn requests_without_a_valid_token_are_refused_before_their_body() {
    let _turn = TURN.lock().await;
    let server = protected().await;
    let host = server.base.trim_start_matches("http://").to_owned();
    // Each protected route that reads a body, with a declared length its own limit allows.
    let multipart = "multipart/form-data; boundary=XyZ";
    let routes = [
        ("POST", "/file/upload", multipart, 95 * MIB),
        ("POST", "/workspace/new", multipart, 95 * MIB),
        (
            "PATCH",
            "/workspace/rename",
            "application/x-www-form-urlencoded",
            95 * MIB,
        ),
        ("POST", "/chat/new", multipart, 60 * 1024),
        ("PATCH", "/file/rename", multipart, 60 * 1024),
        ("POST", "/models/new", multipart, 60 * 1024),
        ("POST", "/based/validate", "application/json", 3 * MIB),
        ("POST", "/auth/password", "application/json", 60 * 1024),
    ];
    let credentials = [
        (
            "",
            "Not authenticated: send Authorization: Bearer <token> (from POST /auth/login).",
        ),
        ("Authorization: Bearer forged\r\n", "Invalid or expired token."),
    ];
    let rss = RssPeak::start();
    for (method, path, content_type, length) in routes {
        for (authorization, detail) in credentials {
            let head = format!(
                "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{authorization}Content-Type: {content_type}\r\n\
                 Content-Length: {length}\r\n\r\n"
            );
            let started = Instant::now();
            let (status, body) = answer_to_a_head(&server, &head, b"--XyZ\r\n").await;
            assert_eq!((status, &body), (401, &json!({ "detail": detail })), "{method} {path}");
            assert!(started.elapsed() < Duration::from_secs(2));
        }
    }
    // Eight 95 MiB uploads at once (the attack): all refused from their heads.
    let head = format!(
        "POST /file/upload HTTP/1.1\r\nHost: {host}\r\nContent-Type: {multipart}\r\nContent-Length: {}\r\n\r\n",
        95 * MIB
    );
    let refused = futures_util::future::join_all((0..8).map(|_| answer_to_a_head(&server, &head, b"--XyZ\r\n"))).await;
    assert!(refused.iter().all(|(status, _)| *status == 401), "{refused:?}");
    let growth = rss.growth();
    eprintln!("unauthenticated uploads: memory +{} MiB", growth / MIB);
    assert!(growth < 64 * MIB, "memory grew by {} MiB", growth / MIB);
}

//! Connections a stranger opens and never uses: each is closed in time, and however many they
//! open, others are still served. Loopback only: the attacker's sockets come from 127.0.0.2.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a panic is the failure report"
)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use kafka_tests::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const HEADER_TIMEOUT: Duration = Duration::from_secs(1);

fn server_addr(server: &TestServer) -> SocketAddr {
    server.url("").trim_start_matches("http://").parse().unwrap()
}

/// A connection from `source` (a loopback address of the attacker's).
async fn connect_from(source: [u8; 4], to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((source, 0)))?;
    socket.connect(to).await
}

/// Reads until the server closes the connection; the time that took, or `None` if it stayed
/// open for `wait`.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout(wait.saturating_sub(started.elapsed()), stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        }
    }
}

async fn healthz(server: &TestServer) -> bool {
    let client = reqwest::Client::new();
    let response = client
        .get(server.url("/healthz"))
        .timeout(Duration::from_secs(3))
        .send()
        .await;
    response.is_ok_and(|r| r.status() == 200)
}

async fn start(max_total: usize, max_per_address: usize) -> TestServer {
    TestServer::start_with(|s| {
        s.connections.header_read_timeout = HEADER_TIMEOUT;
        s.connections.max_total = max_total;
        s.connections.max_per_address = max_per_address;
    })
    .await
}

#[tokio::test]
async fn silent_half_sent_and_idle_connections_are_closed() {
    let server = start(1000, 100).await;
    let to = server_addr(&server);

    let mut silent = connect_from([127, 0, 0, 2], to).await.unwrap();
    let mut half = connect_from([127, 0, 0, 2], to).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let mut idle = connect_from([127, 0, 0, 2], to).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 1024];
    let n = idle.read(&mut answer).await.unwrap();
    assert!(
        answer[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer[..n])
    );

    for (name, stream) in [
        ("silent", &mut silent),
        ("half-sent", &mut half),
        ("idle keep-alive", &mut idle),
    ] {
        let closed = closed_within(stream, Duration::from_secs(5)).await;
        assert!(closed.is_some(), "the {name} connection is still open after 5 s");
    }
}

#[tokio::test]
async fn thousands_of_unused_connections_do_not_stop_healthz() {
    let limit = rlimit::increase_nofile_limit(40_000).unwrap_or(1024);
    let attempts = 10_000.min((limit as usize).saturating_sub(1_000));
    let server = start(4_096, 256).await;
    let to = server_addr(&server);

    let started = Instant::now();
    let mut held = Vec::with_capacity(attempts);
    for _ in 0..attempts {
        if let Ok(stream) = connect_from([127, 0, 0, 2], to).await {
            held.push(stream);
        }
        assert!(started.elapsed() < Duration::from_secs(60), "connecting took too long");
    }
    // Past its 256 places the attacker's connections are closed at once; others get in.
    assert!(
        healthz(&server).await,
        "healthz answers beside {} open attempts",
        held.len()
    );
    let mut closed_at_once = 0;
    for stream in held.iter_mut().rev().take(100) {
        if closed_within(stream, Duration::from_millis(200)).await.is_some() {
            closed_at_once += 1;
        }
    }
    assert!(
        closed_at_once >= 90,
        "only {closed_at_once} of the last 100 were closed"
    );
    eprintln!("{} connections opened in {:?}", held.len(), started.elapsed());
    drop(held);
}

#[tokio::test]
async fn the_total_cap_holds_and_frees_its_places() {
    let server = start(20, 1_000).await;
    let to = server_addr(&server);
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(connect_from([127, 0, 0, 3], to).await.unwrap());
    }
    // Every place is taken: a new connection is closed without an answer.
    let mut refused = connect_from([127, 0, 0, 1], to).await.unwrap();
    let _ = refused
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), refused.read_to_end(&mut answer)).await;
    assert!(
        answer.is_empty(),
        "refused, not answered: {}",
        String::from_utf8_lossy(&answer)
    );
    // The silent ones time out, and their places serve others again.
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(healthz(&server).await);
}

//! After a burst of large requests the server gives its memory back: the real binary, bursts
//! of uploads and echoes, its RSS read from /proc until it is near where it started.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a panic is the failure report"
)]

use std::time::{Duration, Instant};

use kafka_tests::{ServerProcess, WsClient};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

const MIB: u64 = 1024 * 1024;

#[tokio::test]
async fn memory_comes_back_after_a_burst() {
    let data_dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::spawn(data_dir.path(), &[]).await;
    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("{}/auth/login", server.base))
        .json(&json!({"email": "burst@example.com"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let workspace_id = login["workspaces"][0]["id"].as_str().unwrap().to_owned();
    let user_id = login["user_id"].as_str().unwrap().to_owned();
    let new_chat = |name: String| {
        let form = Form::new()
            .text("user_id", user_id.clone())
            .text("workspace_id", workspace_id.clone())
            .text("chat_name", name);
        let request = http.post(format!("{}/chat/new", server.base)).multipart(form).send();
        async move {
            let chat: Value = request.await.unwrap().json().await.unwrap();
            chat["chat_id"].as_str().unwrap().to_owned()
        }
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let baseline = server.rss_bytes();

    let mut peak = baseline;
    for round in 0..3 {
        // Eight 20 MiB uploads at once, over REST.
        let uploads = (0..8).map(|i| {
            let form = Form::new()
                .text("target_id", workspace_id.clone())
                .text("is_chat", "false")
                .part(
                    "files",
                    Part::bytes(vec![b'a' + i as u8; 20 * MIB as usize]).file_name(format!("r{round}-{i}.txt")),
                );
            http.post(format!("{}/file/upload", server.base)).multipart(form).send()
        });
        for response in futures_util::future::join_all(uploads).await {
            assert_eq!(response.unwrap().status(), 200);
        }
        peak = peak.max(server.rss_bytes());
        // Large echoes from several sockets at once, in a chat of this round's (so that no
        // payload carries the earlier rounds).
        let chat_id = new_chat(format!("Burst {round}")).await;
        let ws_url = format!("{}/ws/{chat_id}", server.base.replacen("http", "ws", 1));
        let clients = (0..6).map(|_| async {
            let mut ws = WsClient::connect(&ws_url).await;
            ws.recv_json().await;
            for _ in 0..4 {
                // Modest echoes: what SQLite keeps in its page caches (bounded, and not ours to
                // return) stays small beside the uploads' burst.
                ws.send_text(&"x".repeat(100 * 1024)).await;
                ws.recv_text().await;
            }
            ws.close().await;
        });
        futures_util::future::join_all(clients).await;
        peak = peak.max(server.rss_bytes());
    }

    // Within a minute the server is back near where it started.
    let started = Instant::now();
    // What stays is caches (SQLite pages, payload texts): glibc kept +200 MiB here.
    let allowed = baseline + 128 * MIB;
    let mut now = server.rss_bytes();
    while now > allowed && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        now = server.rss_bytes();
    }
    eprintln!(
        "RSS: baseline {} MiB, peak {} MiB, after {:?}: {} MiB",
        baseline / MIB,
        peak / MIB,
        started.elapsed(),
        now / MIB
    );
    assert!(
        now <= allowed,
        "RSS stayed at {} MiB (baseline {} MiB, peak {} MiB)",
        now / MIB,
        baseline / MIB,
        peak / MIB
    );
}

//! Requests a hostile web page or client sends: cross-origin posts and sockets, rebound host
//! names, too many files, endless messages, deceptive names. Each is refused with a reason
//! and changes nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a panic is the failure report"
)]

use base64::Engine;
use futures_util::SinkExt;
use kafka_tests::TestServer;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

#[tokio::test]
async fn a_foreign_page_cannot_use_an_open_server() {
    let server = TestServer::start().await;
    let (user_id, workspace_id, _) = server.user_with_chat("victim@example.com").await;

    // A text/plain POST needs no preflight: it must be refused outright, not only unreadable.
    let response = server
        .http
        .post(server.url("/auth/login"))
        .header("origin", "https://evil.example")
        .header("content-type", "text/plain")
        .body(r#"{"email": "victim@example.com"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(response.headers().get("access-control-allow-origin").is_none());
    let body: Value = response.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("--cors-origins"), "{body}");

    // A form POST likewise, and nothing is created; a preflight from that origin is refused.
    let response = server
        .http
        .post(server.url("/chat/new"))
        .header("origin", "https://evil.example")
        .form(&[
            ("user_id", user_id.as_str()),
            ("workspace_id", workspace_id.as_str()),
            ("chat_name", "planted"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let overview = server.login("victim@example.com").await;
    assert_eq!(overview.workspaces[0].chats.len(), 1, "no chat was planted");
    let response = server
        .http
        .request(reqwest::Method::OPTIONS, server.url("/auth/login"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    // A frontend on localhost is allowed, and told so.
    let response = server
        .http
        .post(server.url("/auth/login"))
        .header("origin", "http://localhost:3000")
        .json(&json!({"email": "dev@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );
    let response = server
        .http
        .request(reqwest::Method::OPTIONS, server.url("/auth/login"))
        .header("origin", "http://127.0.0.1:5173")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://127.0.0.1:5173"
    );
}

#[tokio::test]
async fn a_rebound_host_name_is_refused_in_open_mode() {
    let server = TestServer::start().await;
    let response = server
        .http
        .get(server.url("/healthz"))
        .header("host", "rebind.evil.example:8000")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = server
        .http
        .get(server.url("/healthz"))
        .header("host", "localhost:8000")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn websockets_check_the_origin_too() {
    let server = TestServer::start().await;
    let (_, _, chat_id) = server.user_with_chat("ws-origin@example.com").await;
    let handshake = |origin: Option<&'static str>| {
        let mut request = server.ws_url(&chat_id).into_client_request().unwrap();
        if let Some(origin) = origin {
            request.headers_mut().insert("origin", HeaderValue::from_static(origin));
        }
        request
    };
    let refused = tokio_tungstenite::connect_async(handshake(Some("https://evil.example"))).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("expected a 403 handshake, got {other:?}"),
    }
    for origin in [None, Some("http://localhost:3000")] {
        let (mut socket, _) = tokio_tungstenite::connect_async(handshake(origin)).await.unwrap();
        socket.close(None).await.unwrap();
    }
}

#[tokio::test]
async fn listed_origins_are_allowed() {
    let server = TestServer::start_with(|s| s.cors_origins = vec!["https://frontend.example".into()]).await;
    let response = server
        .http
        .post(server.url("/auth/login"))
        .header("origin", "https://frontend.example")
        .json(&json!({"email": "listed@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://frontend.example"
    );
}

#[tokio::test]
async fn too_many_files_in_one_upload_are_refused_whole() {
    let server = TestServer::start_with(|s| s.max_files_per_upload = 5).await;
    let (_, workspace_id, _) = server.user_with_chat("many@example.com").await;
    let mut form = Form::new()
        .text("target_id", workspace_id.clone())
        .text("is_chat", "false");
    for i in 0..6 {
        form = form.part("files", Part::bytes(b"x".to_vec()).file_name(format!("f{i}.txt")));
    }
    let response = server
        .http
        .post(server.url("/file/upload"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["detail"],
        "At most 5 files may be uploaded at once; this upload has 6."
    );
    assert!(
        server
            .state
            .store
            .workspace_files(&workspace_id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(server.stored_uploads().await.is_empty());
}

#[tokio::test]
async fn a_chat_message_or_prompt_beyond_the_limit_is_refused() {
    let server = TestServer::start_with(|s| s.max_message_bytes = 4 * 1024).await;
    let (_, _, chat_id) = server.user_with_chat("long@example.com").await;
    let mut ws = server.connect(&chat_id, false).await;
    ws.recv_json().await;
    ws.send_text(&"a".repeat(5 * 1024)).await;
    let reply = ws.recv_json().await;
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .starts_with("A chat message may be at most 4 KiB"),
        "{reply}"
    );
    ws.send_json(&json!({"action": "new_message", "model": "m", "prompt": "b".repeat(5 * 1024)}))
        .await;
    let reply = ws.recv_json().await;
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .starts_with("A prompt may be at most 4 KiB"),
        "{reply}"
    );
    assert!(server.state.store.conversation(&chat_id).await.unwrap().is_empty());
    // Within the limit, all is as before.
    ws.send_text("short").await;
    assert_eq!(ws.recv_text().await, "Echo: short");
}

#[tokio::test]
async fn names_lose_their_bidirectional_controls() {
    let server = TestServer::start().await;
    let (_, _, chat_id) = server.user_with_chat("bidi@example.com").await;
    let mut ws = server.connect(&chat_id, false).await;
    ws.recv_json().await;
    let data = base64::engine::general_purpose::STANDARD.encode("MZ");
    ws.send_json(&json!({"action": "upload_file", "filename": "invoice\u{202E}fdp.exe", "file_data": data}))
        .await;
    let reply = ws.recv_json().await;
    assert_eq!(
        kafka_tests::file_content(&reply["message"])["filename"],
        "invoicefdp.exe"
    );
}

#[tokio::test]
async fn a_frame_that_is_not_utf8_is_refused_for_that_reason() {
    let server = TestServer::start().await;
    let (_, _, chat_id) = server.user_with_chat("utf8@example.com").await;
    let (mut socket, _) = tokio_tungstenite::connect_async(server.ws_url(&chat_id)).await.unwrap();
    use futures_util::StreamExt;
    // The initial payload.
    loop {
        if let Some(Ok(tokio_tungstenite::tungstenite::Message::Text(_))) = socket.next().await {
            break;
        }
    }
    // A text frame whose payload is not UTF-8, written by hand (tungstenite will not send one).
    let frame = tokio_tungstenite::tungstenite::protocol::frame::Frame::message(
        vec![0xff, 0xfe, 0xfd],
        tokio_tungstenite::tungstenite::protocol::frame::coding::OpCode::Data(
            tokio_tungstenite::tungstenite::protocol::frame::coding::Data::Text,
        ),
        true,
    );
    socket
        .send(tokio_tungstenite::tungstenite::Message::Frame(frame))
        .await
        .unwrap();
    // The first text frame after it (pings may come between).
    let text = loop {
        let reply = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .expect("an answer")
            .expect("a frame")
            .expect("a readable frame");
        if let tokio_tungstenite::tungstenite::Message::Text(text) = reply {
            break text.to_string();
        }
    };
    assert!(text.contains("must be valid UTF-8"), "{text}");
    assert!(!text.contains("MiB"), "{text}");
}

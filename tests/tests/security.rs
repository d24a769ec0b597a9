//! Security end to end: tokens, passwords, throttling, protected mode and ownership, against
//! the real server. The matrix at the heart of it sends every endpoint and WebSocket action
//! with no token, another user's token and the owner's token, and checks each status and that
//! refused requests changed nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a panic is the failure report"
)]

use std::time::Duration;

use base64::Engine;
use kafka_server::auth::AuthMode;
use kafka_tests::fake_model::FakeModel;
use kafka_tests::{FRAME_WAIT, TestServer, WsClient};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

const KEY: &str = "sk-owner-secret-0451";
/// The password every account of these tests logs in with (protected mode needs one; open mode
/// ignores it until the account has one).
const PASSWORD: &str = "correct horse battery staple";

/// A logged-in user and what they own.
#[derive(Clone, Debug)]
struct Account {
    user_id: String,
    token: String,
    workspace_id: String,
    chat_id: String,
    /// A file uploaded to the workspace, and one uploaded to the chat.
    workspace_file_id: String,
    chat_file_id: String,
    model_id: String,
}

async fn login(server: &TestServer, body: Value) -> reqwest::Response {
    server
        .http
        .post(server.url("/auth/login"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn login_token(server: &TestServer, email: &str) -> (String, String, String) {
    let response = login(server, json!({ "email": email, "password": PASSWORD })).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    (
        body["user_id"].as_str().unwrap().to_owned(),
        body["token"].as_str().unwrap().to_owned(),
        body["workspaces"][0]["id"].as_str().unwrap().to_owned(),
    )
}

/// Sets the password of `token`'s account (whose password, if it has one, is `PASSWORD`);
/// the response status.
async fn set_password(server: &TestServer, token: &str, password: &str) -> StatusCode {
    server
        .http
        .post(server.url("/auth/password"))
        .bearer_auth(token)
        .json(&json!({ "password": password, "current_password": PASSWORD }))
        .send()
        .await
        .unwrap()
        .status()
}

fn with_token(request: RequestBuilder, token: Option<&str>) -> RequestBuilder {
    match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

fn form(fields: &[(&str, &str)]) -> reqwest::multipart::Form {
    fields.iter().fold(reqwest::multipart::Form::new(), |form, (k, v)| {
        form.text(k.to_string(), v.to_string())
    })
}

fn file_part(name: &str, bytes: &[u8]) -> reqwest::multipart::Part {
    reqwest::multipart::Part::bytes(bytes.to_vec()).file_name(name.to_owned())
}

/// Token mode, allowing the loopback model hosts [`account`] registers (token mode refuses
/// them by default; `model_hosts.rs` tests that).
fn protected_with_loopback_models(settings: &mut kafka_server::config::Settings) {
    settings.auth = AuthMode::Token;
    settings.allow_private_model_hosts = true;
}

/// Logs in and creates a chat, a model, a workspace file and a chat file, with the token.
async fn account(server: &TestServer, email: &str) -> Account {
    let (user_id, token, workspace_id) = login_token(server, email).await;
    let send = |request: RequestBuilder| async { request.bearer_auth(&token).send().await.unwrap() };
    let chat: Value = send(server.http.post(server.url("/chat/new")).multipart(form(&[
        ("user_id", &user_id),
        ("workspace_id", &workspace_id),
        ("chat_name", "Mine"),
    ])))
    .await
    .json()
    .await
    .unwrap();
    let chat_id = chat["chat_id"].as_str().unwrap().to_owned();
    let upload = |target: &str, is_chat: &str, name: &str| {
        server.http.post(server.url("/file/upload")).multipart(
            form(&[("user_id", &user_id), ("target_id", target), ("is_chat", is_chat)])
                .part("files", file_part(name, b"notes")),
        )
    };
    let workspace_file: Value = send(upload(&workspace_id, "false", "ws.txt"))
        .await
        .json()
        .await
        .unwrap();
    let chat_file: Value = send(upload(&chat_id, "true", "chat.txt")).await.json().await.unwrap();
    let model: Value = send(server.http.post(server.url("/models/new")).multipart(form(&[
        ("user_id", &user_id),
        ("name", "gpt"),
        ("ak", KEY),
        ("base_url", "http://127.0.0.1:9/v1"),
    ])))
    .await
    .json()
    .await
    .unwrap();
    Account {
        user_id,
        token: token.clone(),
        workspace_id,
        chat_id,
        workspace_file_id: workspace_file["files"][0].as_str().unwrap().to_owned(),
        chat_file_id: chat_file["files"][0].as_str().unwrap().to_owned(),
        model_id: model["id"].as_str().unwrap().to_owned(),
    }
}

/// One row of the matrix: a request naming `owner`'s resources, and the statuses expected with
/// no token, with another user's token, and with the owner's token.
struct Case {
    name: &'static str,
    build: fn(&TestServer, &Account) -> RequestBuilder,
    expect: [u16; 3],
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "POST /workspace/new",
            build: |s, a| {
                s.http
                    .post(s.url("/workspace/new"))
                    .multipart(form(&[("owner_id", &a.user_id), ("name", "Another")]))
            },
            expect: [401, 404, 200],
        },
        Case {
            name: "PATCH /workspace/rename",
            build: |s, a| {
                s.http
                    .patch(s.url("/workspace/rename"))
                    .multipart(form(&[("workspace_id", &a.workspace_id), ("new_name", "Renamed")]))
            },
            expect: [401, 404, 200],
        },
        Case {
            name: "POST /chat/new",
            build: |s, a| {
                s.http.post(s.url("/chat/new")).multipart(form(&[
                    ("user_id", &a.user_id),
                    ("workspace_id", &a.workspace_id),
                    ("chat_name", "Second"),
                ]))
            },
            expect: [401, 404, 200],
        },
        Case {
            name: "PATCH /chat/rename",
            build: |s, a| {
                s.http
                    .patch(s.url("/chat/rename"))
                    .multipart(form(&[("chat_id", &a.chat_id), ("new_name", "Renamed")]))
            },
            expect: [401, 404, 200],
        },
        Case {
            name: "POST /file/upload (chat)",
            build: |s, a| {
                s.http.post(s.url("/file/upload")).multipart(
                    form(&[("user_id", &a.user_id), ("target_id", &a.chat_id), ("is_chat", "true")])
                        .part("files", file_part("more.txt", b"x")),
                )
            },
            expect: [401, 404, 200],
        },
        Case {
            name: "POST /file/upload (workspace)",
            build: |s, a| {
                s.http.post(s.url("/file/upload")).multipart(
                    form(&[
                        ("user_id", &a.user_id),
                        ("target_id", &a.workspace_id),
                        ("is_chat", "false"),
                    ])
                    .part("files", file_part("more.txt", b"x")),
                )
            },
            expect: [401, 404, 200],
        },
        Case {
            name: "PATCH /file/rename",
            build: |s, a| {
                s.http
                    .patch(s.url("/file/rename"))
                    .multipart(form(&[("file_id", &a.workspace_file_id), ("new_name", "renamed.txt")]))
            },
            expect: [401, 404, 200],
        },
        Case {
            name: "POST /models/new",
            build: |s, a| {
                s.http.post(s.url("/models/new")).multipart(form(&[
                    ("user_id", &a.user_id),
                    ("name", "other"),
                    ("ak", "k"),
                    ("base_url", "http://127.0.0.1:9/v1"),
                ]))
            },
            expect: [401, 404, 200],
        },
        Case {
            name: "POST /based/validate",
            build: |s, _| {
                s.http
                    .post(s.url("/based/validate"))
                    .json(&json!({"code": "say(\"hi\")\n"}))
            },
            expect: [401, 200, 200],
        },
        // Deletions last: they remove what the rows above use.
        Case {
            name: "DELETE /file/delete (chat file)",
            build: |s, a| s.http.delete(s.url(&format!("/file/delete/{}", a.chat_file_id))),
            expect: [401, 404, 200],
        },
        Case {
            name: "DELETE /models/delete",
            build: |s, a| s.http.delete(s.url(&format!("/models/delete/{}", a.model_id))),
            expect: [401, 404, 200],
        },
        Case {
            name: "DELETE /chat",
            build: |s, a| s.http.delete(s.url(&format!("/chat/{}", a.chat_id))),
            expect: [401, 404, 200],
        },
        Case {
            name: "DELETE /workspace/delete",
            build: |s, a| s.http.delete(s.url(&format!("/workspace/delete/{}", a.workspace_id))),
            expect: [401, 404, 200],
        },
    ]
}

/// Everything the owner has, as the database sees it: refused requests must leave it equal.
async fn snapshot(server: &TestServer, owner: &Account) -> String {
    let store = &server.state.store;
    let overview = store.user_overview(&owner.user_id).await.unwrap();
    let conversation = store.conversation(&owner.chat_id).await.map(|c| c.len()).ok();
    format!("{overview:?} {conversation:?}")
}

#[tokio::test]
async fn protected_mode_matrix_every_endpoint_by_caller() {
    let server = TestServer::start_with(protected_with_loopback_models).await;
    let owner = account(&server, "owner@example.com").await;
    let intruder = account(&server, "intruder@example.com").await;

    for case in cases() {
        let callers = [None, Some(intruder.token.as_str()), Some(owner.token.as_str())];
        for (caller, expected) in callers.into_iter().zip(case.expect) {
            let before = snapshot(&server, &owner).await;
            let response = with_token((case.build)(&server, &owner), caller).send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let who = match caller {
                None => "no token",
                Some(t) if t == owner.token => "owner's token",
                Some(_) => "another user's token",
            };
            assert_eq!(status, expected, "{} with {who}: {body}", case.name);
            if status != 200 {
                assert!(body["detail"].is_string(), "{} with {who}: {body}", case.name);
                assert_eq!(
                    before,
                    snapshot(&server, &owner).await,
                    "{} with {who} changed data",
                    case.name
                );
            }
            if status == 404 {
                // Indistinguishable from a missing resource.
                let detail = body["detail"].as_str().unwrap();
                assert!(detail.ends_with("not found."), "{}: {detail}", case.name);
            }
        }
    }
}

#[tokio::test]
async fn protected_mode_leaves_only_the_public_paths_open() {
    let server = TestServer::start_with(|s| s.auth = AuthMode::Token).await;
    for path in ["/", "/healthz", "/openapi.json", "/docs/"] {
        let response = server.http.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let response = login(&server, json!({"email": "public@example.com", "password": PASSWORD})).await;
    assert_eq!(response.status(), 200);
    for (method, path) in [
        (Method::POST, "/auth/logout"),
        (Method::POST, "/auth/password"),
        (Method::DELETE, "/chat/some-id"),
    ] {
        let response = server
            .http
            .request(method, server.url(path))
            .json(&json!({"password": "long enough"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{path}");
    }
    let garbage = server
        .http
        .delete(server.url("/chat/some-id"))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 401);
    let unknown = server
        .http
        .delete(server.url("/chat/some-id"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 401);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["detail"], "Invalid or expired token.");
}

async fn ws_connect(server: &TestServer, chat_id: &str, token: Option<&str>) -> Result<WsClient, StatusCode> {
    let mut url = format!("{}?v=2", server.ws_url(chat_id));
    if let Some(token) = token {
        url.push_str(&format!("&token={token}"));
    }
    match tokio_tungstenite::connect_async(&url).await {
        Ok(_) => Ok(WsClient::connect(&url).await),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(response.status()),
        Err(other) => panic!("websocket connect: {other}"),
    }
}

#[tokio::test]
async fn protected_websocket_needs_the_owners_token_and_actions_stay_in_the_chat() {
    let server = TestServer::start_with(protected_with_loopback_models).await;
    let owner = account(&server, "owner@example.com").await;
    let intruder = account(&server, "intruder@example.com").await;

    // No token, or a bad one: refused before the upgrade.
    assert_eq!(
        ws_connect(&server, &owner.chat_id, None).await.err(),
        Some(StatusCode::UNAUTHORIZED)
    );
    assert_eq!(
        ws_connect(&server, &owner.chat_id, Some("forged")).await.err(),
        Some(StatusCode::UNAUTHORIZED)
    );
    // Another user's token: the chat looks missing, and the socket closes.
    let mut ws = ws_connect(&server, &owner.chat_id, Some(&intruder.token))
        .await
        .unwrap();
    assert_eq!(ws.recv_json().await, json!({"error": "Chat not found."}));
    assert!(ws.closed_within(Duration::from_secs(5)).await);
    // The owner's token in an Authorization header works as well as in the query.
    let request = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
        "{}?v=2",
        server.ws_url(&owner.chat_id)
    ))
    .map(|mut r| {
        let value = format!("Bearer {}", owner.token).parse().unwrap();
        r.headers_mut().insert("authorization", value);
        r
    })
    .unwrap();
    let (mut header_ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    drop(header_ws.close(None).await);

    // The owner's session: each action naming the intruder's things finds nothing.
    let mut ws = ws_connect(&server, &owner.chat_id, Some(&owner.token)).await.unwrap();
    ws.recv_initial().await;
    let intruder_based = based_file_in(&server, &intruder).await;
    let before = snapshot(&server, &intruder).await;
    let probes = [
        json!({"action": "revert_version", "filename": "a.based", "version_id": intruder_based.1}),
        json!({"action": "get_diff", "file_id": intruder_based.0, "from_version_id": intruder_based.1}),
        json!({"action": "delete_file", "file_id": intruder.chat_file_id}),
        json!({"action": "new_message", "model": "missing-model", "prompt": "hi", "is_first_prompt": true,
               "is_chat_or_composer": true}),
    ];
    for probe in probes {
        ws.send_json(&probe).await;
        let reply = ws.recv_json().await;
        let error = reply["error"].as_str().unwrap_or_else(|| panic!("{probe}: {reply}"));
        assert!(error.contains("not found"), "{probe}: {error}");
    }
    assert_eq!(before, snapshot(&server, &intruder).await);
    // The intruder's model name is not usable from the owner's chat either.
    assert!(server.state.store.model_by_name(&owner.user_id, "gpt").await.is_ok());
    let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
    ws.send_text(&deep).await;
    let reply = ws.recv_json().await;
    assert!(
        reply["error"].as_str().unwrap().contains("nested too deeply"),
        "{reply}"
    );
    let data = base64::engine::general_purpose::STANDARD.encode("ok");
    ws.send_json(&json!({"action": "upload_file", "filename": "mine.txt", "file_data": data}))
        .await;
    assert_eq!(ws.recv_json().await["action"], "file_uploaded");
}

/// Uploads a `.based` file to the account's chat over its own session: `(file_id, version_id)`.
async fn based_file_in(server: &TestServer, account: &Account) -> (String, String) {
    let mut ws = ws_connect(server, &account.chat_id, Some(&account.token))
        .await
        .unwrap();
    ws.recv_initial().await;
    let data = base64::engine::general_purpose::STANDARD.encode("say(\"hi\")\n");
    ws.send_json(&json!({"action": "upload_file", "filename": "a.based", "file_data": data}))
        .await;
    let reply = ws.recv_json().await;
    let file_id = kafka_tests::file_content(&reply["message"])["file_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let version = server.state.store.latest_version(&file_id).await.unwrap();
    ws.close().await;
    (file_id, version.id)
}

#[tokio::test]
async fn open_mode_keeps_the_brief_style_but_checks_tokens_that_are_sent() {
    let server = TestServer::start().await; // loopback, open
    let owner = account(&server, "owner@example.com").await;
    let intruder = account(&server, "intruder@example.com").await;

    // The brief's clients: no token, IDs trusted.
    let rename = |token: Option<&str>| {
        with_token(
            server
                .http
                .patch(server.url("/chat/rename"))
                .multipart(form(&[("chat_id", &owner.chat_id), ("new_name", "Open")])),
            token,
        )
        .send()
    };
    assert_eq!(rename(None).await.unwrap().status(), 200);
    // A token that is sent is still checked, and binds the request to its user.
    assert_eq!(rename(Some("forged")).await.unwrap().status(), 401);
    assert_eq!(rename(Some(&intruder.token)).await.unwrap().status(), 404);
    assert_eq!(rename(Some(&owner.token)).await.unwrap().status(), 200);
    let mut ws = ws_connect(&server, &owner.chat_id, None).await.unwrap();
    ws.recv_initial().await;
    assert_eq!(
        ws_connect(&server, &owner.chat_id, Some("forged")).await.err(),
        Some(StatusCode::UNAUTHORIZED)
    );
}

#[tokio::test]
async fn passwords_logout_and_expiry() {
    let server = TestServer::start_with(|s| {
        s.auth = AuthMode::Token;
        s.token_ttl = Duration::from_secs(2);
    })
    .await;
    let (_, token, _) = login_token(&server, "pw@example.com").await;
    assert_eq!(set_password(&server, &token, "short").await, 422);
    let other_session = login(&server, json!({"email": "pw@example.com", "password": PASSWORD}))
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(set_password(&server, &token, "a long passphrase").await, 200);
    // Setting a password logged out the other session, not this one.
    let probe = |token: String| {
        server
            .http
            .post(server.url("/based/validate"))
            .bearer_auth(token)
            .json(&json!({"code": "say(\"x\")\n"}))
            .send()
    };
    assert_eq!(
        probe(other_session["token"].as_str().unwrap().to_owned())
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(probe(token.clone()).await.unwrap().status(), 200);

    for body in [
        json!({"email": "pw@example.com"}),
        json!({"email": "pw@example.com", "password": "wrong password"}),
    ] {
        let response = login(&server, body).await;
        assert_eq!(response.status(), 401);
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            json!({"detail": "Invalid credentials."})
        );
    }
    let good = login(
        &server,
        json!({"email": "PW@example.com ", "password": "a long passphrase"}),
    )
    .await;
    assert_eq!(good.status(), 200);
    let fresh = good.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();

    // Logout revokes exactly that token.
    let logout = server
        .http
        .post(server.url("/auth/logout"))
        .bearer_auth(&fresh)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 200);
    assert_eq!(probe(fresh).await.unwrap().status(), 401);
    assert_eq!(probe(token.clone()).await.unwrap().status(), 200);

    // Tokens expire.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(probe(token).await.unwrap().status(), 401);
}

/// Reads the frame a session gets before the server ends it, and the close.
async fn ends_with(ws: &mut WsClient, error: &str) {
    let frame: Value = serde_json::from_str(&ws.recv_text().await).unwrap();
    assert_eq!(frame["error"], error);
    assert!(
        ws.closed_within(FRAME_WAIT).await,
        "the socket should close after {error:?}"
    );
}

async fn echoes(ws: &mut WsClient, text: &str) {
    ws.send_text(text).await;
    assert_eq!(ws.recv_text().await, format!("Echo: {text}"));
}

#[tokio::test]
async fn websockets_end_with_their_token() {
    let ttl = Duration::from_secs(4);
    let server = TestServer::start_with(|s| {
        s.auth = AuthMode::Token;
        s.token_ttl = ttl;
    })
    .await;
    let (user_id, token_a, workspace_id) = login_token(&server, "sockets@example.com").await;
    let chat: Value = server
        .http
        .post(server.url("/chat/new"))
        .bearer_auth(&token_a)
        .multipart(form(&[
            ("user_id", &user_id),
            ("workspace_id", &workspace_id),
            ("chat_name", "Live"),
        ]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let chat_id = chat["chat_id"].as_str().unwrap();
    let open = |token: String| {
        let url = format!("{}?token={token}", server.ws_url(chat_id));
        async move {
            let mut ws = WsClient::connect(&url).await;
            ws.recv_initial().await;
            ws
        }
    };

    // A logout ends the sockets of that token only.
    let (_, token_b, _) = login_token(&server, "sockets@example.com").await;
    let mut by_a = open(token_a.clone()).await;
    let mut by_b = open(token_b.clone()).await;
    let logout = server.http.post(server.url("/auth/logout")).bearer_auth(&token_b);
    assert_eq!(logout.send().await.unwrap().status(), 200);
    ends_with(&mut by_b, kafka_server::hub::LOGGED_OUT).await;
    echoes(&mut by_a, "still here").await;

    // A password change ends the sockets of every other token of the account.
    let (_, token_c, _) = login_token(&server, "sockets@example.com").await;
    let mut by_c = open(token_c.clone()).await;
    assert_eq!(set_password(&server, &token_c, "a long passphrase").await, 200);
    ends_with(&mut by_a, kafka_server::hub::LOGGED_OUT).await;
    echoes(&mut by_c, "mine still works").await;

    // And a socket closes when its token expires, without a frame from the client.
    let started = tokio::time::Instant::now();
    ends_with(&mut by_c, "The token expired; log in again.").await;
    assert!(started.elapsed() < ttl + Duration::from_secs(2));
    // A revoked token cannot open a socket again.
    let url = format!("{}?token={token_b}", server.ws_url(chat_id));
    match tokio_tungstenite::connect_async(&url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("expected 401, got {:?}", other.map(|_| ())),
    }
}

/// Five accounts with passwords, then 20 failed logins spread over them (four each, below the
/// per-account limit), each with the `X-Forwarded-For` that `forwarded(i)` gives; then whether
/// the first account's right password is refused from a new forwarded address.
async fn sprayed_then_blocked(server: &TestServer, forwarded: impl Fn(usize) -> String) -> StatusCode {
    let emails: Vec<String> = (0..5).map(|i| format!("spray{i}@example.com")).collect();
    for email in &emails {
        let (_, token, _) = login_token(server, email).await;
        assert_eq!(set_password(server, &token, "the right one").await, 200);
    }
    let attempt = |email: &str, password: &str, from: String| {
        server
            .http
            .post(server.url("/auth/login"))
            .header("X-Forwarded-For", from)
            .json(&json!({"email": email, "password": password}))
            .send()
    };
    for i in 0..20 {
        let response = attempt(&emails[i % 5], "guess", forwarded(i)).await.unwrap();
        assert_eq!(response.status(), 401);
    }
    attempt(&emails[0], "the right one", "198.51.100.200".into())
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn the_address_throttle_believes_forwarded_for_only_from_trusted_proxies() {
    // Behind a trusted proxy each client has its own bucket: one spraying address is
    // blocked, another client is not.
    let behind_proxy = TestServer::start_with(|s| s.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]).await;
    let status = sprayed_then_blocked(&behind_proxy, |_| "203.0.113.9".into()).await;
    assert_eq!(status, 200);
    let blocked = behind_proxy
        .http
        .post(behind_proxy.url("/auth/login"))
        .header("X-Forwarded-For", "203.0.113.9")
        .json(&json!({"email": "spray0@example.com", "password": "the right one"}))
        .send()
        .await
        .unwrap();
    assert_eq!(blocked.status(), 429);

    // From an untrusted peer the header is ignored: a new address on every attempt does not
    // escape the peer's bucket.
    let direct = TestServer::start().await;
    let status = sprayed_then_blocked(&direct, |i| format!("203.0.113.{i}")).await;
    assert_eq!(status, 429);
}

#[tokio::test]
async fn failed_logins_are_throttled_per_account() {
    let server = TestServer::start().await;
    let (_, token, _) = login_token(&server, "target@example.com").await;
    assert_eq!(set_password(&server, &token, "the right one").await, 200);
    for _ in 0..5 {
        let response = login(&server, json!({"email": "target@example.com", "password": "guess"})).await;
        assert_eq!(response.status(), 401);
    }
    // Now even the right password waits, without being checked.
    let response = login(
        &server,
        json!({"email": "target@example.com", "password": "the right one"}),
    )
    .await;
    assert_eq!(response.status(), 429);
    let detail = response.json::<Value>().await.unwrap()["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(detail.starts_with("Too many failed login attempts"), "{detail}");
    // Other accounts are unaffected (one address, well under its own limit).
    assert_eq!(
        login(&server, json!({"email": "bystander@example.com"})).await.status(),
        200
    );
}

#[tokio::test]
async fn the_model_key_is_write_only_and_sealed_at_rest() {
    let server = TestServer::start_with(|s| s.sealer = kafka_server::secrets::Sealer::new(Some("test secret"))).await;
    let fake = FakeModel::start().await;
    let (user_id, token, workspace_id) = login_token(&server, "keys@example.com").await;
    let added = server
        .http
        .post(server.url("/models/new"))
        .multipart(form(&[
            ("user_id", &user_id),
            ("name", "fake-model"),
            ("ak", KEY),
            ("base_url", &fake.base_url()),
        ]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!added.contains(KEY), "{added}");
    let overview = login(&server, json!({"email": "keys@example.com"}))
        .await
        .text()
        .await
        .unwrap();
    assert!(overview.contains("fake-model") && !overview.contains(KEY), "{overview}");

    // The database file holds the sealed form only.
    let stored: String = sqlx_scalar(&server, "SELECT ak FROM models").await;
    assert!(stored.starts_with("enc:v1:") && !stored.contains(KEY), "{stored}");

    // The agent still gets the plain key.
    let chat = server
        .http
        .post(server.url("/chat/new"))
        .bearer_auth(&token)
        .multipart(form(&[
            ("user_id", &user_id),
            ("workspace_id", &workspace_id),
            ("chat_name", "c"),
        ]))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let mut ws = ws_connect(&server, chat["chat_id"].as_str().unwrap(), Some(&token))
        .await
        .unwrap();
    let initial = ws.recv_initial().await;
    assert!(!serde_json::to_string(&initial).unwrap().contains(KEY));
    fake.push_json(json!({"text": "Hello."}));
    ws.send_json(&json!({"action": "new_message", "model": "fake-model", "prompt": "hi",
                         "is_first_prompt": false, "is_chat_or_composer": false}))
        .await;
    loop {
        let frame = ws.recv_text().await;
        assert!(!frame.contains(KEY));
        if frame == "Hello." {
            break;
        }
    }
    let requests = fake.requests();
    assert_eq!(
        requests[0].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
}

/// Reads one text value straight from the server's database (its SQLite file, or its
/// PostgreSQL database when the suite runs on one), as an attacker with the data would.
async fn sqlx_scalar(server: &TestServer, query: &str) -> String {
    if let Some(database) = &server.database {
        use sqlx::Connection;
        let mut connection = sqlx::PgConnection::connect(&database.url).await.unwrap();
        let value: String = sqlx::query_scalar(query).fetch_one(&mut connection).await.unwrap();
        let _ = connection.close().await;
        return value;
    }
    let path = server.data_dir.path().join("kafka.db");
    let output = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])",
        ])
        .arg(&path)
        .arg(query)
        .output()
        .expect("python3 reads the database");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn path_tricks_and_oversized_bodies_are_refused_in_protected_mode_too() {
    let server = TestServer::start_with(|s| {
        protected_with_loopback_models(s);
        s.max_upload_bytes = 1024;
        s.max_body_bytes = 4096;
    })
    .await;
    let owner = account(&server, "owner@example.com").await;
    let upload = |name: &str, size: usize| {
        server
            .http
            .post(server.url("/file/upload"))
            .bearer_auth(&owner.token)
            .multipart(
                form(&[
                    ("user_id", &owner.user_id),
                    ("target_id", &owner.chat_id),
                    ("is_chat", "true"),
                ])
                .part("files", file_part(name, &vec![b'a'; size])),
            )
            .send()
    };
    let response = upload("../../etc/passwd", 10).await.unwrap();
    assert_eq!(response.status(), 200);
    let stored = server.state.store.chat_files(&owner.chat_id).await.unwrap();
    assert!(
        stored
            .iter()
            .all(|f| !f.filename.contains('/') && !f.filename.contains(".."))
    );
    assert!(
        stored
            .iter()
            .all(|f| f.path.starts_with(server.data_dir.path().to_str().unwrap()) || !f.path.contains(".."))
    );
    assert_eq!(upload("big.txt", 2048).await.unwrap().status(), 413);
    assert_eq!(upload("huge.txt", 8192).await.unwrap().status(), 413);
    // A deeply nested JSON body is refused with a clear error, not a crash.
    let deep = format!(
        r#"{{"code": "", "extra": {}{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let response = server
        .http
        .post(server.url("/based/validate"))
        .bearer_auth(&owner.token)
        .header("content-type", "application/json")
        .body(deep)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let detail = response.text().await.unwrap();
    assert!(detail.contains("nested too deeply"), "{detail}");
}

#[tokio::test]
async fn expired_tokens_are_purged_and_live_ones_kept() {
    let server = TestServer::start().await;
    let (user_id, live, _) = login_token(&server, "purge@example.com").await;
    let store = &server.state.store;
    store
        .create_token(&user_id, "old-hash", "2000-01-01T00:00:00.000000")
        .await
        .unwrap();
    assert_eq!(store.purge_expired_tokens().await.unwrap(), 1);
    assert_eq!(store.purge_expired_tokens().await.unwrap(), 0);
    let hash = kafka_server::auth::tokens::token_hash(&live);
    assert_eq!(store.token_user(&hash).await.unwrap().map(|t| t.user_id), Some(user_id));
}

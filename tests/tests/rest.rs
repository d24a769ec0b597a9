//! The brief's REST API against the real server: each example, each error path, cascades.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a panic is the failure report"
)]

use kafka_protocol::rest::{
    ChatResponse, Detail, FileRenameResponse, FileUploadResponse, LoginResponse, ModelInfo, WorkspaceNewResponse,
    WorkspaceRenameResponse,
};
use kafka_tests::TestServer;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

fn file_part(name: &str, bytes: &[u8]) -> Part {
    Part::bytes(bytes.to_vec()).file_name(name.to_owned())
}

async fn detail(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Detail = response.json().await.expect("a {\"detail\"} body");
    (status, body.detail)
}

#[tokio::test]
async fn root_health_and_docs() {
    let server = TestServer::start().await;
    let root: Value = server
        .http
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(root["message"].as_str().unwrap().contains("Kafka"));
    let health: Value = server
        .http
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health, json!({"status": "ok"}));

    let spec: Value = server
        .http
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/auth/login",
        "/workspace/new",
        "/chat/new",
        "/file/upload",
        "/models/new",
        "/chat/{chat_id}",
    ] {
        assert!(
            spec["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI spec"
        );
    }
    assert!(spec["components"]["schemas"].get("LoginResponse").is_some());

    let docs = server.http.get(server.url("/docs/")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("swagger"));

    let (status, body) = detail(server.http.get(server.url("/nope")).send().await.unwrap()).await;
    assert_eq!((status, body.as_str()), (StatusCode::NOT_FOUND, "Not Found"));
}

#[tokio::test]
async fn login_creates_the_user_once_with_a_default_workspace() {
    let server = TestServer::start().await;
    let first = server.login("someone@example.com").await;
    assert_eq!(first.email, "someone@example.com");
    assert_eq!(first.workspaces.len(), 1);
    assert_eq!(first.workspaces[0].name, "Default Workspace");
    assert!(first.workspaces[0].chats.is_empty());

    let again = server.login("  Someone@Example.com ").await;
    assert_eq!(again.user_id, first.user_id);
    assert_eq!(again.workspaces, first.workspaces);

    let other = server.login("other@example.com").await;
    assert_ne!(other.user_id, first.user_id);
}

#[tokio::test]
async fn login_summarizes_chats_files_and_models_without_keys() {
    let server = TestServer::start().await;
    let (user_id, workspace_id, chat_id) = server.user_with_chat("a@example.com").await;
    server
        .add_model(&user_id, "gpt-x", "sk-secret-key-123", "http://127.0.0.1:9/v1")
        .await;
    let form = Form::new()
        .text("user_id", user_id.clone())
        .text("target_id", chat_id.clone())
        .text("is_chat", "true")
        .part("files", file_part("flow.based", b"say(\"hi\")\n"));
    let response = server
        .http
        .post(server.url("/file/upload"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let response = server
        .http
        .post(server.url("/auth/login"))
        .json(&json!({"email": "a@example.com"}))
        .send()
        .await
        .unwrap();
    let raw = response.text().await.unwrap();
    assert!(!raw.contains("sk-secret-key-123"), "the API key leaked: {raw}");
    let login: LoginResponse = serde_json::from_str(&raw).unwrap();
    let workspace = &login.workspaces[0];
    assert_eq!(workspace.id, workspace_id);
    assert_eq!(workspace.files.len(), 1);
    assert_eq!(workspace.files[0].filename, "flow.based");
    assert_eq!(workspace.chats.len(), 1);
    assert_eq!(workspace.chats[0].id, chat_id);
    assert_eq!(workspace.chats[0].num_versions, 1);
    assert_eq!(login.models.len(), 1);
    assert_eq!(login.models[0].name, "gpt-x");
}

#[tokio::test]
async fn login_rejects_bad_bodies() {
    let server = TestServer::start().await;
    let cases: [(&str, &str); 5] = [
        (r#"{"email": "not-an-email"}"#, "email"),
        (r#"{"email": ""}"#, "email"),
        (r#"{}"#, "email"),
        (r#"{"email": 42}"#, "invalid type"),
        (r#"{"email": "#, "Invalid JSON"),
    ];
    for (body, mentions) in cases {
        let response = server
            .http
            .post(server.url("/auth/login"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, detail) = detail(response).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(detail.contains(mentions), "{body}: {detail}");
    }
}

#[tokio::test]
async fn workspace_new_with_files_rename_and_errors() {
    let server = TestServer::start().await;
    let login = server.login("w@example.com").await;
    let form = Form::new()
        .text("owner_id", login.user_id.clone())
        .text("name", "MyNewWorkspace")
        .part("files", file_part("document.pdf", b"%PDF-1.4 not really"))
        .part("files", file_part("image.png", b"\x89PNG"));
    let response = server
        .http
        .post(server.url("/workspace/new"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let created: WorkspaceNewResponse = response.json().await.unwrap();
    let names: Vec<_> = created.files.iter().map(|f| f.filename.as_str()).collect();
    assert_eq!(names, ["document.pdf", "image.png"]);
    assert_eq!(server.stored_uploads().await.len(), 2);
    let expected = format!("{}_document.pdf", created.files[0].file_id);
    assert!(server.stored_uploads().await.contains(&expected));

    // Rename (URL-encoded form works as well as multipart).
    let response = server
        .http
        .patch(server.url("/workspace/rename"))
        .form(&[
            ("workspace_id", created.workspace_id.as_str()),
            ("new_name", "Renamed Workspace"),
        ])
        .send()
        .await
        .unwrap();
    let renamed: WorkspaceRenameResponse = response.json().await.unwrap();
    assert_eq!(renamed.new_name, "Renamed Workspace");
    let login = server.login("w@example.com").await;
    assert!(
        login
            .workspaces
            .iter()
            .any(|w| w.name == "Renamed Workspace" && w.files.len() == 2)
    );

    // Errors change nothing.
    let unknown = Form::new()
        .text("owner_id", "no-such-user")
        .text("name", "x")
        .part("files", file_part("a.txt", b"a"));
    let (status, body) = detail(
        server
            .http
            .post(server.url("/workspace/new"))
            .multipart(unknown)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::NOT_FOUND, "User not found."));
    let missing = Form::new().text("owner_id", login.user_id.clone());
    let (status, body) = detail(
        server
            .http
            .post(server.url("/workspace/new"))
            .multipart(missing)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("name"), "{body}");
    let (status, body) = detail(
        server
            .http
            .patch(server.url("/workspace/rename"))
            .form(&[("workspace_id", "nope"), ("new_name", "x")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::NOT_FOUND, "Workspace not found."));
    let json_body = server
        .http
        .post(server.url("/workspace/new"))
        .json(&json!({"owner_id": login.user_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_body.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(server.login("w@example.com").await.workspaces.len(), 2);
    assert_eq!(server.stored_uploads().await.len(), 2);
}

#[tokio::test]
async fn deleting_a_workspace_removes_everything_in_it() {
    let server = TestServer::start().await;
    let (user_id, workspace_id, chat_id) = server.user_with_chat("d@example.com").await;
    let form = Form::new()
        .text("user_id", user_id.clone())
        .text("target_id", chat_id.clone())
        .text("is_chat", "true")
        .part("files", file_part("notes.txt", b"some notes"))
        .part("files", file_part("flow.based", b"say(\"hi\")\n"));
    assert_eq!(
        server
            .http
            .post(server.url("/file/upload"))
            .multipart(form)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let mut ws = server.connect(&chat_id, false).await;
    ws.recv_initial().await;
    ws.send_text("hello").await;
    assert_eq!(ws.recv_text().await, "Echo: hello");
    assert_eq!(server.stored_uploads().await.len(), 2);

    let response = server
        .http
        .delete(server.url(&format!("/workspace/delete/{workspace_id}")))
        .send()
        .await
        .unwrap();
    let (status, body) = detail(response).await;
    assert_eq!(
        (status, body.as_str()),
        (
            StatusCode::OK,
            "Workspace and all associated data deleted successfully."
        )
    );
    assert!(
        ws.closed_within(kafka_tests::FRAME_WAIT).await,
        "the chat's socket stays open"
    );

    let store = &server.state.store;
    assert!(store.chat(&chat_id).await.is_err());
    assert!(store.conversation(&chat_id).await.unwrap().is_empty());
    assert!(store.chat_files(&chat_id).await.unwrap().is_empty());
    assert!(store.chat_versions(&chat_id).await.unwrap().is_empty());
    assert!(store.workspace_files(&workspace_id).await.unwrap().is_empty());
    assert_eq!(store.foreign_key_violations().await.unwrap(), 0);
    assert!(server.stored_uploads().await.is_empty());
    assert!(
        server
            .login("d@example.com")
            .await
            .workspaces
            .iter()
            .all(|w| w.id != workspace_id)
    );

    let (status, body) = detail(
        server
            .http
            .delete(server.url(&format!("/workspace/delete/{workspace_id}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::NOT_FOUND, "Workspace not found."));
}

#[tokio::test]
async fn chats_new_rename_delete() {
    let server = TestServer::start().await;
    let login = server.login("c@example.com").await;
    let workspace_id = &login.workspaces[0].id;
    let chat = server.new_chat(&login.user_id, workspace_id, "General Chat").await;
    assert_eq!(chat.name, "General Chat");
    assert!(chat.last_updated.as_deref().unwrap().starts_with("20"));

    let response = server
        .http
        .patch(server.url("/chat/rename"))
        .multipart(
            Form::new()
                .text("chat_id", chat.chat_id.clone())
                .text("new_name", "New Chat Name"),
        )
        .send()
        .await
        .unwrap();
    let renamed: ChatResponse = response.json().await.unwrap();
    assert_eq!(
        (renamed.chat_id.as_str(), renamed.name.as_str()),
        (chat.chat_id.as_str(), "New Chat Name")
    );

    // Another user's workspace looks missing; unknown users and bad fields are refused.
    let stranger = server.login("s@example.com").await;
    let cases = [
        (
            stranger.user_id.as_str(),
            workspace_id.as_str(),
            StatusCode::NOT_FOUND,
            "Workspace not found.",
        ),
        (
            "nobody",
            workspace_id.as_str(),
            StatusCode::NOT_FOUND,
            "User not found.",
        ),
        (
            login.user_id.as_str(),
            "nowhere",
            StatusCode::NOT_FOUND,
            "Workspace not found.",
        ),
    ];
    for (user_id, workspace, status, message) in cases {
        let form = Form::new()
            .text("user_id", user_id.to_owned())
            .text("workspace_id", workspace.to_owned())
            .text("chat_name", "x");
        let (got, body) = detail(
            server
                .http
                .post(server.url("/chat/new"))
                .multipart(form)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!((got, body.as_str()), (status, message));
    }
    let form = Form::new()
        .text("user_id", login.user_id.clone())
        .text("workspace_id", workspace_id.clone());
    let (status, body) = detail(
        server
            .http
            .post(server.url("/chat/new"))
            .multipart(form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "Missing form field: chat_name.")
    );
    assert_eq!(server.login("c@example.com").await.workspaces[0].chats.len(), 1);

    let (status, body) = detail(
        server
            .http
            .delete(server.url(&format!("/chat/{}", chat.chat_id)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "Chat deleted successfully."));
    let (status, body) = detail(
        server
            .http
            .delete(server.url(&format!("/chat/{}", chat.chat_id)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::NOT_FOUND, "Chat not found."));
    let form = Form::new().text("chat_id", "missing").text("new_name", "x");
    let (status, body) = detail(
        server
            .http
            .patch(server.url("/chat/rename"))
            .multipart(form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::NOT_FOUND, "Chat not found."));
}

#[tokio::test]
async fn file_upload_to_chat_and_workspace_delete_and_rename() {
    let server = TestServer::start().await;
    let (user_id, workspace_id, chat_id) = server.user_with_chat("f@example.com").await;

    let form = Form::new()
        .text("user_id", user_id.clone())
        .text("target_id", chat_id.clone())
        .text("is_chat", "true")
        .part("files", file_part("document.txt", b"alpha"))
        .part("files", file_part("image.png", b"\x89PNG"));
    let uploaded: FileUploadResponse = server
        .http
        .post(server.url("/file/upload"))
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(uploaded.files.len(), 2);
    let chat_files = server.state.store.chat_files(&chat_id).await.unwrap();
    assert_eq!(chat_files.len(), 2, "a chat upload is added to the chat");
    assert_eq!(
        server.state.store.workspace_files(&workspace_id).await.unwrap().len(),
        2,
        "and to its workspace"
    );

    let form = Form::new()
        .text("user_id", user_id.clone())
        .text("target_id", workspace_id.clone())
        .text("is_chat", "false")
        .part("files", file_part("../../etc/passwd", b"root"));
    let uploaded_ws: FileUploadResponse = server
        .http
        .post(server.url("/file/upload"))
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let safe_name = format!("{}_passwd", uploaded_ws.files[0]);
    assert!(
        server.stored_uploads().await.contains(&safe_name),
        "{:?}",
        server.stored_uploads().await
    );

    // Rename moves the bytes.
    let form = Form::new()
        .text("file_id", uploaded.files[0].clone())
        .text("new_name", "new_document.txt");
    let renamed: FileRenameResponse = server
        .http
        .patch(server.url("/file/rename"))
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(renamed.new_filename, "new_document.txt");
    assert_eq!(
        renamed.new_path,
        format!("uploads/files/{}_new_document.txt", uploaded.files[0])
    );
    assert_eq!(server.read_upload(&uploaded.files[0]).await.unwrap(), b"alpha");
    let renamed_key = format!("{}_new_document.txt", uploaded.files[0]);
    assert!(server.stored_uploads().await.contains(&renamed_key));
    let chat_files = server.state.store.chat_files(&chat_id).await.unwrap();
    assert!(chat_files.iter().any(|f| f.filename == "new_document.txt"));

    // Delete removes rows and bytes, and says so in the chat as the socket's delete does.
    let mut watcher = server.connect(&chat_id, true).await;
    watcher.recv_initial().await;
    let (status, body) = detail(
        server
            .http
            .delete(server.url(&format!("/file/delete/{}", uploaded.files[0])))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "File deleted successfully."));
    assert!(!server.stored_uploads().await.contains(&renamed_key));
    assert_eq!(server.read_upload(&uploaded.files[0]).await, None);
    assert_eq!(server.state.store.chat_files(&chat_id).await.unwrap().len(), 1);
    let conversation = server.state.store.conversation(&chat_id).await.unwrap();
    let note = conversation.last().expect("a system entry");
    assert_eq!((note.role.as_str(), note.kind.as_str()), ("system", "file"));
    assert_eq!(note.content["deleted_file_id"], uploaded.files[0].as_str());
    assert_eq!(note.content["filename"], "new_document.txt");
    let deleted = watcher.recv_event("file_deleted").await;
    assert_eq!(deleted["file_id"], uploaded.files[0].as_str());
    let added = watcher.recv_event("message_added").await;
    assert_eq!(added["message"]["role"], "system");
    let (status, body) = detail(
        server
            .http
            .delete(server.url(&format!("/file/delete/{}", uploaded.files[0])))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::NOT_FOUND, "File not found."));
    let form = Form::new().text("file_id", "missing").text("new_name", "x.txt");
    let (status, body) = detail(
        server
            .http
            .patch(server.url("/file/rename"))
            .multipart(form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::NOT_FOUND, "File not found."));
    let form = Form::new()
        .text("file_id", uploaded_ws.files[0].clone())
        .text("new_name", "../..");
    let (status, _) = detail(
        server
            .http
            .patch(server.url("/file/rename"))
            .multipart(form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn file_upload_errors_change_nothing() {
    let server = TestServer::start_with(|s| s.max_upload_bytes = 1024).await;
    let (user_id, workspace_id, chat_id) = server.user_with_chat("e@example.com").await;
    let stranger = server.login("x@example.com").await;
    let upload = |user: &str, target: &str, is_chat: &str, name: &str, size: usize| {
        Form::new()
            .text("user_id", user.to_owned())
            .text("target_id", target.to_owned())
            .text("is_chat", is_chat.to_owned())
            .part("files", file_part(name, &vec![b'a'; size]))
    };
    let cases = [
        (
            upload(&user_id, &chat_id, "true", "big.txt", 2048),
            StatusCode::PAYLOAD_TOO_LARGE,
            "limit",
        ),
        (
            upload(&user_id, "nope", "true", "a.txt", 1),
            StatusCode::NOT_FOUND,
            "Chat not found.",
        ),
        (
            upload(&user_id, "nope", "false", "a.txt", 1),
            StatusCode::NOT_FOUND,
            "Workspace not found.",
        ),
        (
            upload(&stranger.user_id, &chat_id, "true", "a.txt", 1),
            StatusCode::NOT_FOUND,
            "Chat not found.",
        ),
        (
            upload(&stranger.user_id, &workspace_id, "false", "a.txt", 1),
            StatusCode::NOT_FOUND,
            "Workspace not found.",
        ),
        (
            upload(&user_id, &chat_id, "maybe", "a.txt", 1),
            StatusCode::UNPROCESSABLE_ENTITY,
            "is_chat",
        ),
        (
            upload(&user_id, &chat_id, "true", "..", 1),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid file name",
        ),
        (
            Form::new()
                .text("user_id", user_id.clone())
                .text("target_id", chat_id.clone())
                .text("is_chat", "true"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "files",
        ),
    ];
    for (form, status, mentions) in cases {
        let (got, body) = detail(
            server
                .http
                .post(server.url("/file/upload"))
                .multipart(form)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(got, status, "{body}");
        assert!(body.contains(mentions), "{body}");
    }
    assert!(server.stored_uploads().await.is_empty());
    assert!(server.state.store.chat_files(&chat_id).await.unwrap().is_empty());
}

#[tokio::test]
async fn models_new_and_delete_never_return_the_key() {
    let server = TestServer::start().await;
    let login = server.login("m@example.com").await;
    let form = Form::new()
        .text("user_id", login.user_id.clone())
        .text("name", "Example Model")
        .text("ak", "your-api-key")
        .text("base_url", "http://api.example.com");
    let response = server
        .http
        .post(server.url("/models/new"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let raw = response.text().await.unwrap();
    assert!(!raw.contains("your-api-key"));
    let model: ModelInfo = serde_json::from_str(&raw).unwrap();
    let fields: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        fields.as_object().unwrap().len(),
        4,
        "id, name, base_url, user_id: {raw}"
    );
    assert_eq!(
        (model.name.as_str(), model.base_url.as_str()),
        ("Example Model", "http://api.example.com")
    );

    for (user, url, status) in [
        ("nobody", "http://api.example.com", StatusCode::NOT_FOUND),
        (login.user_id.as_str(), "ftp://x", StatusCode::UNPROCESSABLE_ENTITY),
        (login.user_id.as_str(), "not a url", StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let form = Form::new()
            .text("user_id", user.to_owned())
            .text("name", "m")
            .text("ak", "k-123-secret")
            .text("base_url", url.to_owned());
        let response = server
            .http
            .post(server.url("/models/new"))
            .multipart(form)
            .send()
            .await
            .unwrap();
        let got = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(got, status, "{body}");
        assert!(!body.contains("k-123-secret"));
    }
    assert_eq!(server.login("m@example.com").await.models.len(), 1);

    let (status, body) = detail(
        server
            .http
            .delete(server.url(&format!("/models/delete/{}", model.id)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "Model deleted successfully."));
    let (status, body) = detail(
        server
            .http
            .delete(server.url(&format!("/models/delete/{}", model.id)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::NOT_FOUND, "Model not found."));
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let server = TestServer::start_with(|s| {
        s.max_upload_bytes = 1024;
        s.max_body_bytes = 4096;
    })
    .await;
    let (user_id, _, chat_id) = server.user_with_chat("big@example.com").await;
    let form = Form::new()
        .text("user_id", user_id)
        .text("target_id", chat_id)
        .text("is_chat", "true")
        .part("files", file_part("a.txt", &[b'a'; 8192]));
    let (status, body) = detail(
        server
            .http
            .post(server.url("/file/upload"))
            .multipart(form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    let big_login = json!({"email": format!("{}@example.com", "a".repeat(100_000))});
    let response = server
        .http
        .post(server.url("/auth/login"))
        .json(&big_login)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

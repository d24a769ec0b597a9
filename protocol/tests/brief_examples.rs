//! Every JSON example of the brief deserializes into our types and serializes back to the
//! same JSON. Our additions (documented in the README) are the only extra fields allowed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a panic is the failure report"
)]

use kafka_protocol::rest::{
    ChatResponse, Detail, FileRenameResponse, FileUploadResponse, LoginRequest, LoginResponse, ModelInfo,
    WorkspaceNewResponse, WorkspaceRenameResponse,
};
use kafka_protocol::ws::{ClientAction, ConversationMessage, ErrorFrame, InitialPayload, ServerAction, ServerFrame};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Deserializes `example` as `T`, serializes it back, and checks that the result is the
/// example plus at most the fields named in `additions` (as dotted paths, `[]` for arrays).
fn round_trip<T: DeserializeOwned + Serialize>(example: Value, additions: &[&str]) {
    let typed: T = serde_json::from_value(example.clone()).unwrap_or_else(|e| panic!("{e}: {example}"));
    let mut back = serde_json::to_value(&typed).unwrap();
    for path in additions {
        remove_path(&mut back, &path.split('.').collect::<Vec<_>>());
    }
    assert_eq!(back, example);
}

fn remove_path(value: &mut Value, path: &[&str]) {
    match path {
        [] => {}
        [last] => {
            if let Some(object) = value.as_object_mut() {
                object.remove(*last);
            }
        }
        [head, rest @ ..] => {
            let (key, each) = match head.strip_suffix("[]") {
                Some(key) => (key, true),
                None => (*head, false),
            };
            let Some(child) = value.get_mut(key) else { return };
            if each {
                for item in child.as_array_mut().into_iter().flatten() {
                    remove_path(item, rest);
                }
            } else {
                remove_path(child, rest);
            }
        }
    }
}

#[test]
fn auth_login() {
    round_trip::<LoginRequest>(json!({"email": "someone@example.com"}), &[]);
    round_trip::<LoginResponse>(
        json!({
          "user_id": "some-uuid-string",
          "email": "someone@example.com",
          "workspaces": [{
              "id": "workspace-uuid-string",
              "name": "Default Workspace",
              "chats": [{"id": "chat-uuid-string", "name": "General Chat", "last_updated": "2025-03-20T11:00:00", "num_versions": 3}]
          }]
        }),
        &["models", "workspaces[].files"],
    );
}

#[test]
fn workspaces_chats_files_models() {
    round_trip::<WorkspaceNewResponse>(
        json!({"workspace_id": "workspace-uuid-string", "files": [
            {"file_id": "file-uuid-string", "filename": "document.pdf"},
            {"file_id": "another-file-uuid", "filename": "image.png"}]}),
        &[],
    );
    round_trip::<FileUploadResponse>(json!({"files": ["file-uuid-string-1", "file-uuid-string-2"]}), &[]);
    round_trip::<ChatResponse>(
        json!({"chat_id": "generated-chat-uuid-string", "name": "General Chat", "last_updated": "2025-03-20T11:00:00.123456"}),
        &[],
    );
    for detail in [
        "Chat deleted successfully.",
        "Chat not found.",
        "File deleted successfully.",
        "File not found.",
        "Workspace not found.",
        "Workspace and all associated data deleted successfully.",
        "Model deleted successfully.",
        "Model not found.",
    ] {
        round_trip::<Detail>(json!({ "detail": detail }), &[]);
    }
    round_trip::<FileRenameResponse>(
        json!({"file_id": "123e4567-e89b-12d3-a456-426614174000", "new_filename": "new_document.pdf",
               "new_path": "uploads/files/123e4567-e89b-12d3-a456-426614174000_new_document.pdf"}),
        &[],
    );
    round_trip::<WorkspaceRenameResponse>(
        json!({"workspace_id": "workspace-uuid-string", "new_name": "Renamed Workspace"}),
        &[],
    );
    round_trip::<ModelInfo>(
        json!({"id": "generated-model-uuid-string", "name": "Example Model", "base_url": "http://api.example.com",
               "user_id": "123e4567-e89b-12d3-a456-426614174000"}),
        &[],
    );
}

#[test]
fn websocket_client_actions() {
    round_trip::<ClientAction>(
        json!({"action": "upload_file", "filename": "example.pdf", "file_data": "aGVsbG8="}),
        &[],
    );
    round_trip::<ClientAction>(
        json!({"action": "new_message", "model": "gpt-4", "prompt": "Explain this PDF's content.",
               "is_first_prompt": false, "is_chat_or_composer": false, "selected_filename": null}),
        &[],
    );
    round_trip::<ClientAction>(
        json!({"action": "new_message", "model": "gpt-4", "prompt": "p", "is_first_prompt": true,
               "is_chat_or_composer": true, "selected_filename": "someFile.based"}),
        &[],
    );
    round_trip::<ClientAction>(
        json!({"action": "revert_version", "version_id": "abc123-uuid", "filename": "myCode.based"}),
        &[],
    );
    round_trip::<ClientAction>(json!({"action": "delete_file", "file_id": "some-file-id"}), &[]);
}

#[test]
fn websocket_server_frames() {
    round_trip::<ServerAction>(
        json!({"action": "file_uploaded", "message": {"role": "user", "type": "file", "content": {
            "file_id": "<UUID>", "filename": "example.pdf", "path": "uploads/files/<UUID>_example.pdf"}}}),
        &[],
    );
    round_trip::<ServerAction>(
        json!({"action": "revert_complete", "message": {"role": "assistant", "type": "file", "content": {
            "based_filename": "myCode.based", "based_content": "... the old content ...",
            "message": "Reverted to version abc123-uuid; new version is xyz456-uuid"}}}),
        &[],
    );
    round_trip::<ServerAction>(
        json!({"action": "file_deleted", "message": {"role": "system", "type": "file", "content": {
            "deleted_file_id": "some-file-id", "filename": "the-original-filename.ext"}}}),
        &["message.deleted_file_id"],
    );
    round_trip::<ErrorFrame>(json!({"error": "Unknown action: some_unhandled_action"}), &[]);
    round_trip::<ConversationMessage>(
        json!({"role": "assistant", "type": "text", "content": "Here is a summary of the PDF..."}),
        &[],
    );
    round_trip::<InitialPayload>(
        json!({
          "chat_id": "string",
          "conversation": [
            {"role": "user", "type": "text", "content": "hello"},
            {"role": "user", "type": "file", "content": {"file_id": "f", "filename": "a.txt", "path": "uploads/files/f_a.txt"}}
          ],
          "chat_files_text": [{"file_id": "string", "name": "example.txt", "content": "Content extracted from file", "type": "text"}],
          "chat_files_based": [{
              "file_id": "string", "name": "some_file.based", "latest_content": "Full .based file content",
              "versions": [{"version_id": "string", "timestamp": "2025-03-20T11:00:00", "diff": ""}],
              "type": "based"}],
          "workspace_files": [{"file_id": "string", "name": "some_workspace_file.txt"}],
          "workspace_id": "string",
          "models": ["model_a", "model_b"]
        }),
        &["chat_name", "initial"],
    );
}

#[test]
fn frames_are_classified() {
    assert!(matches!(ServerFrame::parse("Echo: hi"), ServerFrame::Text(t) if t == "Echo: hi"));
    assert!(matches!(ServerFrame::parse("{\"error\":\"x\"}"), ServerFrame::Error(_)));
    assert!(matches!(
        ServerFrame::parse("{\"event\":\"chat_deleted\"}"),
        ServerFrame::Event(_)
    ));
    assert!(matches!(
        ServerFrame::parse(
            "{\"action\":\"file_deleted\",\"message\":{\"role\":\"system\",\"type\":\"file\",\"content\":{\"deleted_file_id\":\"a\",\"filename\":\"b\"}}}"
        ),
        ServerFrame::Action(_)
    ));
    assert!(matches!(ServerFrame::parse("42"), ServerFrame::Text(_)));
    assert!(matches!(ServerFrame::parse("{\"other\":1}"), ServerFrame::Text(_)));
}

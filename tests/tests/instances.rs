//! Two server instances on one PostgreSQL database, as behind a load balancer: a client on
//! each sees what the other's client does, live and in one order; concurrent reverts from
//! both never share a version number; the agent slot of a chat is one across instances.
//!
//! Needs `KAFKA_TEST_DATABASE_URL` (`.ci/run` sets it); skipped, saying so, without it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a panic is the failure report"
)]

use std::collections::HashSet;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kafka_server::config::UploadStore;
use kafka_server::store::{DbBytes, FileKind, NewChatFile, NewFile};
use kafka_tests::fake_model::FakeModel;
use kafka_tests::{DATABASE_ENV, FRAME_WAIT, TestDatabase, TestServer, WsClient};
use reqwest::multipart::Form;
use serde_json::{Value, json};

const FLOW: &str = "loop:\n    r = talk(\"Ask the name.\", True)\nuntil \"name given\":\n    say(\"Thanks\")\n";

fn upload(filename: &str, bytes: &[u8]) -> Value {
    json!({"action": "upload_file", "filename": filename, "file_data": STANDARD.encode(bytes)})
}

/// Two instances sharing a fresh database, or `None` (with the reason printed).
async fn two_instances(test: &str) -> Option<(TestServer, TestServer)> {
    let Some(database) = TestDatabase::create().await else {
        eprintln!("{test}: skipped: {DATABASE_ENV} is not set (it names the PostgreSQL server to run on)");
        return None;
    };
    let a = TestServer::start_on(Some(Arc::clone(&database)), |_| {}).await;
    let b = TestServer::start_on(Some(database), |_| {}).await;
    Some((a, b))
}

async fn v2_client(server: &TestServer, chat_id: &str) -> WsClient {
    let mut ws = server.connect(chat_id, true).await;
    ws.recv_initial().await;
    ws
}

#[tokio::test]
async fn clients_on_two_instances_see_each_other_live() {
    let Some((a, b)) = two_instances("clients_on_two_instances_see_each_other_live").await else {
        return;
    };
    let (_, _, chat_id) = a.user_with_chat("two@example.com").await;
    let mut on_a = v2_client(&a, &chat_id).await;
    let mut on_b = v2_client(&b, &chat_id).await;

    on_b.send_text("hello from b").await;
    assert_eq!(on_b.recv_text().await, "Echo: hello from b");
    let first = on_a.recv_event("message_added").await;
    assert_eq!(first["message"]["content"], "hello from b");
    let second = on_a.recv_event("message_added").await;
    assert_eq!(second["message"]["content"], "Echo: hello from b");
    assert_eq!((first["seq"].as_i64(), second["seq"].as_i64()), (Some(1), Some(2)));

    // Far beyond NOTIFY's 8000 bytes: travels by reference.
    let big = "x".repeat(50_000);
    on_a.send_json(&upload("big.txt", big.as_bytes())).await;
    assert_eq!(on_a.recv_json().await["action"], "file_uploaded");
    let event = on_b.recv_event("text_file_added").await;
    assert_eq!(event["file"]["name"], "big.txt");
    assert_eq!(event["file"]["content"].as_str().map(str::len), Some(big.len()));

    let form = reqwest::multipart::Form::new()
        .text("chat_id", chat_id.clone())
        .text("new_name", "Renamed on B");
    let response = b
        .http
        .patch(b.url("/chat/rename"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(on_a.recv_event("chat_renamed").await["name"], "Renamed on B");

    // Deleting the chat through A closes the socket held by B.
    let response = a.http.delete(a.url(&format!("/chat/{chat_id}"))).send().await.unwrap();
    assert_eq!(response.status(), 200);
    on_b.recv_event("chat_deleted").await;
    assert!(on_b.closed_within(FRAME_WAIT).await, "B's client stays open");
}

#[tokio::test]
async fn concurrent_reverts_on_two_instances_number_versions_once_and_in_one_order() {
    let Some((a, b)) = two_instances("concurrent_reverts_on_two_instances_number_versions_once_and_in_one_order").await
    else {
        return;
    };
    let (_, _, chat_id) = a.user_with_chat("reverts@example.com").await;
    let mut on_a = v2_client(&a, &chat_id).await;
    let mut on_b = v2_client(&b, &chat_id).await;
    on_a.send_json(&upload("flow.based", FLOW.as_bytes())).await;
    assert_eq!(on_a.recv_json().await["action"], "file_uploaded");
    let version_1 = a.state.store.chat_versions(&chat_id).await.unwrap()[0].id.clone();

    const EACH: usize = 15;
    let revert = json!({"action": "revert_version", "version_id": version_1, "filename": "flow.based"});
    // Every frame is sent before any reply is read: both instances write at once, versions
    // and plain conversation entries (echoes) alike.
    for i in 0..EACH {
        on_a.send_json(&revert).await;
        on_b.send_json(&revert).await;
        on_a.send_text(&format!("a{i}")).await;
        on_b.send_text(&format!("b{i}")).await;
    }
    let (seen_a, seen_b) = tokio::join!(
        versions_seen(&mut on_a, EACH, 2 * EACH),
        versions_seen(&mut on_b, EACH, 2 * EACH)
    );
    assert_eq!(seen_a, seen_b, "both clients see the new versions in the same order");

    let versions = b.state.store.chat_versions(&chat_id).await.unwrap();
    let numbers: Vec<i64> = versions.iter().map(|v| v.seq).collect();
    let expected: Vec<i64> = (1..=(2 * EACH as i64 + 1)).collect();
    assert_eq!(numbers, expected, "version numbers are unique and gapless");
    let ids: HashSet<&String> = versions.iter().map(|v| &v.id).collect();
    assert!(seen_a.iter().all(|id| ids.contains(id)));
    let conversation = a.state.store.conversation(&chat_id).await.unwrap();
    let seqs: Vec<i64> = conversation.iter().map(|m| m.seq).collect();
    // The upload, each revert's entry and each echo's two.
    assert_eq!(seqs, (1..=(1 + 6 * EACH as i64)).collect::<Vec<_>>());
}

/// Reads until `replies` revert replies and as many echoes, and `events` version events have
/// come; fails on an error frame. Returns the version ids, in the order the events came.
async fn versions_seen(ws: &mut WsClient, replies: usize, events: usize) -> Vec<String> {
    let (mut reverted, mut echoed, mut seen) = (0, 0, Vec::new());
    while reverted < replies || echoed < replies || seen.len() < events {
        let text = ws.recv_text().await;
        if text.starts_with("Echo: ") {
            echoed += 1;
            continue;
        }
        let frame: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
        assert!(frame.get("error").is_none(), "a write failed: {frame}");
        if frame["action"] == "revert_complete" {
            reverted += 1;
        } else if frame["event"] == "version_added" {
            seen.push(frame["version_id"].as_str().unwrap().to_owned());
        }
    }
    seen
}

#[tokio::test]
async fn one_agent_run_per_chat_across_instances() {
    let Some((a, b)) = two_instances("one_agent_run_per_chat_across_instances").await else {
        return;
    };
    let (_, _, chat_id) = a.user_with_chat("runs@example.com").await;

    let run = a
        .state
        .hub
        .start_agent_run(&chat_id)
        .await
        .unwrap()
        .expect("A claims the run");
    assert!(
        b.state.hub.start_agent_run(&chat_id).await.unwrap().is_none(),
        "B is refused"
    );
    assert!(
        a.state.hub.start_agent_run(&chat_id).await.unwrap().is_none(),
        "A is refused twice"
    );

    // A cancel sent to B reaches the run on A.
    assert!(b.state.hub.cancel_agent_run(&chat_id).await.unwrap());
    tokio::time::timeout(FRAME_WAIT, run.cancelled())
        .await
        .expect("the run on A is cancelled");

    a.state.hub.finish_agent_run(&chat_id).await;
    let again = b.state.hub.start_agent_run(&chat_id).await.unwrap();
    assert!(again.is_some(), "B claims the run once A is done");
    assert!(!a.state.hub.cancel_agent_run("no-such-chat").await.unwrap());
}

#[tokio::test]
async fn a_logout_on_one_instance_closes_the_sockets_of_that_token_on_the_other() {
    let test = "a_logout_on_one_instance_closes_the_sockets_of_that_token_on_the_other";
    let Some((a, b)) = two_instances(test).await else {
        return;
    };
    let (_, _, chat_id) = a.user_with_chat("leaving@example.com").await;
    let token = a.login("leaving@example.com").await.token.expect("a token");
    let mut on_b = WsClient::connect(&format!("{}?token={token}", b.ws_url(&chat_id))).await;
    on_b.recv_initial().await;

    let response = a
        .http
        .post(a.url("/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let frame: Value = serde_json::from_str(&on_b.recv_text().await).unwrap();
    assert_eq!(frame["error"], kafka_server::hub::LOGGED_OUT);
    assert!(on_b.closed_within(FRAME_WAIT).await, "B's client stays open");
}

/// `GET /file/{id}/content` through `server`: the status, the bytes and the file name the
/// answer gives.
async fn read_content(server: &TestServer, file_id: &str) -> (u16, Vec<u8>, String) {
    let response = server
        .http
        .get(server.url(&format!("/file/{file_id}/content")))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let disposition = response
        .headers()
        .get("content-disposition")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, response.bytes().await.unwrap().to_vec(), disposition)
}

/// Bytes that no compression shortens much and that span several stored chunks.
fn spanning_chunks() -> Vec<u8> {
    let len = 2 * kafka_server::store::CHUNK_BYTES + 12_345;
    let mut state = 0x2545_f491_u32;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

#[tokio::test]
async fn an_upload_through_a_is_read_listed_renamed_given_to_the_agent_and_deleted_through_b() {
    let test = "an_upload_through_a_is_read_listed_renamed_given_to_the_agent_and_deleted_through_b";
    let Some((a, b)) = two_instances(test).await else {
        return;
    };
    let (user_id, workspace_id, chat_id) = a.user_with_chat("bytes@example.com").await;
    let notes = b"Field notes: the marker is OCELOT-7.".to_vec();
    let blob = spanning_chunks();
    let pdf = kafka_tests::pdf::readable_pdf();
    let files: [(&str, &[u8]); 3] = [("notes.txt", &notes), ("blob.bin", &blob), ("doc.pdf", &pdf)];
    let response = a.upload(&chat_id, true, &files).await;
    assert_eq!(response.status(), 200);
    let ids: Vec<String> = response.json::<Value>().await.unwrap()["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_owned())
        .collect();

    // B serves the bytes A received, byte for byte.
    for (id, (name, bytes)) in ids.iter().zip(files) {
        let (status, read, disposition) = read_content(&b, id).await;
        assert_eq!((status, read.len()), (200, bytes.len()), "{name}");
        assert!(read == bytes, "{name}: other bytes");
        assert!(disposition.ends_with(name), "{disposition}");
    }

    // B lists them with the text A extracted (the PDF's read by A's child process).
    let mut on_b = b.connect(&chat_id, true).await;
    let initial = on_b.recv_initial().await;
    let text_of = |name: &str| {
        initial
            .chat_files_text
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.content.clone())
    };
    assert_eq!(
        text_of("notes.txt").as_deref(),
        Some("Field notes: the marker is OCELOT-7.")
    );
    assert!(text_of("doc.pdf").unwrap_or_default().contains("Hello from a PDF"));
    assert_eq!(initial.workspace_files.len(), 3);

    // Renamed through B, read through A under the new name.
    let form = Form::new()
        .text("file_id", ids[1].clone())
        .text("new_name", "renamed.bin");
    let response = b
        .http
        .patch(b.url("/file/rename"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let renamed: Value = response.json().await.unwrap();
    assert_eq!(renamed["new_path"], format!("uploads/files/{}_renamed.bin", ids[1]));
    let (status, read, disposition) = read_content(&a, &ids[1]).await;
    assert_eq!((status, read == blob), (200, true));
    assert!(disposition.ends_with("renamed.bin"), "{disposition}");

    // The agent run on B is given the text of the files uploaded through A.
    let fake = FakeModel::start().await;
    b.add_model(&user_id, "fake-model", "sk-test", &fake.base_url()).await;
    fake.push_json(json!({"text": "They mention an ocelot."}));
    on_b.send_json(
        &json!({"action": "new_message", "model": "fake-model", "prompt": "What do my files say?",
        "is_first_prompt": false, "is_chat_or_composer": false, "selected_filename": null}),
    )
    .await;
    loop {
        let text = on_b.recv_text().await;
        if !serde_json::from_str::<Value>(&text).is_ok_and(|v| v.get("event").is_some()) {
            assert_eq!(text, "They mention an ocelot.");
            break;
        }
    }
    let asked: String = fake.requests().iter().map(|r| r.body.to_string()).collect();
    assert!(asked.contains("OCELOT-7"), "the notes reach the model");
    assert!(asked.contains("Hello from a PDF"), "the PDF's text reaches the model");

    // Deleted through B (REST and WebSocket): gone for A, no bytes anywhere.
    let response = b
        .http
        .delete(b.url(&format!("/file/delete/{}", ids[1])))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    on_b.send_json(&json!({"action": "delete_file", "file_id": ids[0]}))
        .await;
    loop {
        let frame: Value = serde_json::from_str(&on_b.recv_text().await).unwrap();
        assert!(frame.get("error").is_none(), "{frame}");
        if frame["action"] == "file_deleted" {
            break;
        }
    }
    for id in &ids[..2] {
        let (status, _, _) = read_content(&a, id).await;
        assert_eq!(status, 404);
    }
    let stored = a.stored_uploads().await;
    assert_eq!(stored, [format!("{}_doc.pdf", ids[2])], "only the PDF's bytes are left");
    let response = a.http.delete(a.url(&format!("/chat/{chat_id}"))).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let response = b
        .http
        .delete(b.url(&format!("/workspace/delete/{workspace_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(a.stored_uploads().await.is_empty());
    assert!(b.stored_uploads().await.is_empty());
    // Neither instance wrote to its data directory.
    for server in [&a, &b] {
        assert!(!server.data_dir.path().join("uploads").exists());
    }
}

#[tokio::test]
async fn a_failed_upload_leaves_no_rows_and_no_bytes() {
    let Some(database) = TestDatabase::create().await else {
        eprintln!("a_failed_upload_leaves_no_rows_and_no_bytes: skipped: {DATABASE_ENV} is not set");
        return;
    };
    let a = TestServer::start_on(Some(database), |s| s.max_upload_bytes = 1024 * 1024).await;
    let (_, workspace_id, chat_id) = a.user_with_chat("capped@example.com").await;

    // The second file passes the cap while the body is read: the whole upload is refused.
    let small = b"fits".to_vec();
    let big = vec![7u8; 1024 * 1024 + 1];
    let response = a
        .upload(&chat_id, true, &[("small.txt", &small), ("big.bin", &big)])
        .await;
    assert_eq!(response.status(), 413);
    let frame = json!({"action": "upload_file", "filename": "big.bin", "file_data": STANDARD.encode(&big)});
    let mut ws = a.connect(&chat_id, false).await;
    ws.recv_json().await;
    ws.send_json(&frame).await;
    assert!(ws.recv_json().await["error"].as_str().unwrap().contains("larger than"));
    assert!(a.state.store.workspace_files(&workspace_id).await.unwrap().is_empty());
    assert!(a.state.store.chat_files(&chat_id).await.unwrap().is_empty());
    assert!(a.stored_uploads().await.is_empty());

    // A failure inside the recording transaction takes the bytes written before it along:
    // the second file reuses the first one's ID, so its row cannot be written.
    let chat = a.state.store.chat(&chat_id).await.unwrap();
    let file = |name: &str| NewChatFile {
        file: NewFile {
            id: "same-id".into(),
            filename: name.into(),
            path: format!("uploads/files/same-id_{name}"),
            size: spanning_chunks().len() as u64,
            db_bytes: Some(DbBytes(spanning_chunks().into())),
        },
        kind: FileKind::Binary,
        extracted_text: None,
    };
    let failed = a
        .state
        .store
        .add_chat_files(&chat, &[(file("one.bin"), None), (file("two.bin"), None)])
        .await;
    assert!(failed.is_err());
    assert!(a.state.store.workspace_files(&workspace_id).await.unwrap().is_empty());
    assert!(
        a.stored_uploads().await.is_empty(),
        "the first file's chunks were rolled back"
    );
}

/// Runs `kafka-server uploads ARGS` on `data_dir` and the database at `url` (SQLite in the
/// data directory when `None`); returns whether it succeeded and what it printed.
fn uploads_command(data_dir: &std::path::Path, url: Option<&str>, args: &[&str]) -> (bool, String) {
    let mut command = std::process::Command::new(kafka_tests::test_server_binary());
    command.arg("--data-dir").arg(data_dir);
    if let Some(url) = url {
        command.args(["--database-url", url]);
    }
    let output = command
        .arg("uploads")
        .args(args)
        .output()
        .expect("run kafka-test-server");
    let printed = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), printed)
}

#[tokio::test]
async fn existing_uploads_move_into_the_database_and_back_resumably() {
    let Some(database) = TestDatabase::create().await else {
        eprintln!("existing_uploads_move_into_the_database_and_back_resumably: skipped: {DATABASE_ENV} is not set");
        return;
    };
    // A keeps its uploads in its data directory, as a deployment from before; B, in the
    // database, has a data directory of its own.
    let dir_mode = |s: &mut kafka_server::config::Settings| s.upload_store = Some(UploadStore::Dir);
    let a = TestServer::start_on(Some(Arc::clone(&database)), dir_mode).await;
    let b = TestServer::start_on(Some(Arc::clone(&database)), |_| {}).await;
    let (_, _, chat_id) = a.user_with_chat("moving@example.com").await;
    let (notes, blob) = (b"moving notes".to_vec(), spanning_chunks());
    let response = a
        .upload(&chat_id, true, &[("notes.txt", &notes), ("blob.bin", &blob)])
        .await;
    assert_eq!(response.status(), 200);
    let ids: Vec<String> = serde_json::from_value(response.json::<Value>().await.unwrap()["files"].clone()).unwrap();
    let on_disk = kafka_tests::files_in(&a.data_dir.path().join("uploads/files"));
    assert_eq!(on_disk.len(), 2);
    assert!(database.uploads_in_database().await.is_empty());
    assert_eq!(read_content(&b, &ids[1]).await.0, 404, "B cannot reach A's disk");

    let (dir, url) = (a.data_dir.path(), Some(database.url.as_str()));
    let total = notes.len() + blob.len();
    let (ok, printed) = uploads_command(dir, url, &["to-db"]);
    assert!(ok, "{printed}");
    assert!(
        printed.contains(&format!("moved 2 file(s), {total} byte(s); 0 already there")),
        "{printed}"
    );
    for (id, bytes) in ids.iter().zip([&notes, &blob]) {
        let (status, read, _) = read_content(&b, id).await;
        assert_eq!((status, &read == bytes), (200, true));
    }

    // An interrupted run (here: one file's bytes missing again) is finished by the next.
    a.state.store.delete_upload_bytes(&ids[1]).await.unwrap();
    let (ok, printed) = uploads_command(dir, url, &["to-db"]);
    assert!(
        ok && printed.contains(&format!("moved 1 file(s), {} byte(s); 1 already there", blob.len())),
        "{printed}"
    );
    let (ok, printed) = uploads_command(dir, url, &["to-db", "--remove-source"]);
    assert!(
        ok && printed.contains("moved 0 file(s), 0 byte(s); 2 already there"),
        "{printed}"
    );
    assert!(printed.contains("2 source copies removed"), "{printed}");
    assert!(kafka_tests::files_in(&a.data_dir.path().join("uploads/files")).is_empty());
    assert_eq!(database.uploads_in_database().await, on_disk);
    assert_eq!(read_content(&b, &ids[1]).await.1, blob);

    // And back: into A's data directory, which then serves them in the dir mode again.
    let (ok, printed) = uploads_command(dir, url, &["to-dir"]);
    assert!(
        ok && printed.contains(&format!("moved 2 file(s), {total} byte(s); 0 already there")),
        "{printed}"
    );
    assert_eq!(kafka_tests::files_in(&a.data_dir.path().join("uploads/files")), on_disk);
    std::fs::remove_file(a.data_dir.path().join("uploads/files").join(&on_disk[0])).unwrap();
    let (ok, printed) = uploads_command(dir, url, &["to-dir", "--remove-source"]);
    assert!(
        ok && printed.contains("moved 1 file(s)") && printed.contains("1 already there"),
        "{printed}"
    );
    assert!(printed.contains("2 source copies removed"), "{printed}");
    assert!(database.uploads_in_database().await.is_empty());
    for (id, bytes) in ids.iter().zip([&notes, &blob]) {
        let (status, read, _) = read_content(&a, id).await;
        assert_eq!((status, &read == bytes), (200, true));
    }
    let (ok, printed) = uploads_command(dir, url, &["to-dir"]);
    assert!(
        ok && printed.contains("moved 0 file(s), 0 byte(s); 2 already there"),
        "{printed}"
    );
}

#[tokio::test]
async fn on_sqlite_uploaded_bytes_stay_in_the_data_directory() {
    let data_dir = tempfile::tempdir().unwrap();
    let (ok, printed) = uploads_command(data_dir.path(), None, &["to-db"]);
    assert!(!ok && printed.contains("only on PostgreSQL"), "{printed}");
    let mut settings = kafka_server::config::Settings::for_data_dir(data_dir.path());
    settings.upload_store = Some(UploadStore::Db);
    let Err(refused) = kafka_server::open_state(settings).await else {
        panic!("--upload-store db on SQLite was accepted");
    };
    assert!(refused.to_string().contains("needs PostgreSQL"), "{refused}");
}

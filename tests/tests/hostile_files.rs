//! Hostile uploads against the real server: PDFs that crash, hang or bloat a parser are read
//! in a child process with limits; the upload succeeds without text and the server stays up.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a panic is the failure report"
)]

use std::io::Write;
use std::time::{Duration, Instant};

use base64::Engine;
use kafka_tests::TestServer;
use kafka_tests::pdf::{CATALOG, pdf, readable_pdf, stream, text};
use reqwest::multipart::{Form, Part};
use serde_json::json;

/// A form XObject that draws itself: a parser that follows it recurses until its stack ends.
fn self_drawing_form_pdf() -> Vec<u8> {
    pdf(&[
        text(CATALOG),
        text("<< /Type /Pages /Kids [3 0 R] /Count 1 >>"),
        text(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /X1 4 0 R >> >> /Contents 5 0 R >>",
        ),
        stream(
            "/Type /XObject /Subtype /Form /BBox [0 0 10 10] /Resources << /XObject << /X1 4 0 R >> >>",
            b"/X1 Do",
        ),
        stream("", b"/X1 Do"),
    ])
}

/// A page tree node that is its own parent, above a page that inherits its media box: a
/// parser that climbs the tree for it never ends (a loop in an optimized build, a stack
/// overflow in another).
fn page_tree_loop_pdf() -> Vec<u8> {
    pdf(&[
        text(CATALOG),
        text("<< /Type /Pages /Kids [3 0 R] /Count 1 /Parent 2 0 R >>"),
        text("<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>"),
        stream("", b"BT ET"),
    ])
}

/// Content streams that inflate to `copies` × 64 MiB of zeros (a few hundred KiB on the wire).
fn decompression_bomb_pdf(copies: usize) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let chunk = vec![0u8; 1024 * 1024];
    for _ in 0..64 {
        encoder.write_all(&chunk).unwrap();
    }
    let bomb = encoder.finish().unwrap();
    let streams: Vec<String> = (0..copies).map(|i| format!("{} 0 R", i + 5)).collect();
    let mut bodies = vec![
        text(CATALOG),
        text("<< /Type /Pages /Kids [3 0 R] /Count 1 >>"),
        text(&format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >> /Contents [{}] >>",
            streams.join(" ")
        )),
        text("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"),
    ];
    for _ in 0..copies {
        bodies.push(stream("/Filter /FlateDecode", &bomb));
    }
    pdf(&bodies)
}

/// Uploads `bytes` as `name` to the chat over REST; returns the file's extracted text.
async fn upload_to_chat(server: &TestServer, chat_id: &str, name: &str, bytes: Vec<u8>) -> Option<String> {
    let form = Form::new()
        .text("target_id", chat_id.to_owned())
        .text("is_chat", "true")
        .part("files", Part::bytes(bytes).file_name(name.to_owned()));
    let response = server
        .http
        .post(server.url("/file/upload"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "upload of {name}");
    let files = server.state.store.chat_files(chat_id).await.unwrap();
    let file = files.iter().find(|f| f.filename == name).expect("the file is recorded");
    file.extracted_text.clone()
}

/// Reader children of this process that are still alive.
fn live_readers() -> usize {
    live_children("__kafka-extract-pdf")
}

/// Children of this process whose command line contains `marker`, still alive.
fn live_children(marker: &str) -> usize {
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| {
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            // Field 4 of /proc/PID/stat (after the parenthesized name) is the parent's PID.
            let parent = stat.rsplit_once(") ").and_then(|(_, rest)| rest.split(' ').nth(1));
            let zombie = stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z'));
            parent == Some(me.as_str()) && !zombie && String::from_utf8_lossy(&cmdline).contains(marker)
        })
        .count()
}

async fn healthy(server: &TestServer) -> bool {
    let response = server
        .http
        .get(server.url("/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    response.is_ok_and(|r| r.status() == 200)
}

#[tokio::test]
async fn a_readable_pdf_is_read_in_a_child_process() {
    let server = TestServer::start().await;
    let (_, _, chat_id) = server.user_with_chat("pdf@example.com").await;
    let text = upload_to_chat(&server, &chat_id, "hello.pdf", readable_pdf()).await;
    assert!(
        text.as_deref().is_some_and(|t| t.contains("Hello from a PDF")),
        "extracted: {text:?}"
    );
}

#[tokio::test]
async fn hostile_pdfs_end_their_reader_not_the_server() {
    // Short bounds keep the test quick; the defaults are larger.
    let server = TestServer::start_with(|s| {
        s.extract_limits.wall = Duration::from_secs(4);
        s.extract_limits.cpu_secs = 3;
        s.extract_limits.memory_bytes = 512 * 1024 * 1024;
    })
    .await;
    let (_, _, chat_id) = server.user_with_chat("hostile@example.com").await;
    let hostile = [
        ("self-drawing.pdf", self_drawing_form_pdf()),
        ("page-loop.pdf", page_tree_loop_pdf()),
        ("bomb.pdf", decompression_bomb_pdf(16)),
    ];
    for (name, bytes) in hostile {
        let started = Instant::now();
        let text = upload_to_chat(&server, &chat_id, name, bytes).await;
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{name} took {:?}",
            started.elapsed()
        );
        // Each of these ends its reader today (stack, CPU or memory); the upload is kept with a
        // note, and the server is still serving.
        let text = text.unwrap_or_default();
        assert!(
            text.starts_with(&format!("[The text of {name} could not be read: ")),
            "{name}: {text}"
        );
        assert!(healthy(&server).await, "the server is up after {name}");
    }
    assert_eq!(live_readers(), 0, "no reader outlives its upload");

    // Over the WebSocket too, several at once: each upload is answered.
    let mut ws = server.connect(&chat_id, false).await;
    ws.recv_json().await;
    for i in 0..3 {
        let data = base64::engine::general_purpose::STANDARD.encode(self_drawing_form_pdf());
        ws.send_json(&json!({"action": "upload_file", "filename": format!("ws-{i}.pdf"), "file_data": data}))
            .await;
    }
    for _ in 0..3 {
        assert_eq!(ws.recv_json().await["action"], "file_uploaded");
    }
    assert!(healthy(&server).await);
    assert_eq!(live_readers(), 0);
}

#[tokio::test]
async fn a_reader_that_fails_leaves_a_note_and_the_upload() {
    // A reader program that is no Kafka binary: its answer is not one.
    let server = TestServer::start_with(|s| s.extract_limits.program = Some("/bin/true".into())).await;
    let (_, _, chat_id) = server.user_with_chat("note@example.com").await;
    let text = upload_to_chat(&server, &chat_id, "doc.pdf", readable_pdf()).await;
    let text = text.expect("a note");
    assert!(text.starts_with("[The text of doc.pdf could not be read:"), "{text}");
}

#[tokio::test]
async fn shutdown_stops_a_running_reader_at_once() {
    // A reader that would run for a minute, under a name of its own (other tests' readers run
    // beside it).
    let dir = tempfile::tempdir().unwrap();
    let reader = dir.path().join("slow-reader");
    std::fs::write(&reader, "#!/bin/bash\nexec -a __kafka-slow-reader sleep 60\n").unwrap();
    std::fs::set_permissions(&reader, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut settings = kafka_server::config::Settings::for_data_dir(dir.path().join("data"));
    settings.extract_limits.program = Some(reader);
    settings.extract_limits.wall = Duration::from_secs(120);
    let database = kafka_tests::TestDatabase::create().await;
    if let Some(database) = &database {
        settings.database_url = database.url.clone();
    }
    let state = kafka_server::open_state(settings).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(kafka_server::serve(listener, state.clone(), async {
        let _ = stopped.await;
    }));

    let user = state.store.login("slow@example.com").await.unwrap();
    let workspace_id = state.store.user_overview(&user).await.unwrap().workspaces[0].id.clone();
    let chat = state.store.create_chat(&user, &workspace_id, "Slow").await.unwrap();
    let form = Form::new()
        .text("target_id", chat.id.clone())
        .text("is_chat", "true")
        .part("files", Part::bytes(readable_pdf()).file_name("slow.pdf"));
    let upload = tokio::spawn(
        reqwest::Client::new()
            .post(format!("{base}/file/upload"))
            .multipart(form)
            .send(),
    );
    let started = Instant::now();
    while live_children("__kafka-slow-reader") == 0 {
        assert!(started.elapsed() < Duration::from_secs(10), "the reader never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // What SIGTERM does in `kafka-server`: the shutdown future completes.
    let _ = stop.send(());
    let stopping = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), serving)
        .await
        .expect("the server stops within seconds, not at the reader's deadline")
        .unwrap();
    assert!(stopping.elapsed() < Duration::from_secs(5));
    assert_eq!(live_children("__kafka-slow-reader"), 0, "the reader was killed");
    // The upload in flight was answered and kept, with a note instead of text.
    let response = upload.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    let files = state.store.chat_files(&chat.id).await.unwrap();
    let text = files[0].extracted_text.clone().unwrap_or_default();
    assert_eq!(
        text,
        "[The text of slow.pdf could not be read: the server was shutting down.]"
    );
}

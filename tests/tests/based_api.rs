//! The validator's two faces: `POST /based/validate` and `kafka-server check FILE…`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a panic is the failure report"
)]

use std::process::Command;

use kafka_protocol::rest::ValidateResponse;
use kafka_tests::TestServer;
use serde_json::json;

const VALID: &str = r#"say("Hi, I book table reservations.", exact=True)
loop:
    booking = talk("Ask for the party size and the time. Exit once both are known.", True)
until "user gave party size and time":
    details = booking.ask(question="Return party size and time.", example={"size": 2, "time": "19:30"})
    say(f"Booked for {details['size']} at {details['time']}.", exact=True)
until "user wants to cancel":
    return
"#;

const INVALID: &str = r#"loop:
    booking = talk("Ask for the party size.", True)
    say("thanks")
until "user gave party size":
    return
"#;

#[tokio::test]
async fn validate_endpoint_answers_in_the_original_shape() {
    let server = TestServer::start().await;
    let url = server.url("/based/validate");
    let ok: serde_json::Value = server
        .http
        .post(&url)
        .json(&json!({"code": VALID}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ok, json!({"status": "success"}));

    let response: ValidateResponse = server
        .http
        .post(&url)
        .json(&json!({"code": INVALID}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(response.status, "error");
    let first = &response.diagnostics[0];
    assert_eq!(
        (first.line, first.column, first.code.as_str(), first.severity.as_str()),
        (3, 5, "R1", "error")
    );
    assert!(response.error.unwrap().starts_with("line 3, column 5: "));

    let warnings_only: ValidateResponse = server
        .http
        .post(&url)
        .json(&json!({"code": "x = talk(\"hi\", True)\n"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(warnings_only.status, "success");
    assert_eq!(warnings_only.diagnostics[0].severity, "warning");

    let bad = server
        .http
        .post(&url)
        .json(&json!({"source": VALID}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
}

#[test]
fn check_command_prints_diagnostics_and_sets_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let valid = dir.path().join("valid.based");
    let invalid = dir.path().join("invalid.based");
    std::fs::write(&valid, VALID).unwrap();
    std::fs::write(&invalid, INVALID).unwrap();
    let binary = env!("CARGO_BIN_EXE_kafka-test-server");

    let ok = Command::new(binary).arg("check").arg(&valid).output().unwrap();
    assert!(ok.status.success());
    assert!(ok.stdout.is_empty());

    let failed = Command::new(binary)
        .arg("check")
        .arg(&valid)
        .arg(&invalid)
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(1));
    let out = String::from_utf8(failed.stdout).unwrap();
    let first_line = out.lines().next().unwrap();
    assert!(
        first_line.starts_with(&format!("{}:3:5: error[R1]: ", invalid.display())),
        "{out}"
    );
    assert!(out.contains("^"), "a caret snippet: {out}");

    let missing = Command::new(binary)
        .arg("check")
        .arg(dir.path().join("nope.based"))
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
}

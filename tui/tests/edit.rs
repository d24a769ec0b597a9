//! Issue 22 in the terminal UI, against the real server: `e` runs a real editor process (a
//! script standing in for `$EDITOR`) on the selected `.based` file and saves what it left as
//! the user's version, with its diagnostics under the lines in the code pane; a conflict with
//! another client's version offers to save anyway or reload; `w` writes the file to a path.
//!
//! The terminal handover itself (leaving the alternate screen and raw mode around the
//! editor) is in `terminal.rs`, which needs a real terminal; these tests drive the same
//! `Driver` calls that loop makes (`take_pending_edit`, `run_edit`) without one.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a panic is the failure report"
)]

// Each test binary uses a part of the harness.
#[allow(dead_code)]
mod common;

use std::path::Path;

use common::Harness;
use crossterm::event::KeyCode;
use kafka_tests::TestServer;
use kafka_tui::app::{Connection, Popup, Screen};
use serde_json::json;

const VALID: &str = "say(\"Hi, I book tables.\", exact=True)\nloop:\n    booking = talk(\"Ask for the party size.\", True)\nuntil \"user gave party size\":\n    say(\"Booked.\", exact=True)\n";

fn script(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    let status = std::process::Command::new("chmod")
        .arg("+x")
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    path.display().to_string()
}

fn latest(ui: &Harness) -> (usize, String) {
    let file = &ui.app().chat.as_ref().unwrap().based_files[0];
    (file.versions.len(), file.latest_content.clone())
}

/// Presses `e` and runs the editor the way the terminal loop does.
async fn edit_with(ui: &mut Harness, editor: &str) {
    ui.driver.editor = Some(editor.to_owned());
    ui.char('e');
    let request = ui.driver.take_pending_edit().expect("e asks for the editor");
    ui.driver.run_edit(request).await;
}

#[tokio::test]
async fn e_edits_in_the_users_editor_and_w_writes_the_file() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut ui = Harness::new(&server.base, 120, 40);
    let first = ui.driver.app.start(Some("editor@example.com".into()), None);
    ui.driver.execute(first);
    ui.wait_for("the browser", |app| app.screen == Screen::Browser).await;
    ui.char('n');
    ui.press(KeyCode::Enter);
    ui.wait_for("the chat", |app| {
        app.connection == Connection::Connected && app.chat.as_ref().is_some_and(|c| c.loaded)
    })
    .await;

    // A .based file to work on, uploaded from a path.
    std::fs::write(dir.path().join("booking.based"), VALID).unwrap();
    ui.press(KeyCode::Esc);
    ui.char('u');
    ui.type_text(&format!("{}/booking.based", dir.path().display()));
    ui.press(KeyCode::Enter);
    ui.wait_for("the upload", |app| {
        app.chat.as_ref().unwrap().selected_based().is_some()
    })
    .await;
    let chat_id = ui.app().chat.as_ref().unwrap().chat_id.clone();
    let file_id = ui.app().chat.as_ref().unwrap().based_files[0].file_id.clone();

    // The help and the footer name the key.
    ui.char('?');
    assert!(ui.screen().contains("edit the file in $EDITOR"));
    ui.press(KeyCode::Esc);

    // An editor that changes a line: saved as the user's version, valid.
    let asks_time = script(
        dir.path(),
        "asks-time.sh",
        "sed -i 's/party size\\./party size and time./' \"$1\"",
    );
    edit_with(&mut ui, &asks_time).await;
    ui.wait_for("the user's version, validated", |app| {
        let chat = app.chat.as_ref().unwrap();
        chat.based_files[0].versions.len() == 2 && chat.shown_diagnostics().is_some()
    })
    .await;
    let edited = VALID.replace("party size.", "party size and time.");
    assert_eq!(latest(&ui).1, edited);
    assert_eq!(
        server.state.store.latest_version(&file_id).await.unwrap().content,
        edited
    );
    let entry = server.state.store.conversation(&chat_id).await.unwrap().pop().unwrap();
    assert_eq!(
        (entry.role.as_str(), entry.content["edited_by_user"].as_bool()),
        ("user", Some(true))
    );
    let screen = ui.screen();
    assert!(screen.contains("v2 · 5 lines · valid"), "{screen}");
    assert!(screen.contains("Saved your version of booking.based"), "{screen}");
    assert!(screen.contains("party size and time"), "{screen}");

    // An editor that leaves it as it was: nothing saved.
    edit_with(&mut ui, "true").await;
    assert_eq!(
        ui.app().notice.as_deref(),
        Some("booking.based unchanged; nothing saved.")
    );
    assert_eq!(latest(&ui).0, 2);

    // Invalid Based is saved, with the error under its line: line and caret.
    let breaks = script(
        dir.path(),
        "breaks.sh",
        "printf 'say(\"Hi\", exact=True)\\nwhile True:\\n    booking = talk(\"Ask.\", True)\\n' > \"$1\"",
    );
    edit_with(&mut ui, &breaks).await;
    ui.wait_for("the invalid version's diagnostics", |app| {
        let chat = app.chat.as_ref().unwrap();
        chat.based_files[0].versions.len() == 3 && chat.shown_diagnostics().is_some_and(|d| !d.is_empty())
    })
    .await;
    let screen = ui.screen();
    let rows: Vec<&str> = screen.lines().collect();
    let at = rows
        .iter()
        .position(|row| row.contains("2 │ while True:"))
        .unwrap_or_else(|| panic!("line 2 shown:\n{screen}"));
    let caret = rows[at + 1];
    assert!(
        caret.contains("│ ^") && caret.contains("error["),
        "caret under line 2:\n{screen}"
    );
    assert!(screen.contains("v3 · 3 lines · 1 error, 1 warning"), "{screen}");
    assert!(
        screen.contains("Edited by the user"),
        "the conversation's card:\n{screen}"
    );
    assert!(screen.contains("3 │     booking"), "the next line follows:\n{screen}");

    // A conflict: another client saves while our editor is open.
    let appends = script(dir.path(), "appends.sh", "echo 'say(\"Bye.\", exact=True)' >> \"$1\"");
    ui.driver.editor = Some(appends.clone());
    ui.char('e');
    let request = ui.driver.take_pending_edit().unwrap();
    let mut other = server.connect(&chat_id, true).await;
    other.recv_initial().await;
    other
        .send_json(&json!({"action": "save_version", "file_id": file_id, "content": VALID}))
        .await;
    ui.wait_for("the other client's version", |app| {
        app.chat.as_ref().unwrap().based_files[0].versions.len() == 4
    })
    .await;
    ui.driver.run_edit(request).await;
    ui.wait_for("the conflict question", |app| {
        matches!(app.popup, Some(Popup::Confirm { .. }))
    })
    .await;
    let question = ui.screen();
    assert!(question.contains("changed while you edited"), "{question}");
    assert_eq!(latest(&ui), (4, VALID.to_owned()), "nothing saved yet");
    // Save anyway.
    ui.char('y');
    let mine = "say(\"Hi\", exact=True)\nwhile True:\n    booking = talk(\"Ask.\", True)\nsay(\"Bye.\", exact=True)\n";
    ui.wait_for("our version after all", |app| {
        app.chat.as_ref().unwrap().based_files[0].versions.len() == 5
    })
    .await;
    assert_eq!(latest(&ui).1, mine);

    // Another conflict, and this time reload: the latest stays, our edit goes to the clipboard.
    ui.char('e');
    let request = ui.driver.take_pending_edit().unwrap();
    other
        .send_json(&json!({"action": "save_version", "file_id": file_id, "content": VALID}))
        .await;
    ui.wait_for("the other version", |app| {
        app.chat.as_ref().unwrap().based_files[0].versions.len() == 6
    })
    .await;
    ui.driver.run_edit(request).await;
    ui.wait_for("the conflict question", |app| {
        matches!(app.popup, Some(Popup::Confirm { .. }))
    })
    .await;
    ui.char('n');
    assert_eq!(
        ui.driver.clipboard.pop().as_deref(),
        Some(format!("{mine}say(\"Bye.\", exact=True)\n").as_str())
    );
    assert_eq!(latest(&ui), (6, VALID.to_owned()));
    assert_eq!(server.state.store.chat_versions(&chat_id).await.unwrap().len(), 6);

    // w: to a new path, written at once.
    let fresh = dir.path().join("copy.based");
    ui.char('w');
    for _ in 0.."booking.based".len() {
        ui.press(KeyCode::Backspace);
    }
    ui.type_text(&fresh.display().to_string());
    ui.press(KeyCode::Enter);
    ui.wait_for("the written file", |app| {
        app.notice.as_deref().is_some_and(|n| n.starts_with("Wrote"))
    })
    .await;
    assert_eq!(std::fs::read_to_string(&fresh).unwrap(), VALID);

    // w over an existing file (its name tab-completed): confirmed first.
    std::fs::write(dir.path().join("old-flow.based"), "say(\"old\")\n").unwrap();
    ui.char('w');
    for _ in 0.."booking.based".len() {
        ui.press(KeyCode::Backspace);
    }
    ui.type_text(&format!("{}/old-f", dir.path().display()));
    ui.press(KeyCode::Tab);
    assert!(ui.screen().contains("old-flow.based"));
    ui.press(KeyCode::Enter);
    let confirm = ui.screen();
    assert!(confirm.contains("exists. Overwrite it?"), "{confirm}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("old-flow.based")).unwrap(),
        "say(\"old\")\n"
    );
    ui.char('y');
    ui.wait_for("the overwrite", |app| {
        app.notice.as_deref().is_some_and(|n| n.starts_with("Wrote"))
    })
    .await;
    assert_eq!(
        std::fs::read_to_string(dir.path().join("old-flow.based")).unwrap(),
        VALID
    );
}

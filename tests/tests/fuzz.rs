//! Fuzzing with proptest, bounded in time for CI (`KAFKA_FUZZ_SECS` per target, 20 by
//! default; the three targets run in parallel). Inputs grow from the seed corpus under
//! `tests/fuzz-seeds/`; a failing input's seed is saved next to this file (`*.proptest-
//! regressions`) and replayed first on every later run.
//!
//! - WebSocket frames against a real server: every frame gets an answer and the socket stays open.
//! - The Based validator (and its diagnostic rendering) never panics.
//! - The tolerant diff apply never panics, and applies any unmodified patch exactly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a panic is the failure report"
)]

use std::fmt::Debug;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine;
use kafka_protocol::ws::{ClientAction, Hello};
use kafka_server::based::{describe_for_model, render, validate};
use kafka_server::diff::{apply_tolerant, make_patch};
use kafka_tests::TestServer;
use kafka_tests::fake_model::FakeModel;
use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, TestCaseError, TestCaseResult, TestRunner};
use serde_json::{Map, Value, json};

const DEFAULT_SECS: u64 = 20;

// ---------------------------------------------------------------------------------------
// Running and seeds
// ---------------------------------------------------------------------------------------

fn budget() -> Duration {
    let secs = std::env::var("KAFKA_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SECS);
    Duration::from_secs(secs)
}

/// Runs `test` on inputs from `strategy`, `cases_per_run` at a time, for the time budget (at
/// least one run); panics with the shrunk input on the first failure, after proptest has
/// saved its seed.
fn fuzz<S>(name: &str, cases_per_run: u32, strategy: S, test: impl Fn(S::Value) -> TestCaseResult)
where
    S: Strategy,
    S::Value: Debug,
{
    let config = ProptestConfig {
        cases: cases_per_run,
        source_file: Some(file!()),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        max_shrink_time: 60_000,
        ..ProptestConfig::default()
    };
    let started = Instant::now();
    let mut runs = 0;
    while runs == 0 || started.elapsed() < budget() {
        // A runner counts its successes and stops at `cases`: each run needs a new one (with a
        // new random seed).
        if let Err(failure) = TestRunner::new(config.clone()).run(&strategy, &test) {
            panic!("{failure}");
        }
        runs += 1;
    }
    let cases = runs * cases_per_run;
    println!("{name}: {cases} cases in {:.1} s", started.elapsed().as_secs_f64());
}

/// The files of `tests/fuzz-seeds/<kind>/`, in name order.
fn seeds(kind: &str) -> Vec<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz-seeds").join(kind);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    paths.sort();
    paths.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect()
}

// ---------------------------------------------------------------------------------------
// Mutations of text
// ---------------------------------------------------------------------------------------

/// Pieces of Based and Python that make parsers take unusual paths.
const SNIPPETS: &[&str] = &[
    "loop:",
    "until \"done\":",
    "until ",
    "talk(\"x\", True)",
    "x = talk(",
    "    ",
    "\t",
    "\n",
    "\r\n",
    "\r",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "\"",
    "'",
    "\"\"\"",
    "'''",
    "f\"{",
    "}\"",
    "{{",
    "\\",
    "\\\n",
    "#",
    ":",
    "=",
    ",",
    ".",
    "while True:",
    "def f():",
    "async def g():",
    "await ",
    "return",
    "break",
    "continue",
    "elif x:",
    "else:",
    "lambda: ",
    "**",
    "*",
    "@",
    "...",
    "é",
    "\u{200b}",
    "\u{1F600}",
    "\0",
    "\u{feff}",
    "0x",
    "1e",
    "1_000",
    "r\"",
    "b'",
    "rb\"",
    "as ",
    "if ",
    "for i in x:",
    "try:",
    "except:",
    "pass",
];

#[derive(Debug, Clone)]
enum Edit {
    Insert {
        at: usize,
        text: String,
    },
    Delete {
        at: usize,
        len: usize,
    },
    /// Repeats a stretch many times: deep nesting, long lines, many blocks.
    Repeat {
        at: usize,
        len: usize,
        times: usize,
    },
}

fn edit() -> impl Strategy<Value = Edit> {
    let text = prop_oneof![
        4 => proptest::sample::select(SNIPPETS).prop_map(str::to_owned),
        1 => "\\PC{0,8}",
        1 => any::<char>().prop_map(String::from),
    ];
    prop_oneof![
        4 => (any::<usize>(), text).prop_map(|(at, text)| Edit::Insert { at, text }),
        2 => (any::<usize>(), 1..40usize).prop_map(|(at, len)| Edit::Delete { at, len }),
        1 => (any::<usize>(), 1..12usize, 2..300usize).prop_map(|(at, len, times)| Edit::Repeat { at, len, times }),
    ]
}

/// Applies edits to the text's characters; positions wrap around its length.
fn apply_edits(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for edit in edits {
        let at = |position: usize| position % (chars.len() + 1);
        match edit {
            Edit::Insert { at: position, text } => {
                let start = at(*position);
                chars.splice(start..start, text.chars());
            }
            Edit::Delete { at: position, len } => {
                let start = at(*position);
                chars.drain(start..(start + len).min(chars.len()));
            }
            Edit::Repeat {
                at: position,
                len,
                times,
            } => {
                let start = at(*position);
                let piece: Vec<char> = chars[start..(start + len).min(chars.len())].to_vec();
                let repeated: Vec<char> = piece.iter().copied().cycle().take(piece.len() * times).collect();
                chars.splice(start..start, repeated);
            }
        }
    }
    chars.into_iter().collect()
}

/// A seed with up to `max_edits` edits.
fn mutated(seeds: Vec<String>, max_edits: usize) -> impl Strategy<Value = String> {
    (
        proptest::sample::select(seeds),
        proptest::collection::vec(edit(), 0..=max_edits),
    )
        .prop_map(|(seed, edits)| apply_edits(&seed, &edits))
}

// ---------------------------------------------------------------------------------------
// The Based validator
// ---------------------------------------------------------------------------------------

fn based_source() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => mutated(seeds("based"), 8),
        1 => any::<String>(),
        1 => "[ \\t\\n\\r()\\[\\]{}\"'a-z0-9:=#\\\\.,]{0,300}",
    ]
}

#[test]
fn the_based_validator_never_panics() {
    fuzz("based validator", 64, based_source(), |source| {
        let diagnostics = validate(&source);
        let positions: Vec<_> = diagnostics.iter().map(|d| (d.line, d.column)).collect();
        prop_assert!(positions.is_sorted(), "diagnostics out of order: {positions:?}");
        for diagnostic in &diagnostics {
            render("fuzz.based", &source, diagnostic);
            describe_for_model(&source, diagnostic);
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------
// The tolerant diff apply
// ---------------------------------------------------------------------------------------

/// What to do to a patch line by line.
#[derive(Debug, Clone)]
enum PatchEdit {
    DropLine(usize),
    DuplicateLine(usize),
    /// Replaces the line's first character (its ` `, `+`, `-`, `@` or `\`).
    Retag(usize, char),
    /// Rewrites the numbers of a hunk header.
    Renumber(usize, [u64; 4]),
    InsertLine(usize, String),
}

fn patch_edit() -> impl Strategy<Value = PatchEdit> {
    // Small numbers, the edges of u32 and u64 (a header near u64::MAX once overflowed
    // `apply_tolerant`; see the pinned tests below), and anything else.
    let number = prop_oneof![
        0..300u64,
        Just(u64::from(u32::MAX)),
        Just(u64::MAX),
        Just(u64::MAX - 1),
        any::<u64>()
    ];
    prop_oneof![
        (any::<usize>()).prop_map(PatchEdit::DropLine),
        (any::<usize>()).prop_map(PatchEdit::DuplicateLine),
        (
            any::<usize>(),
            proptest::sample::select(vec![' ', '+', '-', '@', '\\', 'x', '\t'])
        )
            .prop_map(|(line, tag)| PatchEdit::Retag(line, tag)),
        (any::<usize>(), [number.clone(), number.clone(), number.clone(), number])
            .prop_map(|(line, numbers)| PatchEdit::Renumber(line, numbers)),
        (
            any::<usize>(),
            prop_oneof![
                proptest::sample::select(SNIPPETS).prop_map(str::to_owned),
                "[-+ @\\\\]\\PC{0,20}"
            ]
        )
            .prop_map(|(line, text)| PatchEdit::InsertLine(line, text)),
    ]
}

fn apply_patch_edits(patch: &str, edits: &[PatchEdit]) -> String {
    let mut lines: Vec<String> = patch.split_inclusive('\n').map(str::to_owned).collect();
    for edit in edits {
        let at = |line: usize, extra: usize| line % (lines.len() + extra).max(1);
        match edit {
            PatchEdit::DropLine(line) if !lines.is_empty() => {
                lines.remove(at(*line, 0));
            }
            PatchEdit::DuplicateLine(line) if !lines.is_empty() => {
                let copy = lines[at(*line, 0)].clone();
                lines.insert(at(*line, 0), copy);
            }
            PatchEdit::Retag(line, tag) if !lines.is_empty() => {
                let index = at(*line, 0);
                lines[index] = format!("{tag}{}", lines[index].chars().skip(1).collect::<String>());
            }
            PatchEdit::Renumber(line, [a, b, c, d]) => {
                lines.insert(at(*line, 1), format!("@@ -{a},{b} +{c},{d} @@\n"));
            }
            PatchEdit::InsertLine(line, text) => lines.insert(at(*line, 1), format!("{text}\n")),
            _ => {}
        }
    }
    lines.concat()
}

/// A text, a patch made against it (or a seed patch), the patch's edits, and the text the
/// patch is applied to (mostly the original; sometimes an edited or another file).
#[derive(Debug, Clone)]
struct PatchCase {
    text: String,
    target: String,
    patch: String,
    expected: Option<String>,
}

fn patch_case() -> impl Strategy<Value = PatchCase> {
    let texts = seeds("based");
    let made = (mutated(texts.clone(), 0), proptest::collection::vec(edit(), 1..4)).prop_map(|(text, edits)| {
        let new = apply_edits(&text, &edits);
        (text.clone(), make_patch(&text, &new, "a.based", "a.based"), Some(new))
    });
    let seeded = (mutated(texts.clone(), 2), mutated(seeds("diff"), 0)).prop_map(|(text, patch)| (text, patch, None));
    (
        prop_oneof![3 => made, 1 => seeded],
        proptest::collection::vec(patch_edit(), 0..5),
        prop_oneof![3 => Just(None), 1 => mutated(texts, 3).prop_map(Some)],
    )
        .prop_map(|((text, patch, new), edits, other_target)| PatchCase {
            expected: new.filter(|_| edits.is_empty() && other_target.is_none()),
            target: other_target.unwrap_or_else(|| text.clone()),
            patch: apply_patch_edits(&patch, &edits),
            text,
        })
}

#[test]
fn the_tolerant_diff_apply_never_panics() {
    fuzz("tolerant diff apply", 64, patch_case(), |case| {
        let applied = apply_tolerant(&case.target, &case.patch);
        if let Some(expected) = &case.expected {
            prop_assert_eq!(
                applied.as_ref().ok(),
                Some(expected),
                "an unmodified patch of {:?}",
                case.text
            );
        }
        Ok(())
    });
}

// Found by the fuzzer: a hunk header whose old start is near usize::MAX made `matches_at`
// (server/src/diff/tolerant.rs) compute `start + old.len()`, which overflowed: a panic in
// debug builds; in release the sum wrapped, the check passed and `src[start..]` panicked.
// A model's diff reaches this through the agent. Fixed with checked arithmetic: the tolerant
// apply takes line numbers as hints, so the hunk is found by its context; the strict apply,
// which trusts them, refuses it.
#[test]
fn a_hunk_header_near_the_end_of_usize_is_handled_without_a_panic() {
    let patch = "@@ -18446744073709551615,2 +1,2 @@\n a\n-b\n+c\n";
    assert_eq!(apply_tolerant("a\nb\n", patch).ok().as_deref(), Some("a\nc\n"));
    assert!(kafka_server::diff::apply_patch("a\nb\n", patch).is_err());
    let nowhere = "@@ -18446744073709551615,2 +1,2 @@\n x\n-y\n+z\n";
    assert!(apply_tolerant("a\nb\n", nowhere).is_err());
}

/// The same diff from a model: the panic ends the agent's task before it frees the chat's
/// agent slot, so the client never gets an answer and every later `new_message` of the chat
/// is refused as "already working" until the server restarts.
#[tokio::test]
async fn a_model_diff_with_a_huge_hunk_header_gets_an_answer() {
    let server = TestServer::start().await;
    let fake = FakeModel::start().await;
    let (user_id, _, chat_id) = server.user_with_chat("overflow@example.com").await;
    server.add_model(&user_id, "fake", "key", &fake.base_url()).await;
    let mut ws = server.connect(&chat_id, false).await;
    ws.recv_initial().await;
    let file = base64::engine::general_purpose::STANDARD
        .encode("loop:\n    x = talk(\"a\", True)\nuntil \"b\":\n    return\n");
    ws.send_json(&json!({"action": "upload_file", "filename": "f.based", "file_data": file}))
        .await;
    ws.recv_text().await;
    fake.push_json(
        json!({"summary": "edit", "extraction_indices": [], "genNewFile": false, "files_list": [],
                          "plain_response": false, "tools": []}),
    );
    let patch = "@@ -18446744073709551615,2 +1,2 @@\n loop:\n-    x = talk(\"a\", True)\n+    x = talk(\"c\", True)\n";
    fake.push_json(json!({"type": "diff", "filename": "f.based", "text": patch}));
    let message = json!({"action": "new_message", "model": "fake", "prompt": "edit", "is_first_prompt": false,
                         "is_chat_or_composer": true, "selected_filename": "f.based"});
    ws.send_json(&message).await;
    assert!(
        ws.try_recv_text(Duration::from_secs(10)).await.is_some(),
        "no answer to the new_message"
    );
}

// ---------------------------------------------------------------------------------------
// WebSocket frames
// ---------------------------------------------------------------------------------------

const FIELDS: &[&str] = &[
    "action",
    "filename",
    "file_data",
    "model",
    "prompt",
    "is_first_prompt",
    "is_chat_or_composer",
    "selected_filename",
    "version_id",
    "file_id",
    "from_version_id",
    "to_version_id",
    "version",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,16}".prop_map(Value::from),
        proptest::sample::select(ClientAction::NAMES).prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map("\\PC{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An object with an action (known, unknown or not a string) and fields of random types.
fn action_object() -> impl Strategy<Value = String> {
    let action = prop_oneof![
        4 => proptest::sample::select(ClientAction::NAMES).prop_map(Value::from),
        1 => "\\PC{0,12}".prop_map(Value::from),
        1 => json_value(),
    ];
    let field = (
        prop_oneof![3 => proptest::sample::select(FIELDS).prop_map(str::to_owned), 1 => "\\PC{0,8}"],
        json_value(),
    );
    (action, proptest::collection::vec(field, 0..6)).prop_map(|(action, fields)| {
        let mut object: Map<String, Value> = fields.into_iter().collect();
        object.insert("action".into(), action);
        Value::Object(object).to_string()
    })
}

/// An upload whose name and base64 data are random, malformed or hostile.
fn upload_frame() -> impl Strategy<Value = String> {
    let filename = prop_oneof![
        "[a-z]{1,8}\\.(based|txt|py|pdf|png|md)",
        "\\PC{0,24}",
        proptest::sample::select(vec![
            "",
            ".",
            "..",
            "../x.based",
            "/etc/passwd",
            "a/b\\c.based",
            "CON",
            "x\0y"
        ])
        .prop_map(str::to_owned),
    ];
    let data = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512)
            .prop_map(|bytes| base64::engine::general_purpose::STANDARD.encode(bytes)),
        "[A-Za-z0-9+/=\\s]{0,64}",
        "data:[a-z/]{0,12};base64,[A-Za-z0-9+/=]{0,32}",
        "\\PC{0,32}",
    ];
    (filename, data).prop_map(|(filename, file_data)| {
        json!({"action": "upload_file", "filename": filename, "file_data": file_data}).to_string()
    })
}

fn frame() -> impl Strategy<Value = String> {
    let seed_frames: Vec<String> = seeds("ws")
        .concat()
        .lines()
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect();
    prop_oneof![
        2 => proptest::sample::select(seed_frames.clone()),
        2 => mutated(seed_frames, 4),
        1 => "\\PC{0,64}",
        4 => action_object(),
        2 => upload_frame(),
    ]
}

/// A `hello` for a version the server speaks is the one frame that gets no answer.
fn is_silent(frame: &str) -> bool {
    matches!(
        serde_json::from_str::<ClientAction>(frame),
        Ok(ClientAction::Hello(Hello { version: 1 | 2 }))
    )
}

/// Sends each frame followed by a marker text; everything that arrives before the marker's
/// echo (events aside) answers the frame.
async fn answers_every_frame(
    server: &TestServer,
    user_id: &str,
    workspace_id: &str,
    v2: bool,
    frames: &[String],
) -> Result<(), String> {
    let chat = server.new_chat(user_id, workspace_id, "Fuzz").await.chat_id;
    let mut ws = server.connect(&chat, v2).await;
    ws.recv_initial().await;
    for (index, frame) in frames.iter().enumerate() {
        ws.send_text(frame).await;
        let marker = format!("fuzz marker {index}");
        ws.send_text(&marker).await;
        let mut answers = 0;
        loop {
            let Some(text) = ws.try_recv_text(Duration::from_secs(10)).await else {
                return Err(format!("no answer, or the socket closed, after {frame:?}"));
            };
            if text == format!("Echo: {marker}") {
                break;
            }
            let is_event = serde_json::from_str::<Value>(&text).is_ok_and(|v| v.get("event").is_some());
            answers += usize::from(!is_event);
        }
        if answers == 0 && !is_silent(frame) {
            return Err(format!("no answer to {frame:?}"));
        }
    }
    ws.close().await;
    Ok(())
}

#[test]
fn every_websocket_frame_gets_an_answer_and_the_socket_stays_open() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = runtime.block_on(TestServer::start());
    let (user_id, workspace_id, _) = runtime.block_on(server.user_with_chat("fuzz@example.com"));
    let cases = (any::<bool>(), proptest::collection::vec(frame(), 1..6));
    fuzz("websocket frames", 2, cases, |(v2, frames)| {
        runtime
            .block_on(answers_every_frame(&server, &user_id, &workspace_id, v2, &frames))
            .map_err(TestCaseError::fail)
    });
    let health = runtime.block_on(async { server.http.get(server.url("/healthz")).send().await.unwrap().status() });
    assert_eq!(health, 200);
}

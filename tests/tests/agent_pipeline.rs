//! The agent end to end against a fake OpenAI-compatible model served over real HTTP.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a panic is the failure report"
)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_server::agent::{
    self, AgentError, AgentInput, AgentOutcome, BasedFile, ConversationLine, LlmClient, LlmError, LlmSettings,
    ModelEndpoint, Observer, Progress, Usage,
};
use kafka_tests::fake_model::{FakeModel, SseStep};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const KEY: &str = "sk-test-4f1c9a7e";

const VALID: &str = r#"say("Hi, I book table reservations.", exact=True)
loop:
    booking = talk("Ask for the party size and the time. Exit once both are known.", True)
until "user gave party size and time":
    details = booking.ask(question="Return party size and time.", example={"size": 2, "time": "19:30"})
    say(f"Booked for {details['size']} at {details['time']}.", exact=True)
until "user wants to cancel":
    return
"#;

/// Breaks R1: a second statement in the loop body, on line 3.
const TWO_STATEMENT_LOOP: &str = r#"loop:
    booking = talk("Ask for the party size.", True)
    say("thanks")
until "user gave party size":
    return
"#;

fn endpoint(model: &FakeModel) -> ModelEndpoint {
    ModelEndpoint {
        name: "fake-model".into(),
        base_url: format!("{}/", model.base_url()),
        api_key: KEY.into(),
    }
}

fn client(timeout: Duration) -> LlmClient {
    LlmClient::new(LlmSettings {
        timeout,
        ..LlmSettings::default()
    })
}

fn input(prompt: &str, is_first_prompt: bool, is_chat_or_composer: bool, selected: Option<&str>) -> AgentInput {
    AgentInput {
        prompt: prompt.into(),
        is_first_prompt,
        is_chat_or_composer,
        selected: selected.map(|content| BasedFile {
            name: "booking.based".into(),
            content: content.into(),
        }),
        other_based: vec![],
        context_files: vec![],
        conversation: vec![ConversationLine {
            role: "user".into(),
            kind: "text".into(),
            content: prompt.into(),
        }],
    }
}

fn first_prompt(prompt: &str) -> AgentInput {
    input(prompt, true, true, None)
}

fn generated(filename: &str, text: &str) -> Value {
    json!({ "type": "based", "filename": filename, "text": text })
}

fn diff(text: &str) -> Value {
    json!({ "type": "diff", "filename": "booking.based", "text": text })
}

fn triage(gen_new_file: bool, plain_response: bool) -> Value {
    json!({ "summary": "s", "extraction_indices": [0], "genNewFile": gen_new_file,
            "files_list": [], "plain_response": plain_response, "tools": ["gmail.send_email"] })
}

/// Runs the agent and collects the progress it reports.
async fn run_with(
    llm: &LlmClient,
    model: &FakeModel,
    input: AgentInput,
    cancel: CancellationToken,
) -> (Result<AgentOutcome, AgentError>, Vec<Progress>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let progress = move |p: Progress| sink.lock().unwrap().push(p);
    let result = agent::run(llm, &endpoint(model), input, &progress, cancel).await;
    let seen = seen.lock().unwrap().clone();
    (result, seen)
}

async fn run(model: &FakeModel, input: AgentInput) -> (Result<AgentOutcome, AgentError>, Vec<Progress>) {
    run_with(&client(Duration::from_secs(10)), model, input, CancellationToken::new()).await
}

#[tokio::test]
async fn new_file_on_the_first_try() {
    let model = FakeModel::start().await;
    model.push_json(generated("booking", VALID));

    let (result, progress) = run(&model, first_prompt("a booking agent")).await;

    assert_eq!(
        result.unwrap(),
        AgentOutcome::NewFile {
            filename: "booking.based".into(),
            content: VALID.into()
        }
    );
    assert_eq!(
        progress,
        [
            Progress::Generating { attempt: 1 },
            Progress::Validating { attempt: 1, max: 5 },
            Progress::Applying,
            Progress::Done
        ]
    );
    let requests = model.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(request.task(), Some("generate"));
    assert_eq!(request.body["model"], "fake-model");
    assert_eq!(request.body["stream"], true);
    assert_eq!(request.body["stream_options"], json!({ "include_usage": true }));
    // Code is asked for as Markdown (readable while it streams), so not in JSON mode.
    assert!(request.body.get("response_format").is_none());
    assert!(
        request.message(0).contains("until"),
        "the system message carries the Based guide"
    );
    assert!(request.message(-1).ends_with("a booking agent"));
}

#[tokio::test]
async fn invalid_based_is_fixed_with_the_diagnostics() {
    let model = FakeModel::start().await;
    model.push_json(generated("booking.based", TWO_STATEMENT_LOOP));
    model.push_json(generated("booking.based", VALID));

    let (result, progress) = run(&model, first_prompt("a booking agent")).await;

    assert_eq!(
        result.unwrap(),
        AgentOutcome::NewFile {
            filename: "booking.based".into(),
            content: VALID.into()
        }
    );
    assert!(progress.contains(&Progress::Validating { attempt: 2, max: 5 }));
    let requests = model.requests();
    assert_eq!(requests.len(), 2);
    let retry = &requests[1];
    assert_eq!(retry.task(), Some("generate"));
    assert_eq!(retry.messages().len(), 4);
    assert_eq!(retry.messages()[2]["role"], "assistant");
    assert!(
        retry.message(2).contains("say(\\\"thanks\\\")"),
        "the rejected answer is kept verbatim"
    );
    let feedback = retry.message(3);
    assert!(feedback.contains("line 3, column 5"), "{feedback}");
    assert!(
        feedback.contains("say(\"thanks\")"),
        "the offending line is quoted: {feedback}"
    );
}

#[tokio::test]
async fn a_diff_with_wrong_line_numbers_is_applied_by_context() {
    let model = FakeModel::start().await;
    model.push_json(triage(false, false));
    model.push_json(diff(concat!(
        "--- booking.based\n+++ booking.based\n",
        "@@ -40,3 +40,4 @@\n",
        "     say(f\"Booked for {details['size']} at {details['time']}.\", exact=True)\n",
        " until \"user wants to cancel\":\n",
        "+    say(\"Goodbye!\", exact=True)\n",
        "     return\n",
    )));

    let (result, progress) = run(&model, input("say goodbye on cancel", false, true, Some(VALID))).await;

    let expected = VALID.replace(
        "cancel\":\n    return",
        "cancel\":\n    say(\"Goodbye!\", exact=True)\n    return",
    );
    assert_eq!(
        result.unwrap(),
        AgentOutcome::Edit {
            filename: "booking.based".into(),
            content: expected
        }
    );
    assert_eq!(progress[0], Progress::Triage);
    let requests = model.requests();
    let tasks: Vec<_> = requests.iter().map(|r| r.task().unwrap().to_string()).collect();
    assert_eq!(tasks, ["triage", "diff"]);
    assert!(requests[1].message(-1).contains("## Selected file: booking.based"));
    assert!(
        requests[1].message(0).contains("gmail.send_email"),
        "triage's tools reach the diff prompt"
    );
}

#[tokio::test]
async fn a_diff_that_never_applies_gives_up_after_five_attempts() {
    let model = FakeModel::start().await;
    model.push_json(triage(false, false));
    for _ in 0..5 {
        model.push_json(diff("@@ -1,1 +1,1 @@\n-this line is not in the file\n+say(\"x\")\n"));
    }

    let (result, _) = run(&model, input("change it", false, true, Some(VALID))).await;

    let Err(AgentError::GaveUp { attempts, last_problem }) = result else {
        panic!("expected GaveUp, got {result:?}")
    };
    assert_eq!(attempts, 5);
    assert!(last_problem.contains("hunk 1"), "{last_problem}");
    let requests = model.requests();
    assert_eq!(requests.len(), 6);
    assert!(
        requests[5]
            .message(-1)
            .contains("did not apply to booking.based: hunk 1")
    );
}

#[tokio::test]
async fn a_plain_answer_outside_chat_mode_skips_triage() {
    let model = FakeModel::start().await;
    model.push_json(json!({ "text": "A loop body holds one talk call." }));

    let (result, progress) = run(&model, input("what goes in a loop?", false, false, Some(VALID))).await;

    assert_eq!(
        result.unwrap(),
        AgentOutcome::Response {
            text: "A loop body holds one talk call.".into()
        }
    );
    assert_eq!(progress, [Progress::Generating { attempt: 1 }, Progress::Done]);
    assert_eq!(model.requests()[0].task(), Some("respond"));
}

#[tokio::test]
async fn triage_can_choose_a_plain_answer() {
    let model = FakeModel::start().await;
    model.push_json(triage(false, true));
    model.push_json(json!({ "text": "It books tables." }));

    let (result, _) = run(&model, input("what does this file do?", false, true, Some(VALID))).await;

    assert_eq!(
        result.unwrap(),
        AgentOutcome::Response {
            text: "It books tables.".into()
        }
    );
    let tasks: Vec<_> = model.requests().iter().map(|r| r.task().unwrap().to_string()).collect();
    assert_eq!(tasks, ["triage", "respond"]);
}

#[tokio::test]
async fn a_server_error_is_retried() {
    let model = FakeModel::start().await;
    model.push_status(500, "upstream exploded");
    model.push_json(generated("a.based", VALID));

    let (result, _) = run(&model, first_prompt("x")).await;

    assert!(matches!(result, Ok(AgentOutcome::NewFile { .. })), "{result:?}");
    assert_eq!(model.requests().len(), 2);
}

#[tokio::test]
async fn a_rate_limit_honours_retry_after() {
    let model = FakeModel::start().await;
    model.push_status_with_headers(429, &[("retry-after", "1")], "slow down");
    model.push_json(generated("a.based", VALID));

    let started = Instant::now();
    let (result, _) = run(&model, first_prompt("x")).await;

    assert!(matches!(result, Ok(AgentOutcome::NewFile { .. })), "{result:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "waited only {:?}",
        started.elapsed()
    );
    assert_eq!(model.requests().len(), 2);
}

#[tokio::test]
async fn a_rejected_key_is_not_retried_and_never_shown() {
    let model = FakeModel::start().await;
    model.push_status(401, &format!(r#"{{"error": "invalid api key {KEY}"}}"#));

    let (result, _) = run(&model, first_prompt("x")).await;

    let error = result.unwrap_err();
    assert!(
        matches!(error, AgentError::Model(LlmError::Unauthorized { status: 401 })),
        "{error:?}"
    );
    assert_eq!(error.to_string(), "the model rejected the API key (401)");
    let requests = model.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert!(!format!("{error} {error:?}").contains(KEY));
    assert!(!format!("{:?}", endpoint(&model)).contains(KEY));
}

#[tokio::test]
async fn an_echoed_key_is_redacted_from_errors() {
    let model = FakeModel::start().await;
    model.push_status(400, &format!("bad request for key {KEY}"));

    let (result, _) = run(&model, first_prompt("x")).await;

    let error = result.unwrap_err();
    assert!(
        error.to_string().starts_with("the model rejected the request (400)"),
        "{error}"
    );
    assert!(!format!("{error} {error:?}").contains(KEY));
    assert_eq!(model.requests().len(), 1);
}

#[tokio::test]
async fn a_hanging_model_times_out() {
    let model = FakeModel::start().await;
    model.push_hang();

    let started = Instant::now();
    let llm = client(Duration::from_millis(300));
    let (result, _) = run_with(&llm, &model, first_prompt("x"), CancellationToken::new()).await;

    let error = result.unwrap_err();
    assert!(
        matches!(error, AgentError::Model(LlmError::Timeout { .. })),
        "{error:?}"
    );
    assert!(error.to_string().contains("did not answer within 0.3 s"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(model.requests().len(), 1, "a timeout is not retried");
}

#[tokio::test]
async fn fenced_json_with_prose_around_it_is_read() {
    let model = FakeModel::start().await;
    let answer = generated("booking.based", VALID);
    model.push_content(&format!(
        "Here is your agent {{as asked}}:\n```json\n{answer}\n```\nEnjoy!"
    ));

    let (result, _) = run(&model, first_prompt("x")).await;

    assert_eq!(
        result.unwrap(),
        AgentOutcome::NewFile {
            filename: "booking.based".into(),
            content: VALID.into()
        }
    );
}

#[tokio::test]
async fn an_unusable_answer_is_retried_with_the_reason() {
    let model = FakeModel::start().await;
    model.push_json(json!({ "type": "based", "filename": "a.based", "text": "" }));
    model.push_json(json!({ "type": "based", "filename": "a.based" }));
    model.push_json(generated("a.based", VALID));

    let (result, _) = run(&model, first_prompt("x")).await;

    assert!(matches!(result, Ok(AgentOutcome::NewFile { .. })), "{result:?}");
    let requests = model.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests[1].message(-1).contains("`text` is empty"));
    assert!(requests[2].message(-1).contains("missing field `text`"));
}

#[tokio::test]
async fn a_refused_response_format_is_dropped() {
    let model = FakeModel::start().await;
    model.push_status(
        400,
        r#"{"error": {"message": "Unrecognized request argument supplied: response_format"}}"#,
    );
    model.push_json(triage(false, true));
    model.push_content("Sure.");

    let (result, _) = run(&model, input("x", false, true, None)).await;

    assert_eq!(result.unwrap(), AgentOutcome::Response { text: "Sure.".into() });
    let requests = model.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[0].task(), Some("triage"));
    assert!(requests[0].body.get("response_format").is_some());
    assert!(requests[1].body.get("response_format").is_none());
    assert!(requests[1].body.get("stream_options").is_some());
}

#[tokio::test]
async fn a_refused_stream_options_is_dropped_and_usage_is_optional() {
    let model = FakeModel::start().await;
    model.push_status(422, r#"{"error": "extra field not permitted: stream_options"}"#);
    model.push_sse(&["## a.based\n```based\n", VALID, "```\n"]);

    let (result, _) = run(&model, first_prompt("x")).await;

    assert!(matches!(result, Ok(AgentOutcome::NewFile { .. })), "{result:?}");
    let requests = model.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests[0].body.get("stream_options").is_some());
    assert!(requests[1].body.get("stream_options").is_none());
    assert_eq!(requests[1].body["stream"], true);
}

#[tokio::test]
async fn cancelling_mid_call_returns_promptly() {
    let model = FakeModel::start().await;
    model.push_hang();
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        trigger.cancel();
    });

    let started = Instant::now();
    let llm = client(Duration::from_secs(60));
    let (result, _) = run_with(&llm, &model, first_prompt("x"), cancel).await;

    assert!(matches!(result, Err(AgentError::Cancelled)), "{result:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(model.requests().len(), 1);
}

/// Collects everything a run reports.
#[derive(Default)]
struct Recorder {
    progress: Mutex<Vec<Progress>>,
    output: Mutex<Vec<(u32, String)>>,
    usage: Mutex<Vec<Usage>>,
}

impl Observer for Recorder {
    fn progress(&self, step: Progress) {
        self.progress.lock().unwrap().push(step);
    }

    fn output(&self, attempt: u32, delta: &str) {
        self.output.lock().unwrap().push((attempt, delta.to_string()));
    }

    fn usage(&self, usage: Usage) {
        self.usage.lock().unwrap().push(usage);
    }
}

async fn observed(
    llm: &LlmClient,
    model: &FakeModel,
    input: AgentInput,
) -> (Result<AgentOutcome, AgentError>, Recorder) {
    let recorder = Recorder::default();
    let result = agent::run(llm, &endpoint(model), input, &recorder, CancellationToken::new()).await;
    (result, recorder)
}

fn fenced(name: &str, code: &str) -> Vec<String> {
    // Split the way a model streams: a few characters at a time.
    let answer = format!("## {name}\n```based\n{code}```\n");
    let chars: Vec<char> = answer.chars().collect();
    chars.chunks(7).map(|c| c.iter().collect()).collect()
}

#[tokio::test]
async fn a_streamed_answer_reaches_the_observer_piece_by_piece() {
    let model = FakeModel::start().await;
    let pieces = fenced("booking.based", VALID);
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    model.push_sse(&refs);

    let (result, seen) = observed(
        &client(Duration::from_secs(10)),
        &model,
        first_prompt("a booking agent"),
    )
    .await;

    assert_eq!(
        result.unwrap(),
        AgentOutcome::NewFile {
            filename: "booking.based".into(),
            content: VALID.into()
        }
    );
    let output = seen.output.lock().unwrap().clone();
    assert_eq!(output.len(), pieces.len(), "one report per streamed piece");
    assert!(output.iter().all(|(attempt, _)| *attempt == 1));
    let joined: String = output.iter().map(|(_, d)| d.as_str()).collect();
    assert_eq!(joined, pieces.concat());
    let usage = seen.usage.lock().unwrap().clone();
    assert_eq!(usage.len(), 1);
    assert_eq!(
        (
            usage[0].prompt_tokens,
            usage[0].completion_tokens,
            usage[0].total_tokens
        ),
        (11, pieces.len() as u64, 11 + pieces.len() as u64)
    );
}

#[tokio::test]
async fn a_provider_that_ignores_stream_is_shown_whole() {
    let model = FakeModel::start().await;
    model.push_content("Plain **answer**.");

    let (result, seen) = observed(
        &client(Duration::from_secs(10)),
        &model,
        input("hi", false, false, None),
    )
    .await;

    assert_eq!(
        result.unwrap(),
        AgentOutcome::Response {
            text: "Plain **answer**.".into()
        }
    );
    assert_eq!(*seen.output.lock().unwrap(), [(1, "Plain **answer**.".to_string())]);
    assert!(seen.usage.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_stream_broken_half_way_fails_the_run_without_retrying() {
    let model = FakeModel::start().await;
    model.push_sse_steps(vec![
        SseStep::Delta("## a.based\n```based\nloop:\n".into()),
        SseStep::Break,
    ]);

    let (result, seen) = observed(&client(Duration::from_secs(10)), &model, first_prompt("x")).await;

    let error = result.unwrap_err();
    assert!(
        matches!(error, AgentError::Model(LlmError::Interrupted(_))),
        "{error:?}"
    );
    assert!(error.to_string().starts_with("the model's answer broke off"), "{error}");
    assert_eq!(model.requests().len(), 1, "a broken stream is not asked again");
    assert_eq!(seen.output.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_stream_that_ends_without_done_is_an_error() {
    let model = FakeModel::start().await;
    model.push_sse_steps(vec![SseStep::Delta("half".into())]);

    let (result, _) = observed(
        &client(Duration::from_secs(10)),
        &model,
        input("hi", false, false, None),
    )
    .await;

    let error = result.unwrap_err().to_string();
    assert!(error.contains("ended before the model said it was done"), "{error}");
}

#[tokio::test]
async fn an_error_inside_the_stream_is_shown_sanitized() {
    let model = FakeModel::start().await;
    model.push_sse_steps(vec![
        SseStep::Delta("Hel".into()),
        SseStep::Data(format!(r#"{{"error": {{"message": "overloaded\nfor {KEY}"}}}}"#)),
    ]);

    let (result, _) = observed(
        &client(Duration::from_secs(10)),
        &model,
        input("hi", false, false, None),
    )
    .await;

    let error = result.unwrap_err().to_string();
    assert_eq!(
        error,
        "the model's answer broke off: the model reported an error in its stream: overloaded for [redacted]"
    );
}

#[tokio::test]
async fn a_stalled_stream_hits_the_idle_timeout() {
    let model = FakeModel::start().await;
    model.push_sse_steps(vec![
        SseStep::Delta("Hel".into()),
        SseStep::Pause(Duration::from_secs(30)),
        SseStep::Done,
    ]);
    let llm = LlmClient::new(LlmSettings {
        timeout: Duration::from_secs(20),
        idle_timeout: Duration::from_millis(300),
        ..LlmSettings::default()
    });

    let started = Instant::now();
    let (result, _) = observed(&llm, &model, input("hi", false, false, None)).await;

    let error = result.unwrap_err();
    assert!(
        matches!(error, AgentError::Model(LlmError::Stalled { .. })),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

#[tokio::test]
async fn the_reply_cap_applies_to_a_stream() {
    let model = FakeModel::start().await;
    let piece = "x".repeat(1000);
    let pieces: Vec<&str> = std::iter::repeat_n(piece.as_str(), 40).collect();
    model.push_sse(&pieces);
    let llm = LlmClient::new(LlmSettings {
        max_reply_bytes: 16 * 1024,
        ..LlmSettings::default()
    });

    let (result, seen) = observed(&llm, &model, input("hi", false, false, None)).await;

    let error = result.unwrap_err();
    assert!(
        matches!(error, AgentError::Model(LlmError::TooLarge { .. })),
        "{error:?}"
    );
    let shown: usize = seen.output.lock().unwrap().iter().map(|(_, d)| d.len()).sum();
    assert!(shown < 16 * 1024, "{shown}");
}

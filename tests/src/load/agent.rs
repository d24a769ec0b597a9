//! The agent's own cost: `new_message` round trips with a fake model that answers at once,
//! minus the time the fake itself takes to answer the same request.

use std::time::Duration;

use anyhow::{Context, bail};
use kafka_protocol::ws::{ClientAction, NewMessage, ServerAction, ServerFrame};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::actions::shown;
use super::api::{Api, run_tag};
use super::payload::based_flow;
use super::report::{Table, millis, original, versus};
use super::stats::Samples;
use super::ws::Conn;
use crate::fake_model::FakeModel;

const MODEL: &str = "load-fake";

/// The two routes that need one model call each.
#[derive(Debug, Clone, Copy)]
enum Route {
    /// A first prompt: the agent writes, validates and saves a new file.
    NewFile,
    /// Outside chat/composer mode: a plain answer, nothing validated or saved but the text.
    PlainAnswer,
}

pub async fn run(api: &Api, repeats: usize) -> anyhow::Result<Table> {
    let fake = FakeModel::start().await;
    let user = api
        .user_with_chats(&format!("agent-{}@load.test", run_tag()), 1)
        .await?;
    api.add_model(&user.user_id, MODEL, &fake.base_url()).await?;
    let mut conn = Conn::open(&api.ws_url(&user.chat_ids[0], false)).await?.conn;
    let mut table = Table::new(
        "Agent overhead (new_message, instant model)",
        &[
            "route",
            "round trip (median)",
            "fake model alone (median)",
            "server overhead",
            "vs original",
        ],
    );
    for route in [Route::NewFile, Route::PlainAnswer] {
        let round_trip = round_trips(&mut conn, &fake, route, repeats).await?;
        let model_alone = fake_alone(&fake, route, repeats).await?;
        let overhead = round_trip.saturating_sub(model_alone);
        table.row(vec![
            format!("{route:?}"),
            millis(round_trip),
            millis(model_alone),
            millis(overhead),
            versus(overhead.as_secs_f64() * 1e3, original::AGENT_OVERHEAD_MILLIS, false),
        ]);
    }
    conn.close().await;
    table.note(format!(
        "Median of {repeats} runs each. \"Fake model alone\" replays the server's own request to the fake \
         over a new connection, as the server makes it. The original: {} ms.",
        original::AGENT_OVERHEAD_MILLIS
    ));
    Ok(table)
}

/// The median `new_message` round trip on `route`.
async fn round_trips(conn: &mut Conn, fake: &FakeModel, route: Route, repeats: usize) -> anyhow::Result<Duration> {
    let mut samples = Samples::default();
    for _ in 0..repeats {
        fake.push_json(answer(route));
        let started = Instant::now();
        conn.send_action(&request(route)).await?;
        match (route, conn.reply().await?) {
            (Route::NewFile, ServerFrame::Action(ServerAction::AgentResponse(_))) => {}
            (Route::PlainAnswer, ServerFrame::Text(_)) => {}
            (_, other) => bail!("{route:?}: got {}", shown(&other)),
        }
        samples.push(started.elapsed());
    }
    Ok(samples.median())
}

/// The median time the fake takes to answer the last request the server sent it.
async fn fake_alone(fake: &FakeModel, route: Route, repeats: usize) -> anyhow::Result<Duration> {
    let body: Value = fake
        .requests()
        .last()
        .context("the server called the model")?
        .body
        .clone();
    let url = format!("{}/chat/completions", fake.base_url());
    let http = reqwest::Client::new();
    let mut samples = Samples::default();
    for _ in 0..repeats {
        fake.push_json(answer(route));
        let started = Instant::now();
        http.post(&url)
            .json(&body)
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        samples.push(started.elapsed());
    }
    Ok(samples.median())
}

fn request(route: Route) -> ClientAction {
    let (prompt, is_first_prompt, is_chat_or_composer) = match route {
        Route::NewFile => ("Write a booking flow", true, true),
        Route::PlainAnswer => ("What does a loop hold?", false, false),
    };
    ClientAction::NewMessage(NewMessage {
        model: MODEL.into(),
        prompt: prompt.into(),
        is_first_prompt,
        is_chat_or_composer,
        selected_filename: None,
    })
}

fn answer(route: Route) -> Value {
    match route {
        Route::NewFile => json!({"type": "based", "filename": "booking.based", "text": based_flow(20)}),
        Route::PlainAnswer => json!({"text": "One talk call."}),
    }
}

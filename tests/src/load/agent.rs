//! The agent's own cost: `new_message` round trips with a fake model that answers at once,
//! minus the time the fake itself takes to answer the same requests (the run's model and
//! validation calls replayed one after another, as the server makes them).
//!
//! Kafka makes one model call on these routes; the original makes three (context filter,
//! tool selection, the answer) plus, for a new file, one validation call.

use std::time::Duration;

use anyhow::{Context, bail};
use kafka_protocol::ws::{ClientAction, NewMessage};
use tokio::time::Instant;

use super::api::{Api, run_tag};
use super::fake::{Fake, Intent};
use super::payload::based_flow;
use super::report::{Table, millis, original, versus};
use super::stats::Samples;
use super::ws::{Conn, Reply};

pub const MODEL: &str = "load-fake";
const ANSWER: &str = "One talk call.";

/// The two routes that need no file to exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// A first prompt: the agent writes, validates and saves a new file.
    NewFile,
    /// Outside chat/composer mode: a plain answer, nothing validated or saved but the text.
    PlainAnswer,
}

impl Route {
    pub const ALL: [Route; 2] = [Route::NewFile, Route::PlainAnswer];

    pub fn label(self) -> &'static str {
        match self {
            Route::NewFile => "new file",
            Route::PlainAnswer => "answer",
        }
    }
}

/// One route's medians.
#[derive(Debug, Clone, Copy)]
pub struct RouteTimes {
    pub round_trip: Duration,
    /// The fake answering one run's calls, replayed.
    pub model_alone: Duration,
    /// Model and validation calls the server made in one run.
    pub calls: usize,
}

impl RouteTimes {
    pub fn overhead(&self) -> Duration {
        self.round_trip.saturating_sub(self.model_alone)
    }
}

pub async fn run(api: &Api, repeats: usize) -> anyhow::Result<Table> {
    let fake = Fake::start().await?;
    let mut conn = open_session(api, &fake).await?;
    let mut table = Table::new(
        "Agent overhead (new_message, instant model)",
        &[
            "route",
            "round trip (median)",
            "fake model alone (median)",
            "server overhead",
            "vs original's earlier figure",
        ],
    );
    for route in Route::ALL {
        let times = measure(&mut conn, &fake, route, repeats).await?;
        table.row(vec![
            format!("{route:?}"),
            millis(times.round_trip),
            millis(times.model_alone),
            millis(times.overhead()),
            versus(
                times.overhead().as_secs_f64() * 1e3,
                original::AGENT_OVERHEAD_MILLIS,
                false,
            ),
        ]);
    }
    conn.close().await;
    table.note(format!(
        "Median of {repeats} runs each. \"Fake model alone\" replays the server's own requests to the fake \
         over new connections, as the server makes them. The original's earlier figure ({} ms) was \
         measured by another client; `kafka-load compare` measures both side by side.",
        original::AGENT_OVERHEAD_MILLIS
    ));
    Ok(table)
}

/// A new user with the fake registered as model `MODEL` and a session on a new chat.
pub async fn open_session(api: &Api, fake: &Fake) -> anyhow::Result<Conn> {
    let user = api
        .user_with_chats(&format!("agent-{}@example.com", run_tag()), 1)
        .await?;
    api.add_model(&user.user_id, MODEL, &fake.base_url()).await?;
    Ok(Conn::open(&api.ws_url(&user.chat_ids[0], false)).await?.conn)
}

/// `repeats` runs of `route`: the median round trip, and the median time of the fake alone
/// answering the last run's calls.
pub async fn measure(conn: &mut Conn, fake: &Fake, route: Route, repeats: usize) -> anyhow::Result<RouteTimes> {
    fake.expect(intent(route));
    let mut samples = Samples::default();
    let mut last_run = Vec::new();
    for _ in 0..repeats.max(1) {
        let mark = fake.mark();
        let started = Instant::now();
        conn.send_action(&request(route)).await?;
        let reply = conn.reply_any().await?;
        let elapsed = started.elapsed();
        match (route, &reply) {
            (Route::NewFile, _) if reply.action() == Some("agent_response") => {}
            (Route::PlainAnswer, Reply::Text(text)) if text == ANSWER => {}
            _ => bail!("{route:?}: got {}", reply.shown()),
        }
        samples.push(elapsed);
        last_run = fake.requests_since(mark);
    }
    if last_run.is_empty() {
        bail!("{route:?}: the server did not call the model");
    }
    let mut alone = Samples::default();
    for _ in 0..repeats.max(1) {
        alone.push(fake.replay(&last_run).await.context("replay the model calls")?);
    }
    Ok(RouteTimes {
        round_trip: samples.median(),
        model_alone: alone.median(),
        calls: last_run.len(),
    })
}

fn intent(route: Route) -> Intent {
    match route {
        Route::NewFile => Intent::NewFile {
            filename: "booking.based".into(),
            text: based_flow(20),
        },
        Route::PlainAnswer => Intent::Answer { text: ANSWER.into() },
    }
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

//! WebSocket echo: messages per second and round-trip percentiles at several session counts.
//! Each session has its own chat and sends the next text as soon as its echo arrives.

use std::time::Duration;

use tokio::time::Instant;

use super::actions::echo_once;
use super::api::{Api, run_tag};
use super::report::{Table, millis, original, rate, versus};
use super::stats::{Samples, Summary};
use super::ws::{Conn, open_many};

/// Connections opened at once while setting up a level.
const CONCURRENT_CONNECTS: usize = 64;

/// One session count's result.
pub struct Level {
    pub sessions: usize,
    pub summary: Summary,
    pub errors: Vec<anyhow::Error>,
}

/// A paced level: many sessions, each sending one message per `interval` — chat users
/// rather than a benchmark loop. Its p99 is the latency each of them sees.
#[derive(Debug, Clone, Copy)]
pub struct Paced {
    pub sessions: usize,
    pub interval: Duration,
}

pub async fn run(
    api: &Api,
    session_counts: &[usize],
    duration: Duration,
    paced: Option<Paced>,
) -> anyhow::Result<Table> {
    let most = session_counts
        .iter()
        .copied()
        .chain(paced.map(|p| p.sessions))
        .max()
        .unwrap_or(0);
    let chats = api
        .user_with_chats(&format!("echo-{}@example.com", run_tag()), most)
        .await?
        .chat_ids;
    let mut table = Table::new(
        "WebSocket echo",
        &[
            "sessions",
            "sending",
            "messages/s",
            "p50",
            "p99",
            "errors",
            "vs original's earlier figure",
        ],
    );
    for &sessions in session_counts {
        let level = measure(api, &chats[..sessions], duration, None).await;
        table.row(cells(&level, "as fast as echoes return"));
        if let Some(error) = level.errors.first() {
            table.note(format!("{sessions} sessions, first error: {error:#}"));
        }
    }
    if let Some(paced) = paced {
        let level = measure(api, &chats[..paced.sessions], duration, Some(paced.interval)).await;
        table.row(cells(
            &level,
            &format!("1 message / {} ms each", paced.interval.as_millis()),
        ));
        if let Some(error) = level.errors.first() {
            table.note(format!("paced level, first error: {error:#}"));
        }
    }
    table.note(format!(
        "{} s per level, one chat per session, legacy clients. The original, measured earlier by another client: {} messages/s at {} sessions \
         and no service at all from the {}th socket. A closed loop (each session sends again as soon \
         as its echo returns) measures throughput: by Little's law its latency is sessions ÷ rate. \
         The paced level measures the latency of many sessions at a steady rate.",
        duration.as_secs(),
        original::ECHO_PER_SECOND,
        original::ECHO_MAX_SESSIONS,
        original::ECHO_MAX_SESSIONS + 1
    ));
    Ok(table)
}

fn cells(level: &Level, sending: &str) -> Vec<String> {
    let comparison = if level.sessions <= original::ECHO_MAX_SESSIONS {
        versus(level.summary.per_second, original::ECHO_PER_SECOND, true)
    } else {
        "original: no service".into()
    };
    vec![
        level.sessions.to_string(),
        sending.to_owned(),
        rate(level.summary.per_second),
        millis(level.summary.p50),
        millis(level.summary.p99),
        level.errors.len().to_string(),
        comparison,
    ]
}

/// Runs one echo session per chat (legacy clients) until the deadline; each sends back to
/// back, or one message per `pace`.
pub async fn measure(api: &Api, chats: &[String], duration: Duration, pace: Option<Duration>) -> Level {
    let urls = chats.iter().map(|chat| api.ws_url(chat, false)).collect();
    let mut errors = Vec::new();
    let mut sessions = Vec::new();
    for opened in open_many(urls, CONCURRENT_CONNECTS).await {
        match opened {
            Ok(opened) => sessions.push(opened.conn),
            Err(error) => errors.push(error),
        }
    }
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = sessions
        .into_iter()
        .enumerate()
        .map(|(index, conn)| {
            // Paced sessions start spread over one interval, not all at once.
            let start = pace.map(|p| started + p.mul_f64(index as f64 / chats.len() as f64));
            tokio::spawn(echo_until(conn, index, deadline, start.zip(pace)))
        })
        .collect();
    let mut samples = Samples::default();
    for task in tasks {
        match task.await {
            Ok((session_samples, error)) => {
                samples.append(session_samples);
                errors.extend(error);
            }
            Err(panic) => errors.push(panic.into()),
        }
    }
    Level {
        sessions: chats.len(),
        summary: samples.summary(started.elapsed()),
        errors,
    }
}

/// Echoes numbered texts until the deadline, back to back or at `(first, every)`; stops at
/// the first error.
async fn echo_until(
    mut conn: Conn,
    session: usize,
    deadline: Instant,
    pace: Option<(Instant, Duration)>,
) -> (Samples, Option<anyhow::Error>) {
    let mut samples = Samples::default();
    let mut sent = 0u64;
    let mut ticks = pace.map(|(first, every)| {
        let mut ticks = tokio::time::interval_at(first, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks
    });
    while Instant::now() < deadline {
        if let Some(ticks) = &mut ticks {
            ticks.tick().await;
            if Instant::now() >= deadline {
                break;
            }
        }
        let started = Instant::now();
        if let Err(error) = echo_once(&mut conn, &format!("load {session} {sent}")).await {
            return (samples, Some(error));
        }
        samples.push(started.elapsed());
        sent += 1;
    }
    conn.close().await;
    (samples, None)
}

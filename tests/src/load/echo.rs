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
struct Level {
    sessions: usize,
    summary: Summary,
    errors: Vec<anyhow::Error>,
}

pub async fn run(api: &Api, session_counts: &[usize], duration: Duration) -> anyhow::Result<Table> {
    let most = session_counts.iter().copied().max().unwrap_or(0);
    let chats = api
        .user_with_chats(&format!("echo-{}@load.test", run_tag()), most)
        .await?
        .chat_ids;
    let mut table = Table::new(
        "WebSocket echo",
        &["sessions", "messages/s", "p50", "p99", "errors", "vs original"],
    );
    for &sessions in session_counts {
        let level = measure(api, &chats[..sessions], duration).await;
        table.row(cells(&level));
        if let Some(error) = level.errors.first() {
            table.note(format!("{sessions} sessions, first error: {error:#}"));
        }
    }
    table.note(format!(
        "{} s per level, one chat per session, legacy clients. The original: {} messages/s at {} sessions \
         and no service at all from the {}th socket.",
        duration.as_secs(),
        original::ECHO_PER_SECOND,
        original::ECHO_MAX_SESSIONS,
        original::ECHO_MAX_SESSIONS + 1
    ));
    Ok(table)
}

fn cells(level: &Level) -> Vec<String> {
    let comparison = if level.sessions <= original::ECHO_MAX_SESSIONS {
        versus(level.summary.per_second, original::ECHO_PER_SECOND, true)
    } else {
        "original: no service".into()
    };
    vec![
        level.sessions.to_string(),
        rate(level.summary.per_second),
        millis(level.summary.p50),
        millis(level.summary.p99),
        level.errors.len().to_string(),
        comparison,
    ]
}

/// Runs one echo session per chat until the deadline.
async fn measure(api: &Api, chats: &[String], duration: Duration) -> Level {
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
        .map(|(index, conn)| tokio::spawn(echo_until(conn, index, deadline)))
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

/// Echoes numbered texts until the deadline; stops at the first error.
async fn echo_until(mut conn: Conn, session: usize, deadline: Instant) -> (Samples, Option<anyhow::Error>) {
    let mut samples = Samples::default();
    let mut sent = 0u64;
    while Instant::now() < deadline {
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

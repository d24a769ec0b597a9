//! `/auth/login` under concurrency: a user with many chats logs in again and again from
//! several clients at once, each on its own connection.

use std::time::Duration;

use tokio::time::Instant;

use super::api::{Api, run_tag};
use super::report::{Table, millis, original, rate, versus};
use super::stats::{Samples, Summary};

pub async fn run(api: &Api, clients: usize, chats: usize, duration: Duration) -> anyhow::Result<Table> {
    let email = format!("login-{}@example.com", run_tag());
    api.user_with_chats(&email, chats).await?;
    let (summary, errors) = measure(api, &email, clients, duration).await?;

    let mut table = Table::new(
        "POST /auth/login",
        &[
            "clients",
            "chats",
            "requests/s",
            "p50",
            "p99",
            "errors",
            "vs original's earlier figure (rate, p99)",
        ],
    );
    table.row(vec![
        clients.to_string(),
        chats.to_string(),
        rate(summary.per_second),
        millis(summary.p50),
        millis(summary.p99),
        errors.len().to_string(),
        format!(
            "{}, {}",
            versus(summary.per_second, original::LOGIN_PER_SECOND, true),
            versus(summary.p99.as_secs_f64() * 1e3, original::LOGIN_P99_MILLIS, false)
        ),
    ]);
    if let Some(error) = errors.first() {
        table.note(format!("First error: {error:#}"));
    }
    table.note(format!(
        "{} s. The original, measured earlier by another client: {} requests/s, p99 {} ms.",
        duration.as_secs(),
        original::LOGIN_PER_SECOND,
        original::LOGIN_P99_MILLIS
    ));
    Ok(table)
}

/// `clients` clients, each on its own connection, logging `email` in back to back for
/// `duration`: the summary of their round trips and the errors that stopped a client.
pub async fn measure(
    api: &Api,
    email: &str,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<(Summary, Vec<anyhow::Error>)> {
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|_| tokio::spawn(login_until(api.another_client(), email.to_owned(), deadline)))
        .collect();
    let mut samples = Samples::default();
    let mut errors = Vec::new();
    for task in tasks {
        let (client_samples, error) = task.await?;
        samples.append(client_samples);
        errors.extend(error);
    }
    Ok((samples.summary(started.elapsed()), errors))
}

/// Logs in back to back until the deadline; stops at the first error.
async fn login_until(api: Api, email: String, deadline: Instant) -> (Samples, Option<anyhow::Error>) {
    let mut samples = Samples::default();
    while Instant::now() < deadline {
        let started = Instant::now();
        if let Err(error) = api.login_overview(&email).await {
            return (samples, Some(error));
        }
        samples.push(started.elapsed());
    }
    (samples, None)
}

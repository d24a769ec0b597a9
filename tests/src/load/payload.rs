//! The initial payload of a chat whose 200-line `.based` file has many versions: the time
//! from connect to payload and its size, for a legacy and a protocol-2 client.
//!
//! The versions are made as a user would: the agent (a fake model answering instantly)
//! writes the file and edits one line, then reverts alternate between version 1 and 2.

use anyhow::{Context, bail};
use kafka_protocol::ws::{ClientAction, NewMessage};
use serde_json::Value;

use super::actions::revert;
use super::agent::MODEL;
use super::api::{Api, run_tag};
use super::fake::{Fake, Intent};
use super::report::{Table, megabytes, millis, original, versus};
use super::stats::Samples;
use super::ws::Conn;

pub const FILE_LINES: usize = 200;
const FILENAME: &str = "flow.based";
/// Connections measured per chat and client kind; the median is reported.
pub const REPEATS: usize = 5;

pub async fn run(api: &Api, version_counts: &[usize]) -> anyhow::Result<Table> {
    let fake = Fake::start().await?;
    let user = api
        .user_with_chats(&format!("payload-{}@example.com", run_tag()), 0)
        .await?;
    api.add_model(&user.user_id, MODEL, &fake.base_url()).await?;
    let mut table = Table::new(
        "Initial payload",
        &[
            "versions",
            "client",
            "connect to payload (median)",
            "size",
            "vs original's earlier figure (time, size)",
        ],
    );
    // The lean payload's time at the fewest versions: the yardstick for its growth.
    let mut lean_base: Option<f64> = None;
    for &versions in version_counts {
        let chat = api
            .new_chat(&user.user_id, &user.workspace_id, "Payload")
            .await?
            .chat_id;
        make_versions(api, &fake, &chat, versions).await?;
        for client in [Client::Legacy, Client::V2Lean] {
            let (time, bytes) = measure(api, &chat, client).await?;
            let ms = time.as_secs_f64() * 1e3;
            let comparison = match client {
                Client::Legacy if versions == original::PAYLOAD_VERSIONS => format!(
                    "{}, {}",
                    versus(ms, original::PAYLOAD_MILLIS, false),
                    versus(bytes as f64, original::PAYLOAD_BYTES, false)
                ),
                Client::V2Lean => {
                    let base = *lean_base.get_or_insert(ms);
                    format!("{:.1}× its time at {} versions", ms / base, version_counts[0])
                }
                _ => "—".into(),
            };
            table.row(vec![
                versions.to_string(),
                client.label().into(),
                millis(time),
                megabytes(bytes as f64),
                comparison,
            ]);
        }
    }
    table.note(format!(
        "A {FILE_LINES}-line file; versions by one agent edit and alternating reverts, each with its \
         conversation entry. Median of {REPEATS} connections. legacy: the brief's payload (every \
         version's diff, the whole conversation); v2 lean: `?v=2&lean=1` (versions without diffs, the \
         newest 20 messages). The original, measured earlier by another client: {} ms and {} at {} versions.",
        original::PAYLOAD_MILLIS,
        megabytes(original::PAYLOAD_BYTES),
        original::PAYLOAD_VERSIONS
    ));
    Ok(table)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    Legacy,
    V2Lean,
}

impl Client {
    pub fn label(self) -> &'static str {
        match self {
            Client::Legacy => "legacy",
            Client::V2Lean => "v2 lean",
        }
    }

    fn url(self, api: &Api, chat: &str) -> String {
        match self {
            Client::Legacy => api.ws_url(chat, false),
            Client::V2Lean => api.ws_url_lean(chat),
        }
    }
}

/// Median time from connect to payload over a few connections, and the payload's size.
pub async fn measure(api: &Api, chat: &str, client: Client) -> anyhow::Result<(std::time::Duration, usize)> {
    let mut times = Samples::default();
    let mut bytes = 0;
    for _ in 0..REPEATS {
        let opened = Conn::open(&client.url(api, chat)).await?;
        times.push(opened.elapsed);
        bytes = opened.payload.len();
        opened.conn.close().await;
    }
    Ok((times.median(), bytes))
}

/// Gives the chat a `.based` file with `versions` versions (at least 2), as a user of either
/// server would: the agent writes it (version 1) and rewords one line (version 2), then
/// reverts alternate between the two. Each step on a new session, since the original reads
/// a chat's files only when a session opens.
pub async fn make_versions(api: &Api, fake: &Fake, chat: &str, versions: usize) -> anyhow::Result<()> {
    let text = based_flow(FILE_LINES);
    fake.expect(Intent::NewFile {
        filename: FILENAME.into(),
        text: text.clone(),
    });
    agent_edit(api, chat, "Write a booking flow", true).await?;

    let edited = text.replacen("Step 100 of", "Step 100 (edited) of", 1);
    fake.expect(Intent::Diff {
        filename: FILENAME.into(),
        patch: kafka_server::diff::make_patch(&text, &edited, FILENAME, FILENAME),
    });
    agent_edit(api, chat, "Reword step 100", false).await?;

    let opened = Conn::open(&api.ws_url(chat, false)).await?;
    let first_two = version_ids(&opened.payload)?;
    let mut conn = opened.conn;
    for made in 2..versions {
        revert(&mut conn, FILENAME, &first_two[made % 2]).await?;
    }
    conn.close().await;
    Ok(())
}

/// A valid Based flow of `lines` lines (at least 5): numbered steps, then a loop.
pub fn based_flow(lines: usize) -> String {
    let steps = lines.saturating_sub(4);
    let mut text: String = (1..=steps)
        .map(|step| format!("step_{step} = say(\"Step {step} of the booking flow.\", exact=True)\n"))
        .collect();
    text.push_str(concat!(
        "loop:\n",
        "    booking = talk(\"Ask for the party size.\", True)\n",
        "until \"user gave party size\":\n",
        "    say(\"Booked.\", exact=True)\n",
    ));
    text
}

/// One `new_message` on a new session that must end in an `agent_response` (a new file
/// on a first prompt, else a diff of the selected file).
async fn agent_edit(api: &Api, chat: &str, prompt: &str, first: bool) -> anyhow::Result<()> {
    let mut conn = Conn::open(&api.ws_url(chat, false)).await?.conn;
    conn.send_action(&ClientAction::NewMessage(NewMessage {
        model: MODEL.into(),
        prompt: prompt.into(),
        is_first_prompt: first,
        is_chat_or_composer: true,
        selected_filename: (!first).then(|| FILENAME.into()),
    }))
    .await?;
    let reply = conn.reply_any().await?;
    conn.close().await;
    match reply.action() {
        Some("agent_response") => Ok(()),
        _ => bail!("agent ({prompt}): got {}", reply.shown()),
    }
}

/// The IDs of the first two versions of the payload's file (read as JSON: both servers
/// list `chat_files_based[{name, versions[{version_id}]}]`).
fn version_ids(payload: &str) -> anyhow::Result<[String; 2]> {
    let payload: Value = serde_json::from_str(payload)?;
    let file = payload["chat_files_based"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["name"] == FILENAME)
        .context("the agent's file is in the payload")?;
    let ids: Vec<&str> = file["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["version_id"].as_str())
        .collect();
    match ids.as_slice() {
        [first, second, ..] => Ok([first.to_string(), second.to_string()]),
        _ => bail!("expected two versions after the agent's edit, found {}", ids.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_flow_is_valid_based_of_the_asked_length() {
        let text = based_flow(FILE_LINES);
        assert_eq!(text.lines().count(), FILE_LINES);
        assert!(!kafka_server::based::has_errors(&kafka_server::based::validate(&text)));
        let edited = text.replacen("Step 100 of", "Step 100 (edited) of", 1);
        assert_ne!(edited, text);
    }
}

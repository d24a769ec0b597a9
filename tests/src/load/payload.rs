//! The initial payload of a chat whose 200-line `.based` file has many versions: the time
//! from connect to payload and its size, for a legacy and a protocol-2 client.
//!
//! The versions are made as a user would: upload the file, have the agent (a fake model
//! answering instantly) edit one line, then revert alternately to version 1 and version 2.

use anyhow::{Context, bail};
use kafka_protocol::ws::{ClientAction, InitialPayload, NewMessage, ServerAction, ServerFrame};
use serde_json::json;

use super::actions::{revert, shown, upload};
use super::api::{Api, run_tag};
use super::report::{Table, megabytes, millis, original, versus};
use super::stats::Samples;
use super::ws::Conn;
use crate::fake_model::FakeModel;

pub const FILE_LINES: usize = 200;
const FILENAME: &str = "flow.based";
const MODEL: &str = "load-fake";
/// Connections measured per chat and client kind; the median is reported.
const REPEATS: usize = 5;

pub async fn run(api: &Api, version_counts: &[usize]) -> anyhow::Result<Table> {
    let fake = FakeModel::start().await;
    let user = api
        .user_with_chats(&format!("payload-{}@load.test", run_tag()), 0)
        .await?;
    api.add_model(&user.user_id, MODEL, &fake.base_url()).await?;
    let mut table = Table::new(
        "Initial payload",
        &[
            "versions",
            "client",
            "connect to payload (median)",
            "size",
            "vs original (time, size)",
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
         newest 20 messages). The original: {} ms and {} at {} versions.",
        original::PAYLOAD_MILLIS,
        megabytes(original::PAYLOAD_BYTES),
        original::PAYLOAD_VERSIONS
    ));
    Ok(table)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    Legacy,
    V2Lean,
}

impl Client {
    fn label(self) -> &'static str {
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
async fn measure(api: &Api, chat: &str, client: Client) -> anyhow::Result<(std::time::Duration, usize)> {
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

/// Gives the chat a `.based` file with `versions` versions (at least 2).
pub async fn make_versions(api: &Api, fake: &FakeModel, chat: &str, versions: usize) -> anyhow::Result<()> {
    let original_text = based_flow(FILE_LINES);
    let mut conn = Conn::open(&api.ws_url(chat, false)).await?.conn;
    upload(&mut conn, FILENAME, &original_text).await?;
    edit_one_line(&mut conn, fake, &original_text).await?;
    conn.close().await;

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

/// Version 2: the agent, through the fake model's triage and diff, rewords one line.
async fn edit_one_line(conn: &mut Conn, fake: &FakeModel, text: &str) -> anyhow::Result<()> {
    let edited = text.replacen("Step 100 of", "Step 100 (edited) of", 1);
    let patch = kafka_server::diff::make_patch(text, &edited, FILENAME, FILENAME);
    fake.push_json(json!({"summary": "edit", "extraction_indices": [], "genNewFile": false,
                          "files_list": [], "plain_response": false, "tools": []}));
    fake.push_json(json!({"type": "diff", "filename": FILENAME, "text": patch}));
    conn.send_action(&ClientAction::NewMessage(NewMessage {
        model: MODEL.into(),
        prompt: "Reword step 100".into(),
        is_first_prompt: false,
        is_chat_or_composer: true,
        selected_filename: Some(FILENAME.into()),
    }))
    .await?;
    match conn.reply().await? {
        ServerFrame::Action(ServerAction::AgentResponse(_)) => Ok(()),
        other => bail!("agent edit: got {}", shown(&other)),
    }
}

/// The IDs of the first two versions of the payload's file.
fn version_ids(payload: &str) -> anyhow::Result<[String; 2]> {
    let payload: InitialPayload = serde_json::from_str(payload)?;
    let file = payload
        .chat_files_based
        .iter()
        .find(|f| f.name == FILENAME)
        .context("the uploaded file is in the payload")?;
    match file.versions.as_slice() {
        [first, second, ..] => Ok([first.version_id.clone(), second.version_id.clone()]),
        _ => bail!(
            "expected two versions after the agent's edit, found {}",
            file.versions.len()
        ),
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

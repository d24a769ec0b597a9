//! Soak: several clients mix echo, uploads, reverts, reconnects and deletes for a while and
//! check every answer. Each client keeps its own record of what its chat must hold and
//! compares it with the initial payload at every reconnect; every few hundred messages it
//! deletes its workspace (which must close its socket) and starts over in a new one.
//!
//! Afterwards every client checks its chat and workspace once more through the API, the
//! database gets a foreign-key check, and the report shows the server's RSS over the run.

use std::time::Duration;

use anyhow::{Context, ensure};
use kafka_protocol::ws::InitialPayload;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::actions::{delete_file, echo_once, revert, upload};
use super::api::{Api, run_tag};
use super::payload::based_flow;
use super::report::{Table, megabytes};
use super::target::Target;
use super::ws::Conn;

/// A client starts over in a new workspace once its chat holds this many messages, so that
/// payloads stay small and deletes of whole workspaces are part of the mix.
const MESSAGES_PER_WORKSPACE: usize = 300;
/// How long a deleted chat's socket may stay open.
const CLOSE_WAIT: Duration = Duration::from_secs(10);
const RSS_EVERY: Duration = Duration::from_millis(500);
/// Errors kept verbatim in the report; the rest are only counted.
const ERRORS_SHOWN: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Echo,
    UploadBased,
    UploadText,
    Revert,
    Reconnect,
    Delete,
}

/// The mix each client cycles through, each from its own starting point.
const MIX: [Action; 12] = [
    Action::Echo,
    Action::UploadBased,
    Action::Echo,
    Action::Revert,
    Action::Echo,
    Action::UploadText,
    Action::Echo,
    Action::Revert,
    Action::Reconnect,
    Action::Echo,
    Action::Delete,
    Action::Revert,
];

#[derive(Debug, Clone)]
pub struct SoakConfig {
    pub clients: usize,
    pub duration: Duration,
}

/// Actions completed, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub echoes: u64,
    pub uploads: u64,
    pub reverts: u64,
    pub reconnects: u64,
    pub deletes: u64,
    pub workspace_rotations: u64,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.echoes += other.echoes;
        self.uploads += other.uploads;
        self.reverts += other.reverts;
        self.reconnects += other.reconnects;
        self.deletes += other.deletes;
        self.workspace_rotations += other.workspace_rotations;
    }

    pub fn total(&self) -> u64 {
        self.echoes + self.uploads + self.reverts + self.reconnects + self.deletes + self.workspace_rotations
    }
}

/// The server's RSS during the soak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RssTrack {
    pub before: u64,
    /// Halfway through: growth after this point would mean memory is not bounded.
    pub halfway: u64,
    pub peak: u64,
    pub end: u64,
}

#[derive(Debug, Clone)]
pub struct SoakReport {
    pub config: SoakConfig,
    pub elapsed: Duration,
    pub counts: Counts,
    pub error_count: usize,
    pub errors: Vec<String>,
    pub foreign_key_violations: Option<usize>,
    pub rss: Option<RssTrack>,
}

pub async fn run(target: &Target, config: &SoakConfig) -> anyhow::Result<SoakReport> {
    let stop_sampling = CancellationToken::new();
    let sampler = tokio::spawn(sample_rss(target.clone(), stop_sampling.clone()));
    let started = Instant::now();
    let deadline = started + config.duration;
    let tag = run_tag();
    let clients: Vec<_> = (0..config.clients)
        .map(|index| {
            tokio::spawn(soak_client(
                target.api.another_client(),
                format!("soak-{index}-{tag}"),
                index,
                deadline,
            ))
        })
        .collect();
    let mut counts = Counts::default();
    let mut errors = Vec::new();
    for client in clients {
        let (client_counts, client_errors) = client.await?;
        counts.add(client_counts);
        errors.extend(client_errors);
    }
    let elapsed = started.elapsed();
    stop_sampling.cancel();
    let samples = sampler.await?;
    Ok(SoakReport {
        config: config.clone(),
        elapsed,
        counts,
        error_count: errors.len(),
        errors: errors.into_iter().take(ERRORS_SHOWN).collect(),
        foreign_key_violations: target.foreign_key_violations().await?,
        rss: rss_track(&samples),
    })
}

/// One client's whole run: set up, act until the deadline, check everything at the end.
async fn soak_client(api: Api, name: String, index: usize, deadline: Instant) -> (Counts, Vec<String>) {
    let mut client = match SoakClient::start(api, name.clone(), index % 2 == 1).await {
        Ok(client) => client,
        Err(error) => return (Counts::default(), vec![format!("{name}: setup: {error:#}")]),
    };
    let mut errors = Vec::new();
    if let Err(error) = client.act_until(index, deadline).await {
        errors.push(format!("{name}: {error:#}"));
    } else if let Err(error) = client.verify_final().await {
        errors.push(format!("{name}: final check: {error:#}"));
    }
    (client.counts, errors)
}

/// What a client's chat must hold, by the client's own record.
#[derive(Debug, Default)]
struct Expected {
    messages: usize,
    based: Vec<BasedRecord>,
    /// IDs of the chat's text files.
    text: Vec<String>,
}

#[derive(Debug)]
struct BasedRecord {
    id: String,
    name: String,
    versions: usize,
    /// Learnt from the last initial payload; reverts pick from these.
    version_ids: Vec<String>,
}

struct SoakClient {
    api: Api,
    email: String,
    v2: bool,
    user_id: String,
    workspace_id: String,
    chat_id: String,
    conn: Conn,
    expected: Expected,
    counts: Counts,
}

impl SoakClient {
    async fn start(api: Api, name: String, v2: bool) -> anyhow::Result<Self> {
        let email = format!("{name}@example.com");
        let user_id = api.login(&email).await?.user_id;
        let (workspace_id, chat_id) = new_workspace_with_chat(&api, &user_id).await?;
        let conn = Conn::open(&api.ws_url(&chat_id, v2)).await?.conn;
        Ok(Self {
            api,
            email,
            v2,
            user_id,
            workspace_id,
            chat_id,
            conn,
            expected: Expected::default(),
            counts: Counts::default(),
        })
    }

    /// Cycles through the mix until the deadline; stops at the first error.
    async fn act_until(&mut self, first_step: usize, deadline: Instant) -> anyhow::Result<()> {
        let mut step = first_step;
        while Instant::now() < deadline {
            let action = MIX[step % MIX.len()];
            self.act(action, step)
                .await
                .with_context(|| format!("step {step}, {action:?}"))?;
            if self.expected.messages >= MESSAGES_PER_WORKSPACE {
                self.start_over().await.context("new workspace")?;
            }
            step += 1;
        }
        Ok(())
    }

    async fn act(&mut self, action: Action, step: usize) -> anyhow::Result<()> {
        match action {
            Action::Echo => self.echo(step).await,
            Action::UploadBased => self.upload_based(step).await,
            Action::UploadText => self.upload_text(step).await,
            Action::Revert => self.revert(step).await,
            Action::Reconnect => self.reconnect().await,
            Action::Delete => self.delete(step).await,
        }
    }

    async fn echo(&mut self, step: usize) -> anyhow::Result<()> {
        echo_once(&mut self.conn, &format!("soak {} {step}", self.email)).await?;
        self.expected.messages += 2;
        self.counts.echoes += 1;
        Ok(())
    }

    async fn upload_based(&mut self, step: usize) -> anyhow::Result<()> {
        let name = format!("flow-{step}.based");
        let id = upload(&mut self.conn, &name, &based_flow(10 + step % 40)).await?;
        self.expected.based.push(BasedRecord {
            id,
            name,
            versions: 1,
            version_ids: Vec::new(),
        });
        self.uploaded();
        Ok(())
    }

    async fn upload_text(&mut self, step: usize) -> anyhow::Result<()> {
        let content = format!("Notes of step {step}.\n").repeat(1 + step % 50);
        let id = upload(&mut self.conn, &format!("notes-{step}.txt"), &content).await?;
        self.expected.text.push(id);
        self.uploaded();
        Ok(())
    }

    fn uploaded(&mut self) {
        self.expected.messages += 1;
        self.counts.uploads += 1;
    }

    /// Reverts a file to one of its known versions; with none known yet, reconnects to learn them.
    async fn revert(&mut self, step: usize) -> anyhow::Result<()> {
        let known: Vec<usize> = (0..self.expected.based.len())
            .filter(|&i| !self.expected.based[i].version_ids.is_empty())
            .collect();
        let Some(&file_index) = known.get(step % known.len().max(1)) else {
            return self.reconnect().await;
        };
        let file = &mut self.expected.based[file_index];
        let version = &file.version_ids[step % file.version_ids.len()];
        revert(&mut self.conn, &file.name, version).await?;
        file.versions += 1;
        self.expected.messages += 1;
        self.counts.reverts += 1;
        Ok(())
    }

    /// Deletes the oldest text or `.based` file, alternately; echoes when there is none.
    async fn delete(&mut self, step: usize) -> anyhow::Result<()> {
        let prefer_text = (step / MIX.len()).is_multiple_of(2);
        let id = match (
            prefer_text,
            self.expected.text.is_empty(),
            self.expected.based.is_empty(),
        ) {
            (_, true, true) => return self.echo(step).await,
            (true, false, _) | (false, false, true) => self.expected.text.remove(0),
            _ => self.expected.based.remove(0).id,
        };
        delete_file(&mut self.conn, &id).await?;
        self.expected.messages += 1;
        self.counts.deletes += 1;
        Ok(())
    }

    /// Opens a new connection, checks its payload against the record, and learns version IDs.
    async fn reconnect(&mut self) -> anyhow::Result<()> {
        let opened = Conn::open(&self.api.ws_url(&self.chat_id, self.v2)).await?;
        let old = std::mem::replace(&mut self.conn, opened.conn);
        old.close().await;
        let payload: InitialPayload = serde_json::from_str(&opened.payload)?;
        self.check(&payload)?;
        for file in &mut self.expected.based {
            if let Some(sent) = payload.chat_files_based.iter().find(|f| f.file_id == file.id) {
                file.version_ids = sent.versions.iter().map(|v| v.version_id.clone()).collect();
            }
        }
        self.counts.reconnects += 1;
        Ok(())
    }

    fn check(&self, payload: &InitialPayload) -> anyhow::Result<()> {
        let expected = &self.expected;
        ensure!(
            payload.conversation.len() == expected.messages,
            "the conversation has {} entries; the client made {}",
            payload.conversation.len(),
            expected.messages
        );
        let text: Vec<&str> = payload.chat_files_text.iter().map(|f| f.file_id.as_str()).collect();
        ensure!(
            same_ids(&text, &expected.text),
            "text files {text:?}; expected {:?}",
            expected.text
        );
        ensure!(
            payload.chat_files_based.len() == expected.based.len(),
            "{} .based files; expected {}",
            payload.chat_files_based.len(),
            expected.based.len()
        );
        for file in &expected.based {
            let sent = payload
                .chat_files_based
                .iter()
                .find(|f| f.file_id == file.id)
                .with_context(|| format!("{} is missing", file.name))?;
            ensure!(
                sent.versions.len() == file.versions,
                "{} has {} versions; expected {}",
                file.name,
                sent.versions.len(),
                file.versions
            );
        }
        let files = expected.text.len() + expected.based.len();
        ensure!(
            payload.workspace_files.len() == files,
            "the workspace has {} files; expected {files}",
            payload.workspace_files.len()
        );
        Ok(())
    }

    /// Checks the chat, then deletes its workspace over REST (the server must close the
    /// socket) and continues in a new one.
    async fn start_over(&mut self) -> anyhow::Result<()> {
        self.reconnect().await?;
        self.api.delete_workspace(&self.workspace_id).await?;
        ensure!(
            self.conn.closed_within(CLOSE_WAIT).await,
            "the socket of a deleted chat stayed open"
        );
        let (workspace_id, chat_id) = new_workspace_with_chat(&self.api, &self.user_id).await?;
        let opened = Conn::open(&self.api.ws_url(&chat_id, self.v2)).await?;
        self.conn = opened.conn;
        self.workspace_id = workspace_id;
        self.chat_id = chat_id;
        self.expected = Expected::default();
        self.counts.workspace_rotations += 1;
        Ok(())
    }

    /// The payload once more, then the login overview: only the default workspace and the
    /// current one are left, with the expected files, chat and version count.
    async fn verify_final(&mut self) -> anyhow::Result<()> {
        self.reconnect().await?;
        let login = self.api.login(&self.email).await?;
        ensure!(
            login.workspaces.len() == 2,
            "{} workspaces; deleted ones must be gone",
            login.workspaces.len()
        );
        let workspace = login
            .workspaces
            .iter()
            .find(|w| w.id == self.workspace_id)
            .context("the current workspace is missing")?;
        let files = self.expected.text.len() + self.expected.based.len();
        ensure!(
            workspace.files.len() == files,
            "{} files at login; expected {files}",
            workspace.files.len()
        );
        let [chat] = workspace.chats.as_slice() else {
            anyhow::bail!("{} chats; expected 1", workspace.chats.len());
        };
        let versions: usize = self.expected.based.iter().map(|f| f.versions).sum();
        ensure!(
            chat.id == self.chat_id && chat.num_versions == versions as i64,
            "chat {} with {} versions; expected {} with {versions}",
            chat.id,
            chat.num_versions,
            self.chat_id
        );
        Ok(())
    }
}

async fn new_workspace_with_chat(api: &Api, user_id: &str) -> anyhow::Result<(String, String)> {
    let workspace_id = api.new_workspace(user_id, "Soak").await?.workspace_id;
    let chat_id = api.new_chat(user_id, &workspace_id, "Soak chat").await?.chat_id;
    Ok((workspace_id, chat_id))
}

fn same_ids(actual: &[&str], expected: &[String]) -> bool {
    let mut actual = actual.to_vec();
    let mut expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    actual.sort_unstable();
    expected.sort_unstable();
    actual == expected
}

/// Reads the server's RSS until cancelled; empty when it is unknown.
async fn sample_rss(target: Target, stop: CancellationToken) -> Vec<u64> {
    let mut samples: Vec<u64> = target.rss_bytes().into_iter().collect();
    if samples.is_empty() {
        return samples;
    }
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(RSS_EVERY) => samples.extend(target.rss_bytes()),
        }
    }
    samples
}

fn rss_track(samples: &[u64]) -> Option<RssTrack> {
    Some(RssTrack {
        before: *samples.first()?,
        halfway: samples[samples.len() / 2],
        peak: *samples.iter().max()?,
        end: *samples.last()?,
    })
}

impl SoakReport {
    /// No error, a clean foreign-key check (when it could run).
    pub fn is_clean(&self) -> bool {
        self.error_count == 0 && self.foreign_key_violations.unwrap_or(0) == 0
    }

    pub fn table(&self) -> Table {
        let c = &self.counts;
        let mut table = Table::new(
            "Soak",
            &[
                "clients",
                "seconds",
                "actions",
                "actions/s",
                "echo",
                "uploads",
                "reverts",
                "reconnects",
                "deletes",
                "new workspaces",
                "errors",
                "FK violations",
            ],
        );
        let seconds = self.elapsed.as_secs_f64();
        table.row(vec![
            self.config.clients.to_string(),
            format!("{seconds:.0}"),
            c.total().to_string(),
            format!("{:.0}", c.total() as f64 / seconds),
            c.echoes.to_string(),
            c.uploads.to_string(),
            c.reverts.to_string(),
            c.reconnects.to_string(),
            c.deletes.to_string(),
            c.workspace_rotations.to_string(),
            self.error_count.to_string(),
            self.foreign_key_violations
                .map_or("not checked".into(), |n| n.to_string()),
        ]);
        match &self.rss {
            Some(rss) => table.note(format!(
                "Server RSS: {} before, {} halfway, {} at the end, {} at peak.",
                megabytes(rss.before as f64),
                megabytes(rss.halfway as f64),
                megabytes(rss.end as f64),
                megabytes(rss.peak as f64)
            )),
            None => table.note("Server RSS unknown: pass --pid or use --spawn."),
        }
        for error in &self.errors {
            table.note(format!("Error: {error}"));
        }
        table
    }
}

//! Server memory per idle WebSocket: RSS before and after opening many sessions that only
//! read their initial payload, spread over a number of chats.

use std::time::Duration;

use anyhow::bail;

use super::api::run_tag;
use super::report::{Table, megabytes, original, versus};
use super::target::Target;
use super::ws::{Conn, open_many};

/// Idle sessions share this many chats, as many clients of few chats would.
const CHATS: usize = 100;
const CONCURRENT_CONNECTS: usize = 128;
/// Time for the server's allocator and queues to settle before RSS is read.
const SETTLE: Duration = Duration::from_secs(2);
/// File descriptors this process needs besides the sockets (runtime, stdio, HTTP pool).
const SPARE_FILES: u64 = 64;

pub async fn run(target: &Target, sockets: usize, open_files_limit: u64) -> anyhow::Result<Table> {
    if open_files_limit < sockets as u64 + SPARE_FILES {
        bail!(
            "{sockets} sockets need an open-files limit above {sockets}; this process has {open_files_limit} (raise the hard limit: ulimit -Hn)"
        );
    }
    let chats = target
        .api
        .user_with_chats(&format!("memory-{}@example.com", run_tag()), CHATS)
        .await?
        .chat_ids;
    tokio::time::sleep(SETTLE).await;
    let before = target.rss_bytes();
    let urls = (0..sockets)
        .map(|index| target.api.ws_url(&chats[index % chats.len()], false))
        .collect();
    let (open, errors) = open_all(urls).await;
    tokio::time::sleep(SETTLE).await;
    let after = target.rss_bytes();
    let opened = open.len();
    for conn in open {
        conn.close().await;
    }
    tokio::time::sleep(SETTLE).await;
    let after_close = target.rss_bytes();
    Ok(table(sockets, opened, errors, [before, after, after_close]))
}

/// The sessions that opened, and the errors of those that did not.
async fn open_all(urls: Vec<String>) -> (Vec<Conn>, Vec<anyhow::Error>) {
    let mut open = Vec::new();
    let mut errors = Vec::new();
    for opened in open_many(urls, CONCURRENT_CONNECTS).await {
        match opened {
            Ok(opened) => open.push(opened.conn),
            Err(error) => errors.push(error),
        }
    }
    (open, errors)
}

fn table(sockets: usize, opened: usize, errors: Vec<anyhow::Error>, rss: [Option<u64>; 3]) -> Table {
    let mut table = Table::new(
        "Memory per idle WebSocket",
        &[
            "sockets open",
            "RSS before",
            "RSS with sockets",
            "RSS after closing",
            "per socket",
            "vs original's earlier figure",
        ],
    );
    let shown = |bytes: Option<u64>| bytes.map_or("unknown".into(), |b| megabytes(b as f64));
    let per_socket = match rss {
        [Some(before), Some(after), _] if opened > 0 => Some((after as f64 - before as f64) / opened as f64),
        _ => None,
    };
    table.row(vec![
        format!("{opened} of {sockets}"),
        shown(rss[0]),
        shown(rss[1]),
        shown(rss[2]),
        per_socket.map_or("unknown".into(), megabytes),
        per_socket.map_or("n/a".into(), |b| versus(b, original::RSS_PER_SOCKET_BYTES, false)),
    ]);
    if let Some(error) = errors.first() {
        table.note(format!(
            "{} sockets failed to open; first error: {error:#}",
            errors.len()
        ));
    }
    if rss[0].is_none() {
        table.note("The server's RSS is unknown: pass --pid (same machine) or use --spawn.");
    }
    table.note(format!(
        "Legacy sessions over {CHATS} chats, each having read its initial payload. The original, measured earlier by another client: {} per socket.",
        megabytes(original::RSS_PER_SOCKET_BYTES)
    ));
    table
}

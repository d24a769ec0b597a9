//! Upgrade from the release that answered chat messages from a journal beside the database
//! (`<database>-kafka-appends.<n>`, one JSON line per entry, and `…-kafka-appends.lock`).
//! A server of that release killed before copying them left entries it had acknowledged
//! there: at start-up they are put into the table once, then the files are removed.
//!
//! An entry whose `(chat, seq)` holds the same content is there already (copied before the
//! crash); one whose place holds something else is appended after the chat's last entry
//! rather than dropped; one of a deleted chat is dropped with its chat. A last line cut short
//! was never acknowledged. A file with an unreadable whole line is kept, renamed
//! `….unreadable`, beside the database, and the start-up log says so.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sqlx::{AnyConnection, Connection};

use super::{StoreError, StoreResult};

const INFIX: &str = "-kafka-appends.";

#[derive(Debug, Deserialize)]
struct Entry {
    chat_id: String,
    seq: i64,
    role: String,
    kind: String,
    /// JSON text, as the table stores it.
    content: String,
    created_at: String,
}

/// Applies and removes the journal files beside the database file at `database`.
pub(super) async fn apply(conn: &mut AnyConnection, database: &str) -> StoreResult<()> {
    let (segments, lock) = leftovers(database).map_err(io_error)?;
    let mut entries = Vec::new();
    let mut unreadable = Vec::new();
    for path in &segments {
        let text = std::fs::read(path).map_err(io_error)?;
        let whole = text.iter().rposition(|&b| b == b'\n').map_or(0, |last| last + 1);
        for line in text[..whole].split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            match serde_json::from_slice::<Entry>(line) {
                Ok(entry) => entries.push(entry),
                Err(error) => {
                    tracing::error!(path = %path.display(), %error, "an unreadable line in an old journal file");
                    unreadable.push(path.clone());
                }
            }
        }
    }
    if !entries.is_empty() {
        tracing::info!(
            entries = entries.len(),
            "applying chat messages journaled by the previous release"
        );
        let mut tx = conn.begin().await?;
        for entry in &entries {
            insert(&mut tx, entry).await?;
        }
        tx.commit().await?;
    }
    for path in segments.iter().chain(&lock) {
        let result = if unreadable.contains(path) {
            std::fs::rename(path, path.with_extension(format!("{}.unreadable", extension(path))))
        } else {
            std::fs::remove_file(path)
        };
        result.map_err(io_error)?;
    }
    Ok(())
}

async fn insert(conn: &mut AnyConnection, e: &Entry) -> StoreResult<()> {
    let chat: Option<i64> = sqlx::query_scalar("SELECT 1 FROM chats WHERE id = $1")
        .bind(&e.chat_id)
        .fetch_optional(&mut *conn)
        .await?;
    if chat.is_none() {
        tracing::info!(
            chat_id = e.chat_id,
            seq = e.seq,
            "an old journal entry of a deleted chat dropped"
        );
        return Ok(());
    }
    let there: Option<String> =
        sqlx::query_scalar("SELECT content FROM chat_conversations WHERE chat_id = $1 AND seq = $2")
            .bind(&e.chat_id)
            .bind(e.seq)
            .fetch_optional(&mut *conn)
            .await?;
    let seq_sql = match there {
        Some(content) if content == e.content => return Ok(()),
        Some(_) => {
            tracing::warn!(
                chat_id = e.chat_id,
                seq = e.seq,
                "an old journal entry's place is taken: appended at the end"
            );
            "COALESCE((SELECT MAX(seq) FROM chat_conversations WHERE chat_id = $1), 0) + 1"
        }
        None => "$6",
    };
    sqlx::query(&format!(
        "INSERT INTO chat_conversations (chat_id, seq, role, type, content, created_at)
         VALUES ($1, {seq_sql}, $2, $3, $4, $5)"
    ))
    .bind(&e.chat_id)
    .bind(&e.role)
    .bind(&e.kind)
    .bind(&e.content)
    .bind(&e.created_at)
    .bind(e.seq)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE chats SET last_updated = MAX(COALESCE(last_updated, ''), $1) WHERE id = $2")
        .bind(&e.created_at)
        .bind(&e.chat_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The journal's segments beside `database`, in order, and its lock file if there is one.
fn leftovers(database: &str) -> std::io::Result<(Vec<PathBuf>, Option<PathBuf>)> {
    let database = Path::new(database);
    let dir = match database.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let prefix = format!("{}{INFIX}", database.file_name().unwrap_or_default().to_string_lossy());
    let mut segments = Vec::new();
    let mut lock = None;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        match name.strip_prefix(&prefix) {
            Some("lock") => lock = Some(path),
            Some(n) => {
                if let Ok(number) = n.parse::<u64>() {
                    segments.push((number, path));
                }
            }
            None => {}
        }
    }
    segments.sort_unstable();
    Ok((segments.into_iter().map(|(_, p)| p).collect(), lock))
}

fn extension(path: &Path) -> String {
    path.extension().unwrap_or_default().to_string_lossy().into_owned()
}

fn io_error(error: std::io::Error) -> StoreError {
    StoreError::Write(format!("applying the old append journal: {error}"))
}

#[cfg(test)]
mod tests {
    use super::super::{MessageRecord, Store};

    #[tokio::test]
    async fn journal_files_of_the_previous_release_are_applied_once_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("kafka.db").display().to_string();
        let url = format!("sqlite://{database}");
        let store = Store::connect(&url).await.unwrap();
        let user = store.login("old@test.example").await.unwrap();
        let workspace = store.create_workspace(&user, "W", &[]).await.unwrap();
        let a = store.create_chat(&user, &workspace, "A").await.unwrap().id;
        let b = store.create_chat(&user, &workspace, "B").await.unwrap().id;
        store
            .append_messages(&a, &[MessageRecord::text("user", "copied")])
            .await
            .unwrap();
        drop(store);

        let line = |chat: &str, seq: i64, text: &str| {
            let content = serde_json::Value::String(text.into()).to_string();
            serde_json::json!({"chat_id": chat, "seq": seq, "role": "user", "kind": "text",
                "content": content, "created_at": "2999-01-01T00:00:00.000000"})
            .to_string()
                + "\n"
        };
        // Copied already (same content at its place), new ones, a taken place, a deleted chat,
        // and a torn last write.
        let first = line(&a, 1, "copied") + &line(&a, 2, "journaled") + &line(&b, 1, "other");
        let second = line(&a, 2, "collides") + &line("gone", 1, "x") + "{\"chat_id\":\"";
        std::fs::write(format!("{database}-kafka-appends.3"), first).unwrap();
        std::fs::write(format!("{database}-kafka-appends.4"), second).unwrap();
        std::fs::write(format!("{database}-kafka-appends.lock"), "").unwrap();

        let mut store = None;
        for _ in 0..100 {
            if let Ok(opened) = Store::connect(&url).await {
                store = Some(opened);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let store = store.unwrap();
        let texts = |c: Vec<MessageRecord>| -> Vec<(i64, String)> {
            c.into_iter()
                .map(|m| (m.seq, m.content.as_str().unwrap_or_default().to_owned()))
                .collect()
        };
        assert_eq!(
            texts(store.conversation(&a).await.unwrap()),
            [(1, "copied".into()), (2, "journaled".into()), (3, "collides".into())]
        );
        assert_eq!(texts(store.conversation(&b).await.unwrap()), [(1, "other".into())]);
        assert_eq!(
            store.chat(&b).await.unwrap().last_updated.as_deref(),
            Some("2999-01-01T00:00:00.000000")
        );
        let left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("kafka-appends"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        assert_eq!(store.foreign_key_violations().await.unwrap(), 0);
        let saved = store
            .append_messages(&a, &[MessageRecord::text("user", "after")])
            .await
            .unwrap();
        assert_eq!(saved[0].seq, 4);
    }
}

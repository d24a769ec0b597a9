//! Migrations applied to a database that already holds data: nothing a user wrote is lost.

use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{Executor, Row};
use std::str::FromStr;

use super::{MessageRecord, Store};

/// A SQLite database at `url` migrated up to (not including) `version`, as an older release
/// left it.
async fn database_before(url: &str, version: i64) -> sqlx::SqlitePool {
    let options = SqliteConnectOptions::from_str(url)
        .unwrap()
        .create_if_missing(true)
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap();
    let mut migrator = sqlx::migrate!("../../migrations");
    let older: Vec<_> = migrator
        .migrations
        .iter()
        .filter(|m| m.version < version)
        .cloned()
        .collect();
    migrator.migrations = older.into();
    migrator.run(&pool).await.unwrap();
    pool
}

#[tokio::test]
async fn conversations_keep_every_entry_when_rekeyed_by_rowid() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("kafka.db").display());
    let old = database_before(&url, 5).await;
    old.execute(
        "INSERT INTO users (id, email, created_at) VALUES ('u', 'u@test.example', 't');
         INSERT INTO workspaces (id, name, owner_id, created_at) VALUES ('w', 'W', 'u', 't');
         INSERT INTO chats (id, name, user_id, workspace_id) VALUES ('a', 'A', 'u', 'w'), ('b', 'B', 'u', 'w');
         INSERT INTO chat_conversations (id, chat_id, seq, role, type, content, created_at) VALUES
             ('0f1e', 'a', 2, 'assistant', 'text', '\"Echo: one\"', 't'),
             ('9c2d', 'a', 1, 'user', 'text', '\"one\"', 't'),
             ('77ab', 'b', 1, 'user', 'file', '{\"file_id\":\"f\",\"name\":\"x.txt\"}', 't'),
             ('1234', 'a', 3, 'user', 'text', '\"two\"', 't');",
    )
    .await
    .unwrap();
    old.close().await;

    let store = Store::connect(&url).await.unwrap();
    let a = store.conversation("a").await.unwrap();
    let texts: Vec<(i64, &str, &str)> = a
        .iter()
        .map(|m| (m.seq, m.role.as_str(), m.content.as_str().unwrap()))
        .collect();
    assert_eq!(
        texts,
        [(1, "user", "one"), (2, "assistant", "Echo: one"), (3, "user", "two")]
    );
    let b = store.conversation("b").await.unwrap();
    assert_eq!(
        (b.len(), b[0].kind.as_str(), b[0].content["name"].as_str()),
        (1, "file", Some("x.txt"))
    );

    // Numbering goes on after the kept entries.
    let saved = store
        .append_messages("a", &[MessageRecord::text("user", "three")])
        .await
        .unwrap();
    assert_eq!(saved[0].seq, 4);
    let key_types: Vec<String> = sqlx::query("SELECT DISTINCT typeof(id) FROM chat_conversations")
        .fetch_all(&store.pool)
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(key_types, ["integer"]);

    // The rebuilt table still belongs to its chat: deleting one removes its entries.
    store.delete_chat("b").await.unwrap();
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM chat_conversations")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(left, 4);
    assert_eq!(store.foreign_key_violations().await.unwrap(), 0);
}

#[tokio::test]
async fn stored_bytes_are_counted_for_what_was_stored_before_the_quota() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("kafka.db").display());
    let old = database_before(&url, 7).await;
    old.execute(
        "INSERT INTO users (id, email, created_at) VALUES ('u', 'u@test.example', 't'), ('v', 'v@test.example', 't');
         INSERT INTO workspaces (id, name, owner_id, created_at) VALUES ('w', 'W', 'u', 't'), ('x', 'X', 'v', 't');
         INSERT INTO chats (id, name, user_id, workspace_id) VALUES ('a', 'A', 'u', 'w'), ('b', 'B', 'v', 'x');
         INSERT INTO chat_conversations (chat_id, seq, role, type, content, created_at) VALUES
             ('a', 1, 'user', 'text', '\"héllo\"', 't'),
             ('b', 1, 'user', 'text', '\"other user\"', 't');
         INSERT INTO chat_files (id, filename, path, chat_id, kind, created_at) VALUES ('f', 'f.based', '', 'a', 'based', 't');
         INSERT INTO chat_file_versions (id, chat_file_id, seq, timestamp, content) VALUES
             ('v1', 'f', 1, 't', 'state A {}'), ('v2', 'f', 2, 't', 'state B {}');",
    )
    .await
    .unwrap();
    old.close().await;

    let store = Store::connect(&url).await.unwrap();
    // Bytes, not characters: `"héllo"` is 8 bytes; two versions of 10.
    assert_eq!(store.stored_bytes("u").await.unwrap(), 8 + 20);
    assert_eq!(store.stored_bytes("v").await.unwrap(), 12);
    // The counts go on from there.
    store
        .append_messages("a", &[MessageRecord::text("user", "four")])
        .await
        .unwrap();
    assert_eq!(store.stored_bytes("u").await.unwrap(), 8 + 20 + 6);
}
